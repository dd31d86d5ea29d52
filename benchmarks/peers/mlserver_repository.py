"""MLServer serving the lab's model.pkl with its scikit-learn runtime, as MLServer's docs teach.

Runs in .venv-peers (`make peers`), by path, never imported by the lab:
    .venv-peers/bin/python benchmarks/peers/mlserver_repository.py --port 8300 [--batching]
Writes a model repository (settings.json, model-settings.json) for MODEL_PATH into a temporary
folder, then becomes `mlserver start` on it: the Open Inference Protocol on --port.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

MODEL_NAME = "diabetes"  # the lab's name for it under /v2/models/


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_settings(port: int) -> dict[str, object]:
    return {
        "host": "127.0.0.1",
        "http_port": port,
        # gRPC and metrics have ports of their own in MLServer; the lab measures REST alone.
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "metrics_endpoint": None,
        # Inference in the server's own process ("inline"), as the lab's apps run theirs.
        "parallel_workers": 0,
        "debug": False,
    }


def model_settings(model_path: Path, batching: bool) -> dict[str, object]:
    settings: dict[str, object] = {
        "name": MODEL_NAME,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(model_path)},
    }
    if batching:
        # MLServer's adaptive batching: up to 64 requests, waiting at most 2 ms for them.
        settings |= {"max_batch_size": 64, "max_batch_time": 0.002}
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8300)
    parser.add_argument("--batching", action="store_true", help="adaptive batching: 64, 2 ms")
    args = parser.parse_args()
    model_path = Path(os.environ["MODEL_PATH"]).resolve()
    repository = Path(tempfile.mkdtemp(prefix="mlserver-"))
    (repository / "settings.json").write_text(json.dumps(server_settings(args.port)))
    model_dir = repository / MODEL_NAME
    model_dir.mkdir()
    settings = model_settings(model_path, args.batching)
    (model_dir / "model-settings.json").write_text(json.dumps(settings))
    mlserver = shutil.which("mlserver", path=str(Path(sys.executable).parent))
    if mlserver is None:
        raise SystemExit("mlserver is not installed beside this Python: run `make peers`")
    os.execv(mlserver, [mlserver, "start", str(repository)])


if __name__ == "__main__":
    main()
