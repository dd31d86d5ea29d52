"""Gunicorn settings for the Flask app; every value can be overridden from the environment.

.venv/bin/gunicorn -c flask_app/gunicorn.conf.py flask_app.wsgi:app

`make serve-flask` adds --workers $(WORKERS) (1), as `make serve-fastapi` does for Uvicorn.
"""

import os
import tempfile

# One BLAS/OpenMP thread per worker, set before numpy loads, or N workers oversubscribe.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

# Loopback: a lab server is not for the network; 5001, as macOS's AirPlay takes 5000.
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('FLASK_PORT', '5001')}"

# CPU-bound inference: one worker per core (not 2 x cores + 1), at most 4, room for Locust.
workers = int(os.environ.get("GUNICORN_WORKERS", min(os.cpu_count() or 1, 4)))

# sync: one request per worker at a time, the simplest model; gthread and gevent wait on I/O.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = int(os.environ.get("GUNICORN_THREADS", "1"))

# The master loads the model: a broken one stops start-up; workers share it copy-on-write.
preload_app = True

# A prediction takes milliseconds; a worker silent for 30 s is stuck, so kill and replace it.
timeout = 30
# On SIGTERM, let requests in flight finish for up to this long before workers are killed.
graceful_timeout = 10
# Sync workers close after each response; threaded ones keep it short, as behind a proxy.
keepalive = 2

# Gunicorn 27's control socket is one path per user: two lab servers would fight over it.
control_socket_disable = True

# The app writes its own JSON access line with X-Request-ID; Gunicorn's would repeat it.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")


# One fresh metrics folder per start (unless named), so a scrape of any worker sums all.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prometheus-")


def child_exit(server, worker):
    # A dead worker's live gauges must not count any more (prometheus_client's multiprocess docs).
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
