"""The lessons never rot: each notebook follows the house rules and executes top to bottom."""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

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
