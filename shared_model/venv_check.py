"""Stops a lab command started outside .venv with one line that says what to run instead.

Standard library only: it runs before the packages it looks for can be imported.
"""

from __future__ import annotations

import importlib.util
import sys


def require(*modules: str) -> None:
    """Exit with the command that works when any of these modules is not installed here."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemExit(setup_hint(missing[0]))


def setup_hint(missing: str) -> str:
    # sys.orig_argv is the command as typed, e.g. ['python3', '-m', 'benchmarks', 'run'].
    command = " ".join([".venv/bin/python", *sys.orig_argv[1:]])
    return (
        f"No module named {missing!r} for {sys.executable}: the lab's packages live in .venv.\n"
        f"Run `make setup` once (make run and make test do it for you), then:\n  {command}"
    )
