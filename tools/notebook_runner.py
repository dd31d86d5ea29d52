"""Execute the lesson notebooks: in place for `make notebooks`, or as a throwaway copy for tests.

.venv/bin/python -m tools.notebook_runner --in-place            # all of notebooks/*.ipynb
.venv/bin/python -m tools.notebook_runner notebooks/01_*.ipynb  # execute, keep the file unchanged
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CELL_TIMEOUT_S = 600


def lesson_notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def execute(path: Path, in_place: bool = False) -> nbformat.NotebookNode:
    """Run every cell top to bottom in a fresh kernel, from the notebooks folder."""
    notebook = nbformat.read(path, as_version=4)
    # Fixed seeds live in the notebooks; this keeps plots free of machine-specific font noise.
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        # No timestamps in the cells: a lesson run again changes only where its outputs do.
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)  # timestamps an earlier run left behind
    if in_place:
        nbformat.write(notebook, path)
    return notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=".venv/bin/python -m tools.notebook_runner", description=__doc__.splitlines()[0]
    )
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--in-place", action="store_true", help="write outputs into the files")
    args = parser.parse_args(argv)
    for path in args.notebooks or lesson_notebooks():
        started = time.monotonic()
        execute(path, in_place=args.in_place)
        print(f"{path.name}: executed in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
