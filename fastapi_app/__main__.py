"""``.venv/bin/python -m fastapi_app``: Uvicorn's development server with reload, for lessons."""

import os

import uvicorn

if __name__ == "__main__":
    uvicorn.run(
        "fastapi_app.main:app",
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("FASTAPI_PORT", "8000")),
        reload=True,
    )
