"""Babel extractor for the command line's own texts, so they reach the catalog without markers.

``pybabel extract`` (messages/babel.cfg) runs Babel's Python extractor and, on top, yields what
``cbcc … --help`` shows and ``cbcc.app.command()`` translates at run time: each ``help=`` literal of
``typer.Option``/``typer.Argument``, the first paragraph of ``typer.Typer(help=…)`` and of every
command's docstring. The message ids are exactly those texts, so changing an English help text
changes its id and the catalog test (tests/messages) names it until it has a Vietnamese text.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Collection, Iterator
from typing import IO, Any

from babel.messages.extract import extract_python

OPTION_CALLS = frozenset({"Option", "Argument"})
GROUP_CALLS = frozenset({"Typer", "command", "callback", "add_typer"})
COMMAND_DECORATORS = frozenset({"command", "callback"})


def summary(text: str) -> str:
    """The part of a help text that is translated: its first paragraph, cleaned like a docstring."""
    return inspect.cleandoc(text).partition("\n\n")[0]


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _literal(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _is_command(fn: ast.FunctionDef | ast.AsyncFunctionDef, aliases: set[str]) -> bool:
    """A typer command: decorated as one, or taking a typer option (directly or via an alias)."""
    for dec in fn.decorator_list:
        if isinstance(dec, ast.Call) and _name(dec.func) in COMMAND_DECORATORS:
            return True
    args = [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]
    for node in [a.annotation for a in args if a.annotation] + list(fn.args.defaults + fn.args.kw_defaults):
        if node is None:
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and _name(sub.func) in OPTION_CALLS:
                return True
            if isinstance(sub, ast.Name) and sub.id in aliases:
                return True
    return False


def cli_texts(source: str) -> Iterator[tuple[int, str, str]]:
    """(line, text, comment) for each help text in ``source``."""
    tree = ast.parse(source)
    aliases = {"PassphraseFile"}  # cbcc.common's shared option, imported by name
    for stmt in tree.body:
        if not isinstance(stmt, ast.Assign | ast.AnnAssign) or stmt.value is None:
            continue
        if any(isinstance(s, ast.Call) and _name(s.func) in OPTION_CALLS for s in ast.walk(stmt.value)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            aliases.update(t.id for t in targets if isinstance(t, ast.Name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            kind = _name(node.func)
            if kind in OPTION_CALLS or kind in GROUP_CALLS:
                for kw in node.keywords:
                    text = _literal(kw.value) if kw.arg == "help" else None
                    if text:
                        if kind in OPTION_CALLS:
                            yield node.lineno, text, "option help"
                        else:
                            yield node.lineno, summary(text), "command help"
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _is_command(node, aliases):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield node.lineno, summary(doc), "command help"


def extract_cli(
    fileobj: IO[bytes],
    keywords: Any,
    comment_tags: Collection[str],
    options: Any,
) -> Iterator[tuple[Any, ...]]:
    """Babel's Python extraction plus the command line's help texts (see the module docstring)."""
    yield from extract_python(fileobj, keywords, comment_tags, options)
    fileobj.seek(0)
    source = fileobj.read().decode(str(options.get("encoding", "utf-8")))
    for lineno, text, comment in cli_texts(source):
        yield lineno, None, text, [comment]
