"""The side-by-side diagnostic: two servers on one core, CPU per request from wrk's counts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from benchmarks import servers
from benchmarks.diagnostics import side_by_side
from benchmarks.servers import PYTHON, ROOT, can_pin

WRK_OUTPUT = """Running 2s test @ http://127.0.0.1:8000/predict
  1 threads and 64 connections
  2941 requests in 2.00s, 720.12KB read
  Non-2xx or 3xx responses: 12
Requests/sec:   1469.51
"""


def test_wrk_counts_are_read_with_the_answers_that_failed() -> None:
    assert side_by_side.answered(WRK_OUTPUT) == (2941, 12)
    assert side_by_side.answered(WRK_OUTPUT.replace("  Non-2xx or 3xx responses: 12\n", "")) == (
        2941,
        0,
    )
    with pytest.raises(RuntimeError, match="no request count"):
        side_by_side.answered("unable to connect to 127.0.0.1:8000 Connection refused")


def test_cpu_per_request_divides_the_server_s_cpu_by_its_answers() -> None:
    reading = side_by_side.Reading(requests=2000, non_2xx=0, cpu_s=1.5)
    assert reading.us_per_request() == 750


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None or not can_pin(), reason="needs wrk and taskset")
def test_a_real_side_by_side_of_the_app_and_its_snippet() -> None:
    result = subprocess.run(
        [PYTHON, "-m", "benchmarks.diagnostics.side_by_side", "fastapi-uvicorn-1",
         "tutorial-fastapi-uvicorn-1", "--rounds", "1", "--seconds", "2", "--connections", "8"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(0 not 2xx)" in result.stdout
    assert "median A/B CPU per request over 1 rounds:" in result.stdout


def test_b_code_is_the_code_its_server_runs(tmp_path: Path) -> None:
    # `python -m` puts the working folder first on sys.path: B must start in B's checkout.
    other = tmp_path / "other-checkout"
    (other / "fastapi_app").mkdir(parents=True)
    (other / "fastapi_app" / "__init__.py").write_text("")
    (other / "fastapi_app" / "main.py").write_text(
        "from fastapi import FastAPI\n"
        "app = FastAPI()\n"
        "@app.get('/health')\n"
        "async def health():\n"
        "    return {'status': 'ok', 'code': 'the other checkout'}\n"
    )
    side = side_by_side.Side("B", "fastapi-uvicorn-1", other)
    spec = side_by_side.spec_for(side, server_cpu=0)
    spec.cpus = None
    running = servers.start(spec, tmp_path / "b.log")
    try:
        assert httpx.get(spec.url + "/health").json()["code"] == "the other checkout"
    finally:
        servers.stop_all([running])
