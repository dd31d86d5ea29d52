# The lab in one image: it runs either app, the feature service or Locust (compose.yaml picks).
#
#   docker build -t ml-serving-lab .
#   docker run --rm -p 127.0.0.1:8000:8000 ml-serving-lab      # the FastAPI app
#
# BASE_IMAGE: any Debian-like image with python3 (3.11 or newer) and its venv module.
ARG BASE_IMAGE=python:3.12-slim

# --- Stage 1: install the dependencies and train the model. Only its results are shipped. ---
FROM ${BASE_IMAGE} AS build
WORKDIR /lab
# The dependencies come from pyproject.toml alone, so a code change reuses this cached layer.
COPY pyproject.toml ./
RUN python3 -m venv .venv \
    && python3 -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > /tmp/requirements.txt \
    && .venv/bin/pip install --no-cache-dir --disable-pip-version-check -r /tmp/requirements.txt
# .dockerignore lets only the lab's code in: no .venv, no local model, no benchmark results.
COPY . .
# Trained at build, not at start: the pickle is made by the scikit-learn in this very image
# (a pickle is tied to the version that wrote it), every container from one image serves the
# same model version, and a container starts in seconds.
RUN .venv/bin/python -m shared_model.train

# --- Stage 2: the base again, plus the venv, the code and the model; no pip cache, no build. ---
# The settings come before the copy: on a storage driver that copies every layer whole (vfs),
# each of these small steps then copies the small base, not the 600 MB lab.
FROM ${BASE_IMAGE}
# A user without privileges: a bug in a server gives away a process that can change nothing.
RUN useradd --create-home --uid 10001 lab
# HOST: inside a container loopback is the container's own, so the servers listen on all of
# its interfaces; compose.yaml publishes each port on the host's 127.0.0.1 only.
# PYTHONPATH: Locust loads the locustfile by path, and it imports the lab's packages.
# One BLAS/OpenMP thread per process: the workers, not the threads, use the CPUs you give.
ENV PATH=/lab/.venv/bin:$PATH \
    PYTHONPATH=/lab \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
    HEALTH_URL=http://127.0.0.1:8000/health
# FastAPI, Flask, the feature service, the Locust web UI, Locust's master port for workers.
EXPOSE 8000 5001 8100 8089 5557
# Healthy once HEALTH_URL answers; each compose service points it at its own port.
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['HEALTH_URL'], timeout=2)"]
# The FastAPI app on Uvicorn, port 8000, as defined once in shared_model/serving/commands.py:
# it prints the command, then becomes it (exec), so Uvicorn gets the signals as PID 1.
CMD ["python", "-m", "shared_model.serving.commands", "fastapi"]
USER lab
WORKDIR /lab
# Owned by root and read-only to `lab`: the servers cannot change their own code or model.
COPY --from=build /lab /lab
