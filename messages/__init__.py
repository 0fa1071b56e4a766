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

from messages import dates

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


def render(message: str, fields: dict[str, object], code: str | None = None) -> str:
    """``message`` translated, then its ``{fields}`` filled (the English text if a translation
    lost a field). A field that is itself a text with a template (a :class:`Message`, the trust
    core's ``Text`` or a templated error) is rendered in the same language, and so is a date, a
    time or a datetime (:mod:`messages.dates`: ``30/11/2026`` in Vietnamese, ISO in English)."""
    code = code or lang()
    fields = {k: text_in(v, code) if _templated(v) else dates.field(v, code) for k, v in fields.items()}
    template = gettext(message, code)
    try:
        return template.format(**fields) if fields else template
    except (KeyError, IndexError, ValueError):
        return message.format(**fields) if fields else message


class Message(str):
    """A text in this process's language that keeps its English id and fields, so a layer that
    answers in another language (the REST API, per request) can render it again: an error
    raised as ``GatewayError(_("door {id} does not exist", id=d))`` reads right in either."""

    msgid: str
    fields: dict[str, object]

    def __new__(cls, msgid: str, fields: dict[str, object]) -> Message:
        text = super().__new__(cls, render(msgid, fields))
        text.msgid, text.fields = msgid, fields
        return text

    def in_lang(self, code: str) -> str:
        return render(self.msgid, self.fields, code)

    def __reduce__(self) -> tuple[type[Message], tuple[str, dict[str, object]]]:
        return (Message, (self.msgid, self.fields))  # pickled across processes: id and fields


class Joined(Message):
    """Messages joined by ``sep`` (a headline and its rows), each rendered again by :meth:`in_lang`."""

    parts: tuple[str, ...]
    sep: str

    def __new__(cls, parts: tuple[str, ...] | list[str], sep: str = "\n") -> Joined:
        text = str.__new__(cls, sep.join(parts))
        text.msgid, text.fields, text.parts, text.sep = sep.join(parts), {}, tuple(parts), sep
        return text

    def in_lang(self, code: str) -> str:
        return self.sep.join(text_in(p, code) for p in self.parts)

    def __reduce__(self) -> tuple[type[Joined], tuple[tuple[str, ...], str]]:  # type: ignore[override]
        return (Joined, (self.parts, self.sep))


def _(message: str, /, **fields: object) -> str:
    """Translate ``message`` (an English msgid) and fill its ``{fields}``; the result remembers
    both (:class:`Message`)."""
    return Message(message, fields)


def _parts(value: object) -> tuple[str, dict[str, object]] | None:
    """(template, fields) of a text that keeps them: a :class:`Message`, or the trust core's
    ``Text``/``TemplatedError`` (trustcore/errors.py), which cannot import this package."""
    if isinstance(value, BaseException) and len(value.args) == 1:
        value = value.args[0]
    if isinstance(value, Message):
        return value.msgid, value.fields
    template, fields = getattr(value, "template", None), getattr(value, "fields", None)
    if isinstance(template, str) and template and isinstance(fields, dict):
        return template, fields
    return None


def _templated(value: object) -> bool:
    return _parts(value) is not None


def text_in(value: object, code: str | None = None) -> str:
    """``value`` (often an exception's message) in language ``code`` (default: this process's)
    when it keeps its template (:class:`Message`, the trust core's texts and errors), else as is."""
    if isinstance(value, BaseException) and len(value.args) == 1:
        value = value.args[0]
    if isinstance(value, Message):  # a Joined headline and rows too
        return value.in_lang(code or lang())
    parts = _parts(value)
    return render(parts[0], parts[1], code) if parts else str(value)


def message_of(value: object) -> str:
    """``value`` as a :class:`Message` when it keeps its template (e.g. a ``TrustcoreError``), so a
    layer that answers per request (the REST API) can render it again; else its plain text."""
    if isinstance(value, BaseException) and len(value.args) == 1:
        value = value.args[0]
    if isinstance(value, Message):
        return value
    parts = _parts(value)
    return Message(*parts) if parts else str(value)


def N_(message: str) -> str:
    """Mark a message for extraction; translate it later with ``_``."""
    return message
