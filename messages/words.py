"""Domain codes (decisions, reasons, event and alarm kinds) as words a person reads.

The codes stay in data and APIs; every view shows :func:`word` beside or instead of them.
English here, Vietnamese in ``messages/vi.po``; the reasons match the reader's own
``firmware/lib/messages_vi.py`` (tests/messages/test_messages.py keeps them equal).
"""

from __future__ import annotations

from messages import N_, gettext

DECISION = {
    "grant": N_("granted"),
    "deny": N_("denied"),
    "punch": N_("punch recorded"),
    "read_failed": N_("card not read"),
}

REASON = {
    "ok": N_("Valid card"),
    "malformed": N_("Card data damaged or in the wrong format"),
    "unsupported_alg": N_("Signature algorithm not supported"),
    "unknown_issuer": N_("Issuing authority not in the trust list"),
    "bad_signature": N_("Invalid digital signature (data altered or forged)"),
    "issuer_not_valid": N_("The issuer's key was not valid when the card was issued"),
    "serial_out_of_range": N_("Card number outside the issuer's range"),
    "not_yet_valid": N_("Card not yet valid"),
    "expired": N_("Card expired"),
    "uid_mismatch": N_("Data does not match the chip (suspected cloned card)"),
    "revoked": N_("Card blocked or revoked"),
    "granted": N_("Please enter"),
    "first_card_unlock": N_("Please enter – door unlocked by schedule from the first card"),
    "scheduled_unlocked": N_("Door unlocked by schedule – recorded"),
    "emergency_unlock": N_("Emergency unlock (fire alarm) – recorded"),
    "lockdown_override": N_("Lockdown – card allowed to override"),
    "passback_soft": N_("Please enter – anti-passback violation recorded"),
    "duplicate": N_("Recorded (repeated tap)"),
    "locked_down": N_("Door in lockdown"),
    "deny_listed": N_("Card barred from this door"),
    "no_access": N_("No access through this door"),
    "out_of_schedule": N_("Outside the permitted hours"),
    "anti_clone_required": N_("Door requires a clone-resistant card"),
    "passback": N_("Anti-passback violation (entered again without leaving)"),
    "clock_unset": N_("Clock not set – schedule cannot be checked"),
    "not_configured": N_("Reader has no door configuration"),
    "internal_error": N_("Processing error – denied"),
}
PUNCHED = N_("Punch recorded")

KIND = {
    "tap": N_("card tap"),
    "alarm": N_("alarm"),
    "door": N_("door"),
    "notice": N_("notice"),
    "boot": N_("reader started"),
    "health": N_("health report"),
}

ALARM = {
    "forced_open": N_("door forced open"),
    "held_open": N_("door held open"),
    "tamper": N_("reader tampered with"),
    "fire": N_("fire alarm"),
}

ALARM_STATE = {True: N_("raised"), False: N_("cleared")}

# A signed object's load status (trust list, CRL, configuration, root chain), as `show`/`verify` print it.
STATUS = {
    "ok": N_("accepted"),
    "noop": N_("not newer than the one held: nothing to do"),
    "rollback": N_("older than the one held: refused"),
    "malformed": N_("damaged or in the wrong format"),
    "unsupported_alg": N_("signature algorithm not supported"),
    "unknown_root": N_("not signed by the pinned key"),
    "bad_signature": N_("invalid signature"),
    "too_large": N_("too large for a reader"),
    "wrong_reader": N_("made for another reader"),
    "out_of_order": N_("out of order"),
    "bad_length": N_("wrong length"),
    "bad_digest": N_("digest does not match"),
    "wrong_base": N_("for another base list"),
}

# Why the gateway set a reader's message aside (the quarantine's ``reason`` codes, docs/mqtt.md).
QUARANTINE = {
    "bad_topic": N_("not on a reader's event topic"),
    "unknown_reader": N_("no enabled reader with this id"),
    "oversize": N_("message too large"),
    "not_cbor": N_("not CBOR data"),
    "not_sealed": N_("not a sealed event"),
    "bad_mac": N_("seal does not verify (wrong key or altered)"),
    "bad_record": N_("event record malformed"),
    "conflict": N_("same sequence number, different content"),
    "db_rejected": N_("refused by the database"),
}

TIME_QUALITY = {0: N_("clock not set"), 1: N_("clock from the reader's RTC"), 2: N_("clock synchronised")}


def decision(code: str | None, lang: str | None = None) -> str:
    return gettext(DECISION[code], lang) if code in DECISION else (code or "")


def reason(code: str | None, decision_code: str | None = None, lang: str | None = None) -> str:
    """What a verdict means (an attendance punch reads "punch recorded")."""
    if decision_code == "punch" and code in ("ok", "duplicate"):
        return gettext(PUNCHED, lang)
    return gettext(REASON[code], lang) if code in REASON else (code or "")


def kind(code: str | None, lang: str | None = None) -> str:
    return gettext(KIND[code], lang) if code in KIND else (code or "")


def alarm(code: str | None, active: bool | None = None, lang: str | None = None) -> str:
    """An alarm's name, and whether this event raised it or cleared it."""
    text = gettext(ALARM[code], lang) if code in ALARM else (code or "")
    if active is None:
        return text
    return f"{text} ({gettext(ALARM_STATE[active], lang)})"


def status(code: str | None, lang: str | None = None) -> str:
    return gettext(STATUS[code], lang) if code in STATUS else (code or "")


def quarantine(code: str | None, lang: str | None = None) -> str:
    return gettext(QUARANTINE[code], lang) if code in QUARANTINE else (code or "")


def time_quality(q: int | None, lang: str | None = None) -> str:
    return gettext(TIME_QUALITY[q], lang) if q in TIME_QUALITY else ""
