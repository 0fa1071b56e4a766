"""The error type of the shared formats and crypto: bad input, a bad key file, a refused overwrite.

Callers (the gateway, provisioning, the ``cbcc`` command layer) decide what it means for them;
the command layer turns it into a one-line message and an exit code.
"""

from collections.abc import Callable


class TrustcoreError(Exception):
    """A format, key or file problem found by the trust core; the message is fit for a user.

    Raised as ``TrustcoreError(N_("cannot read {path}"), path=p)`` it keeps the English template
    and its fields, so the command layer can show it from the catalog (messages/vi.po) — the trust
    core itself imports nothing of it."""

    def __init__(self, message: str = "", /, **fields: object) -> None:
        super().__init__(message.format(**fields) if fields else message)
        self.template = message
        self.fields = fields


def N_(message: str) -> str:  # gettext's name: ``pybabel extract -k N_`` finds it
    """Mark a message for the catalog (messages/vi.po) without importing it."""
    return message


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
