"""LitServe serving the lab's model.pkl, as small as LitServe's own quick start teaches it.

Runs in .venv-peers (`make peers`), by path, never imported by the lab:
    .venv-peers/bin/python benchmarks/peers/litserve_server.py --port 8200 [--batching]
POST /predict takes the lab's patient JSON and answers {"prediction": ...}; like the tutorial
snippets, it validates nothing (no ranges, no types): a peer as its docs show it.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import joblib
import litserve as ls
import numpy as np


class DiabetesAPI(ls.LitAPI):
    def setup(self, device: str) -> None:
        model_path = Path(os.environ["MODEL_PATH"])
        self.model = joblib.load(model_path)  # the lab's own file, unchecked, as in its quick start
        card = json.loads((model_path.parent / "model_card.json").read_text())
        self.features = [feature["name"] for feature in card["features"]]

    def decode_request(self, request: dict) -> list[float]:
        return [request[name] for name in self.features]

    def predict(self, x: list[float] | np.ndarray) -> np.ndarray:
        rows = np.asarray(x, dtype=float)
        return self.model.predict(rows.reshape(-1, len(self.features)))

    def encode_response(self, output: float | np.ndarray) -> dict[str, float]:
        return {"prediction": float(np.ravel(output)[0])}


class BatchedDiabetesAPI(DiabetesAPI):
    """The same, with LitServe's batching: requests that arrive together share one predict."""

    def batch(self, inputs: list[list[float]]) -> np.ndarray:
        return np.asarray(inputs, dtype=float)

    def unbatch(self, output: np.ndarray) -> list[float]:
        return list(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8200)
    parser.add_argument("--batching", action="store_true", help="64 requests, 2 ms window")
    args = parser.parse_args()
    # LitServe's batching is the LitAPI's: up to 64 requests, waiting at most 2 ms for them.
    if args.batching:
        api: DiabetesAPI = BatchedDiabetesAPI(max_batch_size=64, batch_timeout=0.002)
    else:
        api = DiabetesAPI()
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(host="127.0.0.1", port=args.port, generate_client_file=False, log_level="warning")


if __name__ == "__main__":
    main()
