"""Code a lesson shows, read by name from the lab's files as they are now, never copied.

snippet("flask_app/routes.py", "predict")  # a function or class, nested ones included
snippet("flask_app/app.py", "create_app", around="Predictor.load")  # one statement of it
"""

from __future__ import annotations

import ast
import textwrap

from benchmarks.servers import ROOT

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def definition(path: str, name: str) -> list[str]:
    """The lines of the function or class called name in path (nested ones included), decorators
    included, as indented in the file."""
    lines = (ROOT / path).read_text().splitlines()
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, Definition) and node.name == name:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            return lines[first : node.end_lineno]
    raise LookupError(f"no function or class {name!r} in {path}")


def snippet(path: str, name: str, around: str = "") -> str:
    """The definition called name in path as a fenced Markdown block.

    With around, only the line that contains it and the comment lines just above it.
    """
    chosen = definition(path, name)
    if around:
        hit = next(i for i, line in enumerate(chosen) if around in line)
        start = hit
        while start > 0 and chosen[start - 1].strip().startswith("#"):
            start -= 1  # the comment that says why belongs to the line
        chosen = chosen[start : hit + 1]
    code = textwrap.dedent("\n".join(chosen))
    return f"`{path}`, `{name}`\n```python\n{code}\n```"
