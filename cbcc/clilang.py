"""The command-line framework's own words (Typer's panels and usage errors) from our catalog.

Typer keeps its panel titles in module constants and writes its usage errors (from its bundled
Click) as plain English f-strings; :func:`install` sets the constants from ``messages`` and
rewrites the usual usage errors through :data:`USAGE_ERRORS`, so ``Usage:``, ``Options``,
``[required]`` and ``Missing option '--out'.`` read in the operator's language like the rest of
the help. An error that matches no pattern keeps Typer's English.
"""

from __future__ import annotations

import re
from typing import Any

from messages import N_, gettext

# typer.rich_utils constants
PANEL = {
    "DEFAULT_STRING": N_("[default: {}]"),
    "ENVVAR_STRING": N_("[env var: {}]"),
    "REQUIRED_LONG_STRING": N_("[required]"),
    "DEPRECATED_STRING": N_("(deprecated) "),
    "ARGUMENTS_PANEL_TITLE": N_("Arguments"),
    "OPTIONS_PANEL_TITLE": N_("Options"),
    "COMMANDS_PANEL_TITLE": N_("Commands"),
    "ERRORS_PANEL_TITLE": N_("Error"),
    "ABORTED_TEXT": N_("Aborted."),
    "RICH_HELP": N_("Try [blue]'{command_path} {help_option}'[/] for help."),
}
USAGE = N_("Usage:")

# Typer's usage errors (English, as its bundled Click writes them) → message ids
USAGE_ERRORS = [
    (r"Missing option (?P<name>.+?)\.(?: (?P<more>.*))?", N_("Missing option {name}.")),
    (r"Missing argument (?P<name>.+?)\.(?: (?P<more>.*))?", N_("Missing argument {name}.")),
    (r"No such option: (?P<name>\S+) \(Possible options: (?P<options>.+)\)",
     N_("No such option: {name} (Possible options: {options})")),
    (r"No such option: (?P<name>\S+)", N_("No such option: {name}")),
    (r"No such command (?P<name>'[^']*')\. Did you mean (?P<hint>.+)\?",
     N_("No such command {name}. Did you mean {hint}?")),
    (r"No such command (?P<name>.+)\.", N_("No such command {name}.")),
    (r"Missing command\.", N_("Missing command.")),
    (r"Invalid value for (?P<name>.+?): (?P<detail>.*)", N_("Invalid value for {name}: {detail}")),
    (r"Got unexpected extra argument(?:s|\(s\))? \((?P<args>.*)\)",
     N_("Got unexpected extra argument(s) ({args})")),
    (r"Option (?P<name>'.+') requires an argument\.", N_("Option {name} requires an argument.")),
    (r"Option (?P<name>'.+') does not take a value\.", N_("Option {name} does not take a value.")),
]  # fmt: skip
CHOOSE_FROM = N_("Choose from:")


def translate_usage_error(message: str) -> str:
    for pattern, msgid in USAGE_ERRORS:
        m = re.fullmatch(pattern, message, re.S)
        if m:
            values = {k: v or "" for k, v in m.groupdict().items()}
            more = values.pop("more", "").replace("Choose from:", gettext(CHOOSE_FROM))
            return (gettext(msgid).format(**values) + (" " + more if more else "")).strip()
    return message


def install() -> None:
    """Typer's help and usage errors in the catalog's language (process-wide; safe to repeat)."""
    import typer.rich_utils
    from typer._click import formatting

    for name, msgid in PANEL.items():
        setattr(typer.rich_utils, name, gettext(msgid))

    current = formatting.HelpFormatter.write_usage
    write_usage = getattr(current, "__wrapped__", current)

    def usage(self: Any, prog: str, args: str = "", prefix: str | None = None) -> None:
        write_usage(self, prog, args, gettext(USAGE) + " " if prefix is None else prefix)

    usage.__wrapped__ = write_usage  # type: ignore[attr-defined]
    formatting.HelpFormatter.write_usage = usage  # type: ignore[method-assign]

    current_error = typer.rich_utils.rich_format_error
    format_error = getattr(current_error, "__wrapped__", current_error)

    def rich_format_error(self: Any) -> None:
        original = self.format_message
        self.format_message = lambda: translate_usage_error(original())
        try:
            format_error(self)
        finally:
            del self.format_message

    rich_format_error.__wrapped__ = format_error  # type: ignore[attr-defined]
    typer.rich_utils.rich_format_error = rich_format_error
