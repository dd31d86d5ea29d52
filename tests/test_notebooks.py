"""The lessons never rot: each notebook follows the house rules and executes top to bottom."""

from __future__ import annotations

import ast
import csv
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from matplotlib.figure import Figure

from benchmarks.reports import lesson_plots, lesson_runs
from benchmarks.reports.snippets import snippet
from benchmarks.runner import matrix
from benchmarks.runner import run as runner
from tools.notebook_runner import execute, lesson_notebooks

NOTEBOOKS = lesson_notebooks()
# The front ends `make setup` installs, beside the Python that runs these tests (.venv/bin).
JUPYTER_COMMANDS = ("jupyter-lab", "jupyter-notebook", "jupyter-nbconvert")
BIN = Path(sys.executable).parent


def code_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_there_are_lessons() -> None:
    assert NOTEBOOKS, "notebooks/ holds no lesson"


def test_setup_installs_jupyter_lab_notebook_and_nbconvert() -> None:
    assert [name for name in JUPYTER_COMMANDS if not (BIN / name).is_file()] == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_defines_nothing_and_explains_each_step(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    cells = notebook.cells
    first_code = code_cells(notebook)[0]
    assert all(
        isinstance(node, ast.Import | ast.ImportFrom) for node in ast.parse(first_code.source).body
    ), "the first code cell holds the imports, and only them"
    for cell in code_cells(notebook):
        tree = ast.parse(cell.source)
        defined = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda)
        ]
        assert not defined, f"a notebook imports, it defines nothing:\n{cell.source}"
    for before, cell in itertools.pairwise(cells):
        if cell.cell_type == "code":
            assert before.cell_type == "markdown", f"no explanation before:\n{cell.source}"
    assert "exercise" in cells[-1].source.lower(), "a lesson ends with an exercise"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_and_shows_a_plot(
    path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BENCH_PROFILE", "quick")
    if path == NOTEBOOKS[0]:
        # The first lesson runs through the command a student types; the others in process.
        nbconvert = [BIN / "jupyter-nbconvert", "--to", "notebook", "--execute"]
        subprocess.run([*nbconvert, "--output-dir", tmp_path, path], check=True, timeout=600)
        notebook = nbformat.read(tmp_path / path.name, as_version=4)
    else:
        notebook = execute(path)
    outputs = [output for cell in code_cells(notebook) for output in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "each lesson shows a plot"


# --- What the lessons read and draw ------------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lesson_opens_with_what_you_learn_and_closes_with_solved_exercises(path: Path) -> None:
    cells = nbformat.read(path, as_version=4).cells
    assert "what you will learn" in cells[0].source.lower()
    last = cells[-1].source
    assert "<details>" in last and "solution" in last.lower(), "every exercise has a solution"
    exercises = re.findall(r"^\d+\. ", last.split("<details>")[0], flags=re.MULTILINE)
    solutions = re.findall(r"^\d+\. ", last.split("<details>")[1], flags=re.MULTILINE)
    assert len(solutions) == len(exercises)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lesson_loads_servers_with_locust_not_a_python_client(path: Path) -> None:
    sources = "\n".join(cell.source for cell in code_cells(nbformat.read(path, as_version=4)))
    # A Python client's own cost caps what it measures (docs/appendix/client-costs.md).
    assert "AsyncClient" not in sources and "asyncio" not in sources
    assert "perf_counter" not in sources, "time requests with Locust, not with a client loop"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lesson_text_names_no_revision(path: Path) -> None:
    prose = "\n".join(
        c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"
    )
    assert not re.search(r"\b[0-9a-f]{7,40}\b", prose), "no commit hashes in a lesson"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lesson_outputs_name_no_revision(path: Path) -> None:
    # A run's revision belongs in its report.md; a lesson speaks of the subject.
    outputs = json.dumps([c.get("outputs", []) for c in nbformat.read(path, as_version=4).cells])
    assert not re.search(r"\bgit [0-9a-f]{7,40}\b", outputs), "no revisions in a lesson's outputs"


# A temporary folder's path (Linux, macOS, Windows, or tempfile's own names): new on every run.
TEMPORARY_PATH = re.compile(r"/tmp/|/var/folders/|AppData\\Local\\Temp|\btmp[a-z0-9_]{8}\b")


def printed_text(cell: nbformat.NotebookNode) -> list[str]:
    """What a code cell printed or displayed as text (images left out: base64 is no path)."""
    texts = []
    for output in cell.get("outputs", []):
        texts.append(output.get("text", ""))
        texts += [v for k, v in output.get("data", {}).items() if k.startswith("text/")]
        texts += output.get("traceback", [])
    return texts


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lesson_outputs_print_no_temporary_path(path: Path) -> None:
    # A folder name that changes on every run leaves the notebook modified each time it runs.
    printed = [
        text
        for cell in code_cells(nbformat.read(path, as_version=4))
        for text in printed_text(cell)
    ]
    assert [
        line for text in printed for line in text.splitlines() if TEMPORARY_PATH.search(line)
    ] == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lesson_cells_carry_no_run_timestamps(path: Path) -> None:
    # `make notebooks` records none (tools/notebook_runner.py), nor does Jupyter by default.
    cells = nbformat.read(path, as_version=4).cells
    assert [c.source[:40] for c in cells if "execution" in c.get("metadata", {})] == []


def prose(path: Path) -> str:
    return "\n".join(
        c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lesson_text_points_at_files_that_exist(path: Path) -> None:
    root = path.parent.parent
    quoted = re.findall(r"`([\w.-]+/[\w./-]*)`", prose(path))
    paths = [p for p in quoted if (root / p.split("/")[0]).is_dir()]  # not `req/s`
    assert [p for p in paths if not (root / p).exists()] == []
    # A pointer into the course names its page: "see docs/" leaves the student searching.
    assert [p for p in paths if p.startswith("docs/") and not p.endswith(".md")] == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lesson_commands_use_the_labs_python(path: Path) -> None:
    # A bare `python` is not the one `make setup` installed the lab into.
    assert not re.search(r"(?<![\w/.])python -m", prose(path))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lesson_cells_end_without_a_stray_value(path: Path) -> None:
    stray = [
        output.data["text/plain"]
        for cell in code_cells(nbformat.read(path, as_version=4))
        for output in cell.get("outputs", [])
        if output.output_type == "execute_result" and set(output.data) == {"text/plain"}
    ]
    assert stray == [], "a cell's last line left a value (a return code?) under it"


def write_run(run_dir: Path, rows: list[dict[str, str]]) -> Path:
    run_dir.mkdir()
    with (run_dir / "results.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, runner.COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {"status": "ok", "model": "default", "scenario": "single", "kind": "lab", **row}
            )
    (run_dir / "meta.json").write_text(json.dumps({"profile": {"name": "test"}}))
    return run_dir


def test_a_run_is_read_under_its_configuration_names(tmp_path: Path) -> None:
    run = lesson_runs.load(write_run(tmp_path / "run", [
        {"framework": "fastapi", "users": "64", "config": "fastapi-uvicorn-1", "rps": "90"},
        {"framework": "fastapi", "users": "64", "config": "fastapi-uvicorn-1+microbatching",
         "config_env": "MICROBATCH_MAX_SIZE=64", "rps": "900"},
    ]))  # fmt: skip
    assert run.value("fastapi-uvicorn-1") == 90
    assert run.value("fastapi-uvicorn-1+microbatching") == 900


def test_a_cell_that_failed_or_did_not_run_has_no_answer(tmp_path: Path) -> None:
    run = lesson_runs.load(write_run(tmp_path / "run", [
        {"framework": "flask", "users": "64", "config": "flask-granian-1", "status": "failed: x"},
        {"framework": "flask", "users": "64", "config": "flask-gunicorn-sync-1", "rps": "80",
         "health_requests": "0"},
    ]))  # fmt: skip
    assert run.value("flask-granian-1") is None
    assert run.value("fastapi-granian-1") is None
    assert run.value("flask-gunicorn-sync-1", column="health_p50_ms") is None
    assert lesson_runs.shown(None) == "no answer"
    assert lesson_runs.ratio(80.0, None) is None


@pytest.mark.parametrize("name", ["reference", "reference-async", "contract-pairs", "peers"])
def test_committed_runs_name_configurations_of_the_matrix(name: str) -> None:
    if not (lesson_runs.RESULTS / name / "results.csv").exists():
        pytest.skip(f"no committed run {name}")
    for config in {row["config"] for row in lesson_runs.load(name).rows}:
        assert config in matrix.CONFIGS, config


def test_the_lessons_plots_draw_no_answer() -> None:
    figure = Figure()
    bar_axis, line_axis = figure.subplots(1, 2)
    palette = lesson_plots.colours(["measured", "missing"])
    lesson_plots.bars(bar_axis, {"measured": 10.0, "missing": None}, "req/s", palette)
    assert "no answer" in [text.get_text() for text in bar_axis.texts]
    lesson_plots.lines(
        line_axis, {"measured": {1: 5.0, 16: None}, "missing": {1: None}}, "req/s", palette
    )
    labels = [text.get_text() for text in line_axis.get_legend().get_texts()]
    assert "missing: no answer" in labels and any("no answer" in label for label in labels)
    assert palette["measured"] != palette["missing"]


def test_a_snippet_is_read_from_the_source_by_name() -> None:
    route = snippet("flask_app/routes.py", "predict")
    assert "def predict(" in route and "@bp.post" in route and "def health" not in route
    load = snippet("flask_app/app.py", "create_app", around="Predictor.load").split("\n")
    assert load[2].lstrip().startswith("#") and "Predictor.load" in load[-2]
    with pytest.raises(LookupError):
        snippet("flask_app/routes.py", "no_such_route")
