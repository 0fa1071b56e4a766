"""The error type of the shared formats and crypto: bad input, a bad key file, a refused overwrite.

Callers (the gateway, provisioning, the ``cbcc`` command layer) decide what it means for them;
the command layer turns it into a one-line message and an exit code.

The trust core imports nothing of the catalog (messages/), yet what it says reaches people: every
refusal and every load ``detail`` is an English template marked with ``N_`` plus its fields
(:class:`Text`, :class:`TemplatedError`), and the layer that shows it renders the template from
messages/vi.po (``messages.text_in``). The English text stays the value (logs, tests, ``str``).
"""

from collections.abc import Callable


def N_(message: str) -> str:  # gettext's name: ``pybabel extract -k N_`` finds it
    """Mark a message for the catalog (messages/vi.po) without importing it."""
    return message


class Text(str):
    """An English text that keeps its catalog template and fields, e.g. a load's ``detail``:
    ``Text(N_("{n} entries, at most {max}"), n=300, max=256)``. A field may itself be a Text or a
    templated error; the catalog renders those in the same language."""

    template: str
    fields: dict[str, object]

    def __new__(cls, template: str = "", /, **fields: object) -> "Text":
        text = super().__new__(cls, template.format(**fields) if fields else template)
        text.template, text.fields = template, fields
        return text


class TemplatedError(Exception):
    """An exception whose message is a :class:`Text` (``template`` and ``fields`` kept), so its
    ``str`` is English and the command layer or the gateway can show it from the catalog."""

    def __init__(self, message: str = "", /, **fields: object) -> None:
        text = Text(message, **fields)
        super().__init__(text)
        self.template = text.template
        self.fields = text.fields

    def __reduce__(self) -> tuple[object, ...]:  # pickled across processes: template and fields
        return (_rebuild, (type(self), self.template, self.fields))


def _rebuild(cls: type[TemplatedError], template: str, fields: dict[str, object]) -> TemplatedError:
    return cls(template, **fields)


class TrustcoreError(TemplatedError):
    """A format, key or file problem found by the trust core; the message is fit for a user.

    Raised as ``TrustcoreError(N_("cannot read {path}"), path=p)`` it keeps the English template
    and its fields, so the command layer can show it from the catalog (messages/vi.po) — the trust
    core itself imports nothing of it."""


_renderer: Callable[[str, dict[str, object]], str] | None = None


def set_renderer(render: Callable[[str, dict[str, object]], str] | None) -> None:
    """Let the command layer show the trust core's texts from the catalog (``messages.render``)."""
    global _renderer
    _renderer = render


def text(template: str, /, **fields: object) -> str:
    """A text a person reads (a prompt): from the catalog when the caller installed it, else English."""
    if _renderer is not None:
        return _renderer(template, fields)
    return template.format(**fields) if fields else template
