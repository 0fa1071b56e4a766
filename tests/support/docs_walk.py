"""Read the command sequences out of the README and docs/ (convention: docs/docs-walk.md).

A fenced block whose info string is ``sh`` is a sequence a new operator types verbatim; it is
walked unless the line before its fence is ``<!-- walk: skip REASON -->``. Synopses with
placeholders are fenced ``text``. Inside a walked block:

- ``\\`` at the end of a line continues the command;
- ``#> TEXT`` lines right after a command: TEXT must appear in its output;
- a command whose comment says ``runs until Ctrl-C`` is started in the background; the walk goes
  on once its ``#>`` texts have appeared, and stops it with SIGTERM when the block ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

SKIP = re.compile(r"<!--\s*walk:\s*skip\b(?P<reason>.*?)-->")
FENCE = re.compile(r"^(?P<fence>```+)(?P<info>[^`]*)$")
COMMAND_START = re.compile(r"^\s*(uv run |cbcc |micropython |\$ )")
FOREVER = "runs until Ctrl-C"


@dataclass
class Command:
    line: int
    text: str
    expect: list[str] = field(default_factory=list)

    @property
    def background(self) -> bool:
        return FOREVER in self.text


@dataclass
class Block:
    path: Path
    line: int
    info: str
    skip: str | None
    body: list[str]

    @property
    def walked(self) -> bool:
        return self.info == "sh" and self.skip is None

    def has_commands(self) -> bool:
        return any(COMMAND_START.match(b) for b in self.body)

    def commands(self) -> list[Command]:
        out: list[Command] = []
        pending = ""
        start = 0
        for offset, raw in enumerate(self.body):
            number = self.line + 1 + offset
            stripped = raw.strip()
            if pending:
                pending += " " + stripped.removesuffix("\\").strip()
                if not stripped.endswith("\\"):
                    out.append(Command(start, pending))
                    pending = ""
                continue
            if not stripped:
                continue
            if stripped.startswith("#>"):
                if not out:
                    raise ValueError(f"{self.path}:{number}: '#>' before any command")
                out[-1].expect.append(stripped[2:].strip())
                continue
            if stripped.startswith("#"):
                continue
            if stripped.endswith("\\"):
                pending, start = stripped.removesuffix("\\").strip(), number
                continue
            out.append(Command(number, stripped))
        if pending:
            raise ValueError(f"{self.path}:{start}: the last command continues past the block")
        return out


def blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info = m["fence"], m["info"].strip()
        prev = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        skip = SKIP.search(prev)
        j = i + 1
        while j < len(lines) and not lines[j].startswith(fence):
            j += 1
        found.append(
            Block(
                path,
                i + 1,
                info.split()[0] if info else "",
                skip["reason"].strip(" —-:") if skip else None,
                lines[i + 1 : j],
            )
        )
        i = j + 1
    return found


def documents(root: Path) -> list[Path]:
    """README.md first, then docs/ and the other READMEs, in a fixed order."""
    docs = sorted((root / "docs").glob("*.md"))
    return [
        root / "README.md",
        *docs,
        root / "gateway" / "README.md",
        *sorted((root / "hardware").glob("*.md")),
    ]
