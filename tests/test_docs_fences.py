"""Docs and the walk cannot drift: every block showing commands says whether it is walked
(docs/docs-walk.md), and the sequences the issue names are walked (tests/e2e/test_docs_walk.py)."""

from __future__ import annotations

from support.docs_walk import Block, blocks, documents
from support.micropython_runner import ROOT


def _all_blocks() -> list[Block]:
    return [b for p in documents(ROOT) for b in blocks(p)]


def test_every_command_block_says_whether_it_is_walked() -> None:
    """A block showing commands is ``sh`` (walked, or skipped with a reason) or ``text`` (a
    synopsis with placeholders): docs cannot gain an unchecked command sequence by accident."""
    bad = [
        f"{b.path.relative_to(ROOT)}:{b.line}"
        for b in _all_blocks()
        if b.has_commands() and b.info not in ("sh", "text")
    ]
    assert not bad, f"fence these blocks as sh (walked) or text (synopsis): {bad}"
    skipped_without_reason = [
        f"{b.path.relative_to(ROOT)}:{b.line}" for b in _all_blocks() if b.skip is not None and not b.skip
    ]
    assert not skipped_without_reason
    for b in _all_blocks():
        if b.walked:
            assert b.commands(), f"{b.path}:{b.line}: an sh block without commands"


def test_the_walk_covers_the_first_hour() -> None:
    """The sequences the issue names are walked, not only described."""
    walked = " ".join(c.text for b in _all_blocks() if b.walked for c in b.commands())
    for needle in (
        "keys init-root",
        "keys new-issuer",
        "card mint --record examples/record.json",
        "card verify",
        "verify_credential.py",
        "keys card-keys init",
        "gateway init",
        "gateway reader add",
        "reader provision",
        "gateway run",
        "gateway token list",
        "virtual_reader.py",
        "demo",
    ):
        assert needle in walked, needle


