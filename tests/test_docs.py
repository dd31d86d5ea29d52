"""The docs show the code that runs, and every link between pages and files resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools.doc_includes import MARKER, ROOT, pages, render

LINK = re.compile(r"\]\((?!https?://|#|mailto:)([^)#\s]+)")


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_code_shown_in_docs_is_the_code_in_the_files(page: Path) -> None:
    text = page.read_text()
    assert render(text) == text, "run `make docs` to pull the current code into the page"


@pytest.mark.parametrize("page", [*pages(), ROOT / "README.md"], ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    missing = [link for link in LINK.findall(page.read_text()) if not (page.parent / link).exists()]
    assert not missing, f"broken links in {page.name}: {missing}"


def test_docs_pull_code_from_both_apps() -> None:
    targets = {m["target"] for page in pages() for m in MARKER.finditer(page.read_text())}
    assert any(t.startswith("flask_app/") for t in targets)
    assert any(t.startswith("fastapi_app/") for t in targets)


# A command needing an active venv, shown as .venv/bin/... so it runs in a fresh terminal.
NEEDS_VENV = re.compile(
    r"(?<![\w/\\.-])(?<!-m )(python3? -m |locust -f |pytest -[sm] |gunicorn -c )"
)


def shell_lines(text: str) -> list[str]:
    """The page's lines, less those inside a Dockerfile or YAML block: they run in a container."""
    kept, container = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            container = line.strip("`").strip() in ("dockerfile", "yaml") and not container
        elif not container:
            kept.append(line)
    return kept


@pytest.mark.parametrize("page", [*pages(), ROOT / "README.md"], ids=lambda p: p.name)
def test_commands_shown_run_as_written(page: Path) -> None:
    lines = [line for line in shell_lines(page.read_text()) if NEEDS_VENV.search(line)]
    assert not lines, f"{page.name}: write .venv/bin/python -m ... (or a make target): {lines}"
