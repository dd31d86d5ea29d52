"""Settings for every Gunicorn the lab launches: the Flask app's own file, then a switch.

    gunicorn -c benchmarks/gunicorn_bench.conf.py --bind 127.0.0.1:PORT -k sync -w 2 APP

So a cell measures what `make serve-flask` runs; only what the command line cannot switch off
is read here.
"""

import os
import runpy
from pathlib import Path

_APP_CONFIG = Path(__file__).resolve().parent.parent / "flask_app" / "gunicorn.conf.py"
globals().update(
    {
        name: value
        for name, value in runpy.run_path(str(_APP_CONFIG)).items()
        if not name.startswith("_") and name != "os"
    }
)

# --preload has no --no-preload twin: the runner's no-preload cells (the memory lesson) say it here.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") == "1"

# No access log in a benchmark: Uvicorn and Granian run without one too.
accesslog = None
