"""The /docs and /redoc pages, their JavaScript and CSS served by this app so they work offline."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

from shared_model.schemas import ERROR_DESCRIPTIONS, error_model

# Every 200 is described alike in both documents (FastAPI's default says "Successful Response").
SUCCESS: dict[int | str, dict[str, Any]] = {200: {"description": "OK"}}


def operation_id(route: APIRoute) -> str:
    """The route function's name ("predict_batch"), as the Flask app's document names it too."""
    return route.name


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The contract's error answers for a route's `responses=`: each status's body and meaning."""
    return {
        status: {"model": error_model(status), "description": ERROR_DESCRIPTIONS[status]}
        for status in statuses
    }


# The packages the Flask app's pages come from: one Swagger UI and one ReDoc in both apps.
SWAGGER_ASSETS = ("flask_openapi3_swagger", "templates/swagger")
REDOC_ASSETS = ("flask_openapi3_redoc", "templates/redoc")

# Swagger UI's validator badge would send the spec's URL to validator.swagger.io.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}

# Nothing from off this server (not even ReDoc's cdn.redoc.ly logo); inline code, blob: workers.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'"
)


def install_docs(app: FastAPI, static_url: str = "/static/docs") -> None:
    """Serve /docs and /redoc from local assets; create the app with docs_url=redoc_url=None.

    The recipe is FastAPI's "Custom Docs UI Static Assets (Self-Hosting)", with the assets
    taken from installed packages instead of files copied into the repository.
    """
    if app.openapi_url is None:
        raise ValueError("the docs pages are built from the OpenAPI document: keep openapi_url")
    openapi_url = app.openapi_url
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url
    app.mount(
        static_url,
        StaticFiles(packages=[SWAGGER_ASSETS, REDOC_ASSETS]),
        name="docs-static",
    )

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui_html(request: Request) -> HTMLResponse:
        # Behind a proxy that strips a path prefix, every URL in the page needs that prefix.
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=root + oauth2_redirect_url if oauth2_redirect_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_js_url=f"{root}{static_url}/js/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{static_url}/css/swagger-ui.css",
            swagger_favicon_url=f"{root}{static_url}/images/swagger.svg",
            swagger_ui_parameters={**SWAGGER_UI_PARAMETERS, **(app.swagger_ui_parameters or {})},
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page

    if oauth2_redirect_url:  # where an OAuth2 login in Swagger UI comes back to

        @app.get(oauth2_redirect_url, include_in_schema=False)
        async def swagger_ui_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc_html(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{static_url}/js/redoc.standalone.js",
            redoc_favicon_url=f"{root}{static_url}/images/redoc.svg",
            with_google_fonts=False,  # ReDoc falls back to the system's fonts
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page
