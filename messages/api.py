"""Words the REST API's error texts are built from (English ids; Vietnamese in ``vi.po``).

The API answers in the language of the request's ``Accept-Language`` (``en…`` → English), else
Vietnamese; ``code`` in every error body stays the same word in both, for programs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from messages import LANGS, N_, _, gettext, message_of

ROLE = {
    "admin": N_("administrator"),
    "facility": N_("facility manager"),
    "hr": N_("HR"),
    "auditor": N_("auditor"),
}

# What a permission lets a role do, as the end of "The … role may not …".
ACTION = {
    "readers:read": N_("view readers"),
    "readers:write": N_("register or change readers"),
    "doors:read": N_("view doors"),
    "doors:write": N_("create or change doors"),
    "events:read": N_("view access events"),
    "events:export": N_("export access events"),
    "alarms:read": N_("view alarms"),
    "alarms:ack": N_("acknowledge alarms"),
    "commands:read": N_("view commands sent to readers"),
    "commands:send": N_("send commands to readers"),
    "config:push": N_("push reader configurations"),
    "quarantine:read": N_("view quarantined messages"),
    "audit:read": N_("read the audit log"),
    "tokens:manage": N_("manage API tokens"),
    "metrics:read": N_("read the metrics"),
    "cards:read": N_("view cards"),
    "cards:lock": N_("lock or unlock cards"),
}

TOKEN_STATE = {"active": N_("active"), "expired": N_("expired"), "revoked": N_("revoked")}

THING = {
    "reader": N_("reader"),
    "door": N_("door"),
    "event": N_("event"),
    "alarm": N_("alarm"),
    "command": N_("command"),
    "card": N_("card"),
    "token": N_("token"),
    "site": N_("site"),
    "quarantined message": N_("quarantined message"),
    "calendar override": N_("calendar override"),
    "shift assignment": N_("shift assignment"),
}


# pydantic's error types → the REST API's 422 ``detail`` (after "field: ")
VALIDATION = {
    "missing": N_("a value is required"),
    "extra_forbidden": N_("not an accepted field"),
    "string_type": N_("must be text"),
    "string_too_short": N_("at least {min_length} characters"),
    "string_too_long": N_("at most {max_length} characters"),
    "string_pattern_mismatch": N_("not in the required form"),
    "int_type": N_("must be a whole number"),
    "int_parsing": N_("must be a whole number"),
    "bool_type": N_("must be true or false"),
    "bool_parsing": N_("must be true or false"),
    "greater_than": N_("must be greater than {gt}"),
    "greater_than_equal": N_("must be at least {ge}"),
    "less_than": N_("must be less than {lt}"),
    "less_than_equal": N_("must be at most {le}"),
    "literal_error": N_("must be one of {expected}"),
    "enum": N_("must be one of {expected}"),
    "datetime_type": N_("must be a date and time (ISO 8601)"),
    "datetime_parsing": N_("must be a date and time (ISO 8601)"),
    "datetime_from_date_parsing": N_("must be a date and time (ISO 8601)"),
    "date_type": N_("must be a date (YYYY-MM-DD)"),
    "date_parsing": N_("must be a date (YYYY-MM-DD)"),
    "date_from_datetime_parsing": N_("must be a date (YYYY-MM-DD)"),
    "json_invalid": N_("the request body is not valid JSON"),
    "model_attributes_type": N_("must be a JSON object"),
    "dict_type": N_("must be a JSON object"),
    "list_type": N_("must be a list"),
}


def validation_reason(error: Mapping[str, Any]) -> str:
    """One pydantic validation failure (an item of ``ValidationError.errors()``) as a catalog
    message: our own validators' texts (``value_error``) as raised, pydantic's error types in
    :data:`VALIDATION`'s words, pydantic's English ``msg`` only for a type not listed."""
    kind = str(error.get("type", ""))
    raised = (error.get("ctx") or {}).get("error")
    if kind == "value_error" and isinstance(raised, BaseException):
        return message_of(raised)
    if kind not in VALIDATION:
        return str(error.get("msg", ""))
    ctx = {str(k): str(v) for k, v in (error.get("ctx") or {}).items()}
    return _(VALIDATION[kind], **ctx)


def lang_of(accept_language: str | None) -> str:
    """``en`` when the first listed language is English, else Vietnamese (the operators')."""
    first = (accept_language or "").split(",")[0].strip().lower()[:2]
    return first if first in LANGS else "vi"


def word(table: dict[str, str], key: str, lang: str) -> str:
    return gettext(table[key], lang) if key in table else key
