"""The one catalog of what people read (CLI help and errors, demo, reports, API error texts).

Message ids are English; ``messages/vi.po`` (gettext, maintained with Babel: ``pybabel extract``
/ ``update``) holds the Vietnamese. The language is ``CBCC_LANG`` (``vi`` or ``en``), else the
locale (``LC_ALL``, ``LC_MESSAGES``, ``LANG``) when it names one of them, else Vietnamese — the
operators' language. A neutral top-level package so provisioning, gateway and the CLI all import
it without cycles; it imports nothing of theirs.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

LANGS = ("vi", "en")
DEFAULT = "vi"
_forced: str | None = None


def lang() -> str:
    """The language of this process's messages."""
    if _forced is not None:
        return _forced
    explicit = os.environ.get("CBCC_LANG", "").strip().lower()[:2]
    if explicit in LANGS:
        return explicit
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        code = os.environ.get(var, "").strip().lower()[:2]
        if code in LANGS:
            return code
    return DEFAULT


def set_lang(code: str | None) -> None:
    """Force a language (``None``: back to the environment), e.g. per API request."""
    global _forced
    if code is not None and code not in LANGS:
        raise ValueError(f"language must be one of {', '.join(LANGS)}")
    _forced = code


@cache
def catalog(code: str) -> dict[str, str]:
    """msgid → msgstr for ``code`` (English is the identity)."""
    if code == "en":
        return {}
    from babel.messages.pofile import read_po

    with (Path(__file__).parent / f"{code}.po").open("rb") as f:
        cat = read_po(f)
    return {str(m.id): str(m.string) for m in cat if m.id and isinstance(m.id, str) and m.string}


def gettext(message: str, code: str | None = None) -> str:
    return catalog(code or lang()).get(message) or message


_ = gettext


def N_(message: str) -> str:
    """Mark a message for extraction; translate it later with ``_``."""
    return message
