"""The docs show the code that runs and the runs that were measured, every link between pages
and files resolves, and the main path stays within its word budget."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks.reports.rows import fmt, read_rows
from tools.doc_includes import DOCS, MARKER, ROOT, TABLE, pages, render

LINK = re.compile(r"\]\((?!https?://|#|mailto:)([^)#\s]+)")
# The main path: the lessons directly in docs/; reference pages live in docs/appendix/.
LESSONS = sorted(DOCS.glob("*.md"))
# A cap on each part's growth. Part one, the ten lessons with start here and the glossary: a
# first reader took 2.5 to 3.5 hours over about 9,000 words. Part two, beyond one process
# (model servers, reloading, scaling: about 1,500 words each): its own pages, start here's
# table rows that link them, and any span between the markers below (start here's note on
# it, its glossary section).
MAX_LESSON_WORDS = {"part one": 9_000, "part two": 6_000}
PART_TWO = ("model-servers.md", "model-updates.md", "scaling.md")
PART_TWO_OPEN, PART_TWO_CLOSE = "<!-- part two -->", "<!-- end part two -->"


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.mark.parametrize("page", pages(), ids=page_id)
def test_code_and_tables_shown_in_docs_are_fresh(page: Path) -> None:
    text = page.read_text()
    assert render(text) == text, "run `make docs` to pull the current code and runs into the page"


@pytest.mark.parametrize("page", [*pages(), ROOT / "README.md"], ids=page_id)
def test_relative_links_resolve(page: Path) -> None:
    missing = [link for link in LINK.findall(page.read_text()) if not (page.parent / link).exists()]
    assert not missing, f"broken links in {page_id(page)}: {missing}"


def test_docs_pull_code_from_both_apps() -> None:
    targets = {m["target"] for page in pages() for m in MARKER.finditer(page.read_text())}
    assert any(t.startswith("flask_app/") for t in targets)
    assert any(t.startswith("fastapi_app/") for t in targets)


def words_by_part(page: Path) -> dict[str, int]:
    """The page's words in each part of the main path."""
    words = dict.fromkeys(MAX_LESSON_WORDS, 0)
    marked = False
    for line in page.read_text().splitlines():
        marked = marked or line.strip() == PART_TWO_OPEN
        links_part_two = line.startswith("|") and any(f"]({name}" in line for name in PART_TWO)
        two = page.name in PART_TWO or marked or links_part_two
        words["part two" if two else "part one"] += len(line.split())
        marked = marked and line.strip() != PART_TWO_CLOSE
    return words


def test_each_part_of_the_main_path_stays_within_its_word_budget() -> None:
    assert [name for name in PART_TWO if not (DOCS / name).is_file()] == []
    words = {page.name: words_by_part(page) for page in LESSONS}
    for part, budget in MAX_LESSON_WORDS.items():
        held = {name: counts[part] for name, counts in words.items() if counts[part]}
        assert sum(held.values()) <= budget, (
            f"{part} of docs/*.md holds {sum(held.values())} words, over {budget}: move "
            f"reference material to docs/appendix/ ({held})"
        )


def test_every_lesson_opens_with_what_you_learn_and_closes_with_an_exercise() -> None:
    lessons = [p for p in LESSONS if p.name not in ("README.md", "glossary.md")]
    for page in lessons:
        text = page.read_text()
        assert "**What you will learn**" in text.split("\n## ")[0], page.name
        assert "## Exercise" in text and "<details><summary>Solution" in text, page.name


# A measured figure as prose states one: a decimal or a thousands comma, then a unit.
FIGURE = re.compile(
    r"(?<![\w.,])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+)"
    r" ?(?=x\b|ms\b|MiB\b|req|requests a second|a second)"
)


def prose(text: str) -> str:
    """The page less its code blocks, includes and generated tables."""
    text = TABLE.sub("", MARKER.sub("", text))
    return re.sub(r"```.*?```", "", text, flags=re.DOTALL)


