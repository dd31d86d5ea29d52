"""Both apps' docs pages load every file from the app itself, so they work with no internet."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from fastapi_app import docs as fastapi_docs
from flask_app import docs as flask_docs

PAGES = ("/docs", "/redoc")


class AssetLinks(HTMLParser):
    """Collects the URLs a page makes the browser fetch: scripts, stylesheets, icons, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        url = named.get("src") if tag in {"script", "img"} else None
        if tag == "link":
            url = named.get("href")
        if url:
            self.urls.append(url)


def asset_urls(html: str) -> list[str]:
    parser = AssetLinks()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize("path", PAGES)
def test_docs_page_loads_its_assets_from_the_app(client: httpx.Client, path: str) -> None:
    page = client.get(path, follow_redirects=True)
    assert page.status_code == 200
    urls = asset_urls(page.text)
    assert any(url.endswith(".js") for url in urls), urls
    for url in urls:
        absolute = urljoin(str(page.url), url)
        # Same scheme and host as the page: nothing comes from a CDN.
        assert urlsplit(absolute)[:2] == urlsplit(str(page.url))[:2], url
        asset = client.get(absolute)
        assert asset.status_code == 200 and asset.content, absolute


@pytest.mark.parametrize("path", PAGES)
def test_docs_page_tells_the_browser_to_load_nothing_from_elsewhere(
    client: httpx.Client, path: str
) -> None:
    page = client.get(path, follow_redirects=True)
    assert page.headers["content-security-policy"] == fastapi_docs.DOCS_CSP


def test_swagger_ui_sends_nothing_to_the_online_validator(client: httpx.Client) -> None:
    page = client.get("/docs", follow_redirects=True)
    assert '"validatorUrl": null' in page.text


def test_both_apps_serve_the_same_swagger_ui_and_redoc(
    both_clients: dict[str, httpx.Client],
) -> None:
    bundles = {}
    for name, http in both_clients.items():
        for path in PAGES:
            page = http.get(path, follow_redirects=True)
            for url in asset_urls(page.text):
                if url.endswith(".js"):
                    file_name = url.rsplit("/", 1)[-1]
                    body = http.get(urljoin(str(page.url), url)).content
                    bundles.setdefault(file_name, {})[name] = body
    assert {"swagger-ui-bundle.js", "redoc.standalone.js"} <= set(bundles)
    for file_name in ("swagger-ui-bundle.js", "redoc.standalone.js"):
        assert bundles[file_name]["flask"] == bundles[file_name]["fastapi"], file_name


def test_both_apps_declare_the_same_docs_policy() -> None:
    # Each app keeps its own copy (no app imports the other); they must not drift apart.
    assert flask_docs.DOCS_CSP == fastapi_docs.DOCS_CSP
    assert flask_docs.SWAGGER_CONFIG == fastapi_docs.SWAGGER_UI_PARAMETERS
