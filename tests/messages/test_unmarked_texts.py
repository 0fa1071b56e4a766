"""Texts that reach a person without the catalog (messages/vi.po), counted per file, may only fall.

The walk reads the AST of trustcore/, provisioning/, gateway/ and cbcc/ and counts a string literal
(plain, f-string, ``"…".format()``, ``+`` of literals, either branch of ``a if c else b``) that is
handed to a person:

- the message of ``raise SomeError(…)`` (first positional argument, or ``message=``/``detail=``);
- ``HTTPException(status, "…")`` / ``HTTPException(detail="…")`` — the API's error text;
- what ``print``, ``typer.echo``/``secho``, ``console.print``, ``sys.stderr.write``, the CLI's
  ``fail``/``warn``, ``typer.BadParameter`` and rich ``Table(…)``/``add_column`` headings show.

Not counted, on principle (each is a rule here, not a list of files):

- a literal passed through ``_()``, ``N_()``, ``gettext``/``render``/``text`` (``trustcore.errors.text``),
  or an exception raised with a catalog template (``TrustcoreError(N_("…{path}"), path=p)``);
- machine codes: one token with no space and no capital, e.g. ``issuer_not_valid``, ``topic:unexpected``
  (scripts and auditors match them; ``messages/words.py`` explains them beside the code);
- texts with no word in them (``"\\n"``, ``f"{path}: {reason}"``: nothing to translate);
- programming-error exceptions that signal a bug to a developer, never an operator's input:
  ``PROGRAMMING_ERRORS`` below;
- log calls (``log.info/warning/…``): the structured JSON log is for administrators' tools, in English.

Known blind spots: a text held in a variable first (``msg = "…"; raise X(msg)``) and a library's
message passed on (``raise X(str(exc))``) are not literals at the sink; review catches those.

The ceilings live in ``unmarked_text_ceilings.json``. A file above its ceiling fails (mark the new
text); a file below it fails too, so a ceiling never leaves room for a new unmarked text — lower
them, after marking texts or merging branches that did, with::

    CBCC_UPDATE_TEXT_CEILINGS=1 uv run pytest tests/messages/test_unmarked_texts.py -q -s

which rewrites the file and prints the per-package table (``-s`` shows it on every run).
"""

from __future__ import annotations

import ast
import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("trustcore", "provisioning", "gateway", "cbcc")
CEILINGS = Path(__file__).with_name("unmarked_text_ceilings.json")
UPDATE_VAR = "CBCC_UPDATE_TEXT_CEILINGS"

MARKERS = frozenset({"_", "N_", "gettext", "render", "text"})
PROGRAMMING_ERRORS = frozenset(
    {"AssertionError", "NotImplementedError", "TypeError", "AttributeError", "KeyError", "IndexError",
     "StopIteration", "SystemExit", "Exit"}  # typer.Exit / SystemExit carry a code, not a text
)  # fmt: skip
SHOW_CALLS = frozenset({"print", "echo", "secho", "fail", "warn", "Table", "add_column"})
MARKUP = re.compile(r"\[/?[a-z ]+\]")  # rich markup: [bold], [/green]
WORD = re.compile(r"[A-Za-z]{2,}")
CODE = re.compile(r"[a-z0-9_.:/\-]+")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    text: str


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _is_human(text: str) -> bool:
    bare = MARKUP.sub("", text).strip()
    return bool(WORD.search(bare)) and not CODE.fullmatch(bare)


