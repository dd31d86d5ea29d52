"""A new model while serving, measured: three ways to switch a running app to a new model
(stop and start, the server's own reload, the lab's reload), under a steady Locust load, with
every answer's version, latency and failure recorded over time.

    .venv/bin/python -m benchmarks.reloads run     # or make bench-reload
    .venv/bin/python -m benchmarks.reloads report RUN_FOLDER
"""
