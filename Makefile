# The students' entry point. Every target creates .venv on first use, from python3 alone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MODEL  := shared_model/model.pkl

# Worker processes for serve-flask and serve-fastapi alike, as `make run` starts them:
# `WORKERS=2 make serve-flask` and `WORKERS=2 make serve-fastapi` compare like for like.
WORKERS ?= 1

# Each server's command is defined once, in shared_model/serving/commands.py: it prints the
# command, then runs it. The image, compose and the Kubernetes manifests start servers the same way.
SERVE := $(BIN)/python -m shared_model.serving.commands

.PHONY: setup model peers run reload test bench bench-async bench-peers bench-reload bench-scaling reference notebooks docs screenshots lint format serve-fastapi serve-flask serve-features locust jupyter clean

setup: $(STAMP)

# Reinstall only when the dependencies change; pip's cache makes a reinstall quick.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed; found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# PYTHONWARNINGS: setuptools warns that folders named like the package come first on the
	# import path; here those folders are the package.
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)
	@echo "Setup done: the lab is installed in $(VENV). Next: make run (start it) or make test."

# Trained on first need (order-only: reinstalling packages does not retrain by itself).
$(MODEL): | $(STAMP)
	$(BIN)/python -m shared_model.train

# `make model ESTIMATOR=forest` trains the heavy one; auto picks by cross-validation.
ESTIMATOR ?= auto

model: $(STAMP)
	$(BIN)/python -m shared_model.train --estimator $(ESTIMATOR)

# The model servers a user might deploy instead, in a virtualenv of their own: MLServer pins its
# own FastAPI. They unpickle the lab's model.pkl, so they get the lab's scikit-learn and numpy.
PEERS       := .venv-peers
PEERS_STAMP := $(PEERS)/.installed
PEER_PACKAGES := mlserver==1.7.1 mlserver-sklearn==1.7.1 litserve==0.2.19
SAME_AS_LAB := $(BIN)/python -c 'import numpy, sklearn; print(f"scikit-learn=={sklearn.__version__} numpy=={numpy.__version__}")'

peers: $(PEERS_STAMP)

# Again only when the lab's own packages are reinstalled (its scikit-learn may have moved).
$(PEERS_STAMP): $(STAMP)
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS)/bin/python -m pip install --quiet $(PEER_PACKAGES) $$($(SAME_AS_LAB))
	@touch $(PEERS_STAMP)

run: $(MODEL)
	$(BIN)/python -m benchmarks.lab

# After `make model`: the running lab's apps check the new model and swap it in, no request failed.
reload: $(STAMP)
	$(BIN)/python -m benchmarks.lab.reload

test: $(MODEL) peers
	$(BIN)/python -m pytest

bench: $(MODEL)
	$(BIN)/python -m benchmarks run

bench-async: $(MODEL)
	$(BIN)/python -m benchmarks run --profile async

# The lab's apps beside MLServer and LitServe (from .venv-peers), 3 rounds: about 12 minutes.
bench-peers: $(MODEL) peers
	$(BIN)/python -m benchmarks run --profile peers

# A new model while serving, three ways (stop and start, the server's own reload, the lab's),
# under a steady load, 3 interleaved rounds: about 18 minutes.
bench-reload: $(MODEL)
	$(BIN)/python -m benchmarks.reloads run

# Each app as 1, 2 and 4 replicas behind the balancer, as workers in one container, alone, and
# under a CPU limit, in Docker containers on one core, 3 interleaved rounds: about 35 minutes.
# Needs a Docker engine (as root, one is installed and started if none answers).
bench-scaling: $(MODEL)
	$(BIN)/python -m benchmarks.scaling run

# The runs the docs and lessons quote, redone on the code as it is: 3 rounds each, about
# 4 hours on 2 cores. Run it on a quiet machine, then `make docs notebooks`.
reference: $(MODEL) peers
	$(BIN)/python -m benchmarks run --profile async --repeat 3 --output benchmarks/results/reference-async
	$(BIN)/python -m benchmarks run --profile pairs --output benchmarks/results/contract-pairs
	$(BIN)/python -m benchmarks run --profile peers --output benchmarks/results/peers
	$(BIN)/python -m benchmarks.reloads run --output benchmarks/results/reloads
	$(BIN)/python -m benchmarks.scaling run --output benchmarks/results/scaling
	$(BIN)/python -m benchmarks run --profile full --repeat 3 --output benchmarks/results/reference

notebooks: $(MODEL)
	$(BIN)/python -m tools.notebook_runner --in-place

docs: $(STAMP)
	$(BIN)/python -m tools.doc_includes --write

# The browser tests, saving their screenshots of the docs pages and Locust into docs/images.
screenshots: $(MODEL)
	LAB_SCREENSHOTS=docs/images $(BIN)/python -m pytest -m browser

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Uvicorn with the lab's limits on HOST (127.0.0.1) and FASTAPI_PORT (8000); with several
# workers, one metrics folder for all, so any worker's /metrics sums them (as under Gunicorn).
serve-fastapi: $(MODEL)
	$(SERVE) fastapi --workers $(WORKERS)

# Gunicorn with flask_app/gunicorn.conf.py: HOST, FLASK_PORT (5001).
serve-flask: $(MODEL)
	$(SERVE) flask --workers $(WORKERS)

# The feature service the I/O route calls: FEATURES_PORT (8100), FEATURE_LATENCY_MS (50).
serve-features: $(STAMP)
	$(SERVE) features

locust: $(STAMP)
	$(BIN)/locust -f benchmarks/locustfile.py --web-host 127.0.0.1

# Jupyter refuses to run as root unless told; a student is not root, a container or CI may be.
JUPYTER_AS_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

jupyter: $(MODEL)
	$(BIN)/jupyter lab $(JUPYTER_AS_ROOT) notebooks/

# The Docker tests alone (compose, swarm); where no engine answers they install and start one (needs root).
.PHONY: docker-test
docker-test: $(STAMP)
	LAB_DOCKER=1 $(BIN)/python -m pytest -m docker

clean:
	rm -rf $(VENV) $(PEERS) .pytest_cache .ruff_cache