def unmarked(node: ast.expr | None) -> str | None:
    """The literal text of ``node`` when it reaches a person uncatalogued, else None."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value if _is_human(node.value) else None
    if isinstance(node, ast.JoinedStr):  # a placeholder keeps "{x} failed: {y}" from reading as a code
        parts = "".join(str(v.value) if isinstance(v, ast.Constant) else "{}" for v in node.values)
        return parts if _is_human(parts) else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return unmarked(node.left) or unmarked(node.right)
    if isinstance(node, ast.IfExp):
        return unmarked(node.body) or unmarked(node.orelse)
    if isinstance(node, ast.Call):
        if _name(node.func) in MARKERS:
            return None
        if isinstance(node.func, ast.Attribute) and node.func.attr == "format":
            return unmarked(node.func.value)
    return None


def _message_args(call: ast.Call, keywords: tuple[str, ...]) -> list[ast.expr]:
    return [*call.args[:1], *(k.value for k in call.keywords if k.arg in keywords)]


def _shown(call: ast.Call) -> list[ast.expr]:
    """The arguments of ``call`` a person reads, if it is a display call."""
    name = _name(call.func)
    if name == "HTTPException":
        return [*call.args[1:2], *(k.value for k in call.keywords if k.arg == "detail")]
    stream = isinstance(call.func, ast.Attribute) and _name(call.func.value) in ("stderr", "stdout")
    if name == "write" and stream:
        return call.args[:1]
    if name in SHOW_CALLS:
        return [*call.args, *(k.value for k in call.keywords if k.arg in ("title", "message", "header"))]
    return []


def findings(source: str, path: str) -> list[Finding]:
    out: list[Finding] = []
    tree = ast.parse(source)
    raised: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            call = node.exc
            raised.add(id(call))
            if _name(call.func) in PROGRAMMING_ERRORS or _name(call.func) == "HTTPException":
                continue
            for arg in _message_args(call, ("message", "detail", "msg")):
                text = unmarked(arg)
                if text is not None:
                    out.append(Finding(path, node.lineno, text))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for arg in _shown(node):
                text = unmarked(arg)
                if text is not None:
                    out.append(Finding(path, node.lineno, text))
    return sorted(out, key=lambda f: f.line)


def scan() -> dict[str, list[Finding]]:
    found: dict[str, list[Finding]] = {}
    for pkg in PACKAGES:
        for file in sorted((ROOT / pkg).rglob("*.py")):
            rel = file.relative_to(ROOT).as_posix()
            hits = findings(file.read_text(encoding="utf-8"), rel)
            if hits:
                found[rel] = hits
    return found


def table(counts: dict[str, int]) -> str:
    per_pkg = Counter({p: 0 for p in PACKAGES})
    for path, n in counts.items():
        per_pkg[path.split("/")[0]] += n
    lines = [f"{'package':<14}{'unmarked texts':>16}", *(f"{p:<14}{per_pkg[p]:>16}" for p in PACKAGES)]
    lines.append(f"{'total':<14}{sum(per_pkg.values()):>16}")
    return "\n".join(lines)


def test_no_new_unmarked_text() -> None:
    found = scan()
    counts = {path: len(hits) for path, hits in sorted(found.items())}
    if os.environ.get(UPDATE_VAR) == "1":
        CEILINGS.write_text(json.dumps(counts, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print("\n" + table(counts))
    ceilings: dict[str, int] = json.loads(CEILINGS.read_text(encoding="utf-8"))
    over = {p: n for p, n in counts.items() if n > ceilings.get(p, 0)}
    under = {p: (counts.get(p, 0), c) for p, c in ceilings.items() if counts.get(p, 0) < c}
    detail = "\n".join(f"  {f.path}:{f.line}: {f.text[:90]!r}" for p in over for f in found[p])
    assert not over, (
        f"new text(s) a person reads without the catalog — mark them with messages._() and translate "
        f"them in messages/vi.po (see this test's docstring for what does not count):\n{detail}"
    )
    assert not under, (
        f"fewer unmarked texts than the ceilings {under} (count, ceiling): lower them with "
        f"{UPDATE_VAR}=1 uv run pytest {Path(__file__).relative_to(ROOT)} -q -s"
    )


def test_the_walk_finds_each_kind_of_sink_and_skips_the_principled_exclusions() -> None:
    source = """
raise CbccError("cannot read the file")
raise CbccError(f"cannot read {path}")
raise CbccError("cannot read {p}".format(p=p))
raise HTTPException(404, detail="no such reader")
raise typer.BadParameter("must be positive")
typer.echo("[green]all done[/green] " + str(n))
console.print("Gateway is " + ("up" if up else "down"))
sys.stderr.write("interrupted by the user\\n")
fail(f"{path} is not a reader", 1)
table = Table("Reader", "Site")
raise CbccError(_("cannot read the file"))
raise TrustcoreError(N_("cannot read {path}"), path=p)
raise CbccError("issuer_not_valid")
raise CbccError(f"{path}: {exc}")
raise AssertionError("unreachable state")
raise CbccError(str(exc))
log.warning("reader %s is not known", rid)
console.print(_("Gateway is up") + "\\n")
"""
    hits = findings(source, "x.py")
    assert [h.line for h in hits] == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 11]
    assert unmarked(ast.parse('"[bold]ok[/bold]"', mode="eval").body) is None  # a code inside markup
