"""The profile_server diagnostic: py-spy's samples read right, and one real profile of Uvicorn."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from benchmarks.diagnostics import profile_server
from benchmarks.servers import PYTHON, ROOT

# py-spy's raw format: "thread (id): name;frame;frame count", one line per distinct stack.
RAW = "".join(
    f"{line}\n"
    for line in [
        "thread (0x1): MainThread;run (uvicorn/main.py:1);Starlette.__call__ (s.py:1);"
        "run_in_threadpool (starlette/concurrency.py:1) 30",
        "thread (0x1): MainThread;run (uvicorn/main.py:1);"
        "HttpToolsProtocol.data_received (uvicorn/x.py:1) 10",
        "thread (0x2): AnyIO worker thread;Predictor.batch_response_for (predictor.py:1);"
        "Pipeline.predict (sklearn/pipeline.py:1);check_array (sklearn/validation.py:1) 15",
        "thread (0x3): AnyIO worker thread;Condition.wait (threading.py:327) 45",
    ]
)


def test_samples_are_grouped_by_thread_kind_and_shared_out_by_function(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text(RAW)
    stacks = profile_server.parse(raw)
    assert set(stacks) == {"event loop (the main thread)", "threadpool (AnyIO worker threads)"}
    text = profile_server.summary(stacks, top=3)
    # 30 of the loop's 40 samples hand work to the threadpool; 15 of the pool's 60 check input.
    assert "event loop (the main thread): 40 samples" in text
    assert " 75.0%  FastAPI: hand a def function to the threadpool" in text
    assert "threadpool (AnyIO worker threads): 60 samples" in text
    assert " 25.0%      its input checks (check_array)" in text
    assert " 75.0%  Condition.wait" in text  # the pool's most frequent top of stack


def test_start_up_samples_are_left_out(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text(RAW + "thread (0x1): MainThread;_find_and_load (<frozen>:1) 500\n")
    profile_server.without_start_up(raw)
    assert raw.read_text() == RAW


@pytest.mark.slow
def test_a_real_profile_of_uvicorn_under_load() -> None:
    result = subprocess.run(
        [PYTHON, "-m", "benchmarks.diagnostics.profile_server", "fastapi-uvicorn-1",
         "--users", "8", "--warmup", "1", "--seconds", "3", "--rate", "100"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fastapi-uvicorn-1, 8 users on POST /predict" in result.stdout
    # The route awaits the model runner, which hands the model to its thread.
    assert "event loop (the main thread):" in result.stdout
    assert "the lab's model runner: hand the model to its thread" in result.stdout
    assert "model runner thread:" in result.stdout  # where the predictions themselves ran
    assert "scikit-learn Pipeline.predict" in result.stdout
    # The model's share: found only while the marker names the call every answer goes through.
    assert "the lab's predictor (model, warnings, metrics)" in result.stdout