def committed_figures() -> set[str]:
    """Every number the committed runs' reports print, as they print it, and each round's
    measurements in results.csv as the reports would print them (a range of rounds quotes them)."""
    results = ROOT / "benchmarks" / "results"
    reports = results.glob("*/report.md")
    figures = {
        n for report in reports for n in re.findall(r"\d[\d,]*(?:\.\d+)?", report.read_text())
    }
    for row in (row for run in results.glob("*/results.csv") for row in read_rows(run.parent)):
        figures |= {fmt(value, digits) for value in row.values() for digits in (0, 1)} - {""}
    return figures


@pytest.mark.parametrize("page", [*pages(), ROOT / "README.md"], ids=page_id)
def test_figures_in_the_prose_come_from_committed_runs(page: Path) -> None:
    reports = committed_figures()
    invented = [f for f in FIGURE.findall(prose(page.read_text())) if f not in reports]
    assert not invented, (
        f"{page_id(page)} states figures no committed run in benchmarks/results/ shows: {invented}"
    )


# A link into the glossary: the words linked, the page's path, and the anchor after "#".
GLOSSARY_LINK = re.compile(r"\[([^\]]+)\]\(((?:[\w.-]+/)*glossary\.md)(?:#([^)\s]*))?\)")
# Only a link to the glossary as a whole, named as such, may go without a term's anchor.
WHOLE_GLOSSARY = {"glossary", "glossary.md", "docs/glossary.md"}


def glossary_anchors() -> list[str]:
    """The glossary's targets: each term's explicit <a id>, and GitHub's slug of each heading."""
    text = (DOCS / "glossary.md").read_text()
    headings = re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)
    slugs = [re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings]
    return re.findall(r'<a id="([^"]+)"></a>', text) + slugs


def misplaced_glossary_links(text: str, folder: Path) -> list[str]:
    anchors = set(glossary_anchors())
    return [
        f"[{words}]({target}#{anchor})"
        for words, target, anchor in GLOSSARY_LINK.findall(text)
        if (folder / target).resolve() == (DOCS / "glossary.md").resolve()
        and anchor not in anchors
        and not (not anchor and words.strip("`").lower() in WHOLE_GLOSSARY)
    ]


def test_glossary_anchors_are_unique_and_a_bare_term_link_is_caught() -> None:
    anchors = glossary_anchors()
    assert len(anchors) == len(set(anchors)), "two glossary entries share an anchor"
    assert misplaced_glossary_links("[GIL](glossary.md) [x](glossary.md#no-such-term)", DOCS) == [
        "[GIL](glossary.md#)",
        "[x](glossary.md#no-such-term)",
    ]
    assert misplaced_glossary_links("[GIL](glossary.md#gil), [glossary](glossary.md)", DOCS) == []


@pytest.mark.parametrize("page", [*pages(), ROOT / "README.md"], ids=page_id)
def test_glossary_links_land_on_their_term(page: Path) -> None:
    misplaced = misplaced_glossary_links(page.read_text(), page.parent)
    assert not misplaced, f"{page_id(page)}: link to an <a id> of docs/glossary.md: {misplaced}"


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


@pytest.mark.parametrize("page", [*pages(), ROOT / "README.md"], ids=page_id)
def test_commands_shown_run_as_written(page: Path) -> None:
    lines = [line for line in shell_lines(page.read_text()) if NEEDS_VENV.search(line)]
    assert not lines, f"{page_id(page)}: write .venv/bin/python -m ... (or a make target): {lines}"


def test_what_is_where_names_every_module() -> None:
    """A reader finds any module from the README's map in one step."""
    readme = (ROOT / "README.md").read_text()
    where = readme[readme.index("What is where") :]
    modules = [
        path
        for folder in ("shared_model", "flask_app", "fastapi_app", "benchmarks", "tools")
        for path in (ROOT / folder).rglob("*.py")
        if path.name != "__init__.py" and ".venv" not in path.parts
    ]
    unnamed = [str(path.relative_to(ROOT)) for path in modules if path.name not in where]
    assert not unnamed, f"README's What is where does not name: {unnamed}"
