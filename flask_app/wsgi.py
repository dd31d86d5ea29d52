"""The module-level app for WSGI servers.

``gunicorn -c flask_app/gunicorn.conf.py flask_app.wsgi:app``
"""

from flask_app.app import create_app

app = create_app()
