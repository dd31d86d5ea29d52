"""``.venv/bin/python -m flask_app``: Flask's development server with reload, for lessons."""

import os

from flask_app.app import create_app

if __name__ == "__main__":
    create_app().run(
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("FLASK_PORT", "5001")),
        debug=True,
    )
