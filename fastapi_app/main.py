"""The module-level app, so the command students know works: ``uvicorn fastapi_app.main:app``."""

from fastapi_app.app import create_app

app = create_app()
