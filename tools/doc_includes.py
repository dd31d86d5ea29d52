"""Keep code in the docs pulled from the real files: `python -m tools.doc_includes --write`.

A docs page marks a spot with ``<!-- include: path/to/file.py::name -->`` (a top-level or
nested function or class, found by name) or ``<!-- include: path/to/file.py -->`` (the whole
file), followed by a fenced code block and ``<!-- end include -->``. This module refreshes the
block from the source; a test fails when a page shows code that is no longer in the source.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MARKER = re.compile(
    r"(?P<open><!-- include: (?P<target>[^ ]+) -->\n)(?P<body>.*?)(?P<close><!-- end include -->)",
    re.DOTALL,
)


def source_of(target: str) -> str:
    path, _, name = target.partition("::")
    text = (ROOT / path).read_text()
    if not name:
        return text.rstrip("\n")
    lines = text.splitlines()
    for node in ast.walk(ast.parse(text)):
        is_definition = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        if is_definition and node.name == name:
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            chunk = lines[start : node.end_lineno]
            indent = min(len(line) - len(line.lstrip()) for line in chunk if line.strip())
            return "\n".join(line[indent:] for line in chunk)
    raise LookupError(f"{name} not found in {path}")


def fence_language(target: str) -> str:
    """The code block's language, so a page colours a Dockerfile or a YAML file as one."""
    path = Path(target.partition("::")[0])
    if path.name == "Dockerfile":
        return "dockerfile"
    return {".yaml": "yaml", ".yml": "yaml"}.get(path.suffix, "python")


def render(page: str) -> str:
    def replace(match: re.Match[str]) -> str:
        code = source_of(match["target"])
        language = fence_language(match["target"])
        return f"{match['open']}```{language}\n{code}\n```\n{match['close']}"

    return MARKER.sub(replace, page)


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the pages in place")
    args = parser.parse_args(argv)
    stale = []
    for page in pages():
        text = page.read_text()
        fresh = render(text)
        if fresh != text:
            stale.append(page.name)
            if args.write:
                page.write_text(fresh)
    verb = "refreshed" if args.write else "out of date"
    print(f"{verb}: {', '.join(stale)}" if stale else "docs code blocks match the sources")
    return 0 if args.write or not stale else 1


if __name__ == "__main__":
    sys.exit(main())
