"""Finding every user-facing Chinese string, so each has an English translation.

Used by ``kuaishu i18n-check`` style tests: templates' ``_("…")`` calls and Chinese string
literals in the code (error messages, labels) that are not docstrings.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).parent
CJK = re.compile(r"[\u3400-\u9fff\uff01-\uff5e\u3000-\u303f]")
TEMPLATE_CALL = re.compile(r"""_\(\s*(?P<q>["'])(?P<text>.+?)(?P=q)""")
# Data, not interface: demo names, the CLI (Chinese only), the seed registry of data elements,
# the field names of a scraped portal and of other portals.
NOT_INTERFACE = {"demo.py", "cli.py", "messages.py", "elements.py", "guangxi.py", "portals.py"}
NOT_INTERFACE_DIRS = {"migrations"}


def _docstring_nodes(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def python_messages(root: Path = PACKAGE) -> Iterator[tuple[str, Path]]:
    """Chinese string literals in the code that a user can read."""
    for path in sorted(root.rglob("*.py")):
        if path.name in NOT_INTERFACE or NOT_INTERFACE_DIRS & set(path.parts):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = _docstring_nodes(tree)
        parents = {
            id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)
        }
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            if id(node) in docstrings or not CJK.search(node.value):
                continue
            if isinstance(parents.get(id(node)), ast.JoinedStr):
                continue
            if _is_keyword(parents, node, {"description", "summary", "comment"}):
                continue
            if _is_comment_value(parents, node):
                continue
            yield node.value, path


def _is_comment_value(parents: dict[int, ast.AST], node: ast.AST) -> bool:
    """A table comment in ``__table_args__ = {"comment": …}`` is schema, not interface."""
    parent = parents.get(id(node))
    if not isinstance(parent, ast.Dict):
        return False
    for key, value in zip(parent.keys, parent.values, strict=True):
        if value is node and isinstance(key, ast.Constant) and key.value == "comment":
            return True
    return False


def _is_keyword(parents: dict[int, ast.AST], node: ast.AST, names: set[str]) -> bool:
    parent = parents.get(id(node))
    return isinstance(parent, ast.keyword) and parent.arg in names


def template_messages(root: Path = PACKAGE / "web" / "templates") -> Iterator[tuple[str, Path]]:
    """Strings passed to ``_()`` in Jinja templates."""
    for path in sorted(root.rglob("*.html")):
        for match in TEMPLATE_CALL.finditer(path.read_text(encoding="utf-8")):
            if CJK.search(match.group("text")):
                yield match.group("text"), path


def all_messages() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for text, path in [*python_messages(), *template_messages()]:
        found.setdefault(text, path)
    return found
