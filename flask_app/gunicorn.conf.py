"""Gunicorn settings for the Flask app; every value can be overridden from the environment.

.venv/bin/gunicorn -c flask_app/gunicorn.conf.py flask_app.wsgi:app

`make serve-flask` adds --workers $(WORKERS) (1), as `make serve-fastapi` does for Uvicorn.
"""

import os
import tempfile

# One BLAS/OpenMP thread per worker: N workers each starting one thread per core would
# oversubscribe the cores. Set here because this file runs before the app (and numpy) loads.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

# Loopback by default: a lab server is not for the network. Port 5001 because macOS's
# AirPlay receiver already listens on 5000.
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('FLASK_PORT', '5001')}"

# Inference is CPU-bound, so more processes than cores only adds context switches; the
# classic "2 x cores + 1" is for workers that mostly wait on I/O. One per core, capped at 4
# so a laptop run leaves room for the load generator.
workers = int(os.environ.get("GUNICORN_WORKERS", min(os.cpu_count() or 1, 4)))

# sync: one request per worker at a time, the simplest model to reason about. gthread and
# gevent are the sync world's answers to waiting on I/O (see the lessons).
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = int(os.environ.get("GUNICORN_THREADS", "1"))

# Load the model once in the master before forking: a broken model stops start-up at once,
# and the workers share the model's memory pages copy-on-write instead of each loading one.
preload_app = True

# A prediction takes milliseconds; a worker silent for 30 s is stuck, so kill and replace it.
timeout = 30
# On SIGTERM, let requests in flight finish for up to this long before workers are killed.
graceful_timeout = 10
# Sync workers close the connection after each response anyway; keep-alive matters for the
# threaded and async worker classes, and should stay short behind a proxy.
keepalive = 2

# Gunicorn 27's control socket (for `gunicornc`) sits at one path per user, so two lab
# servers would fight over it; the lab does not use it.
control_socket_disable = True

# The app writes one JSON access line per request itself (with its X-Request-ID), so
# Gunicorn's own access log would only repeat it. Errors and worker events still go to stdout.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")


# Prometheus metrics from several workers: each worker writes its samples into one folder,
# and a scrape of any worker sums them all. A fresh folder per server start (set before the
# app is imported, so the metrics see it); kept if the environment already names one.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prometheus-")


def child_exit(server, worker):
    # A dead worker's live gauges must not count any more (prometheus_client's multiprocess docs).
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
