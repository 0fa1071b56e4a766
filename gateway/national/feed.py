"""Adapter to the national database of cadres, civil servants and public employees.

Its real interface is not public, so the rest of the gateway depends only on :class:`ChangeFeed`:
``pages(cursor)`` yields :class:`Page` objects, each a run of changes with strictly increasing ids
after ``cursor`` and the cursor that follows them. Every change carries the *whole* resulting state
of the staff record and/or card it touches, so applying a change is an upsert and the last change
of an entity in a page decides its state.

:class:`HttpChangeFeed` reads the feed over HTTPS (bearer token or mutual TLS), retries timeouts,
connection errors and 5xx with exponential backoff, honours 429 + Retry-After, and validates every
page strictly; anything else is a :class:`FeedError` with a reason, raised before the page reaches
the database.
"""

from __future__ import annotations

import email.utils
import random
import re
import ssl
import time
import unicodedata
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Literal, NotRequired, Protocol

import httpx
from pydantic import (
    AfterValidator,
    AwareDatetime,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    with_config,
)
from typing_extensions import TypedDict

from provisioning.errors import CbccError

SERIAL_MAX = 2**53 - 1  # the national revocation list's serial limit
CARD_STATUSES = ("issued", "locked", "revoked", "expired", "replaced")
CardStatus = Literal["issued", "locked", "revoked", "expired", "replaced"]
ChangeKind = Literal[
    "staff.created",  # a new record (with its first card when one was issued)
    "staff.updated",  # position, unit, name corrected
    "staff.transferred",  # moved to another agency (same code for life)
    "staff.retired",  # retired or left the service: active false
    "card.issued",
    "card.locked",
    "card.unlocked",
    "card.revoked",
    "card.expired",
    "card.replaced",  # the old card of a reissue
    "card.reissued",  # the new card: a new serial with gen + 1
]
# What a card change must leave the card in.
KIND_STATUS: dict[str, str] = {
    "card.issued": "issued",
    "card.locked": "locked",
    "card.unlocked": "issued",
    "card.revoked": "revoked",
    "card.expired": "expired",
    "card.replaced": "replaced",
    "card.reissued": "issued",
}
_NAME_CHARS = re.compile(r"^[^\W\d_]+(?:[ '\-.][^\W\d_]+)*$")


class FeedError(CbccError):
    """The feed was rejected; nothing of the offending page was applied."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"national feed rejected: {reason}")
        self.reason = reason


_TIDY = re.compile(r"^\S+(?: \S+)*$|^$")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
                      "\ue000-\uf8ff\ud800-\udfff]")  # fmt: skip


def _tidy(value: str) -> str:
    """NFC with single spaces (fast path: already so)."""
    if unicodedata.is_normalized("NFC", value) and _TIDY.match(value):
        return value
    return " ".join(unicodedata.normalize("NFC", value).split())


def normalise_name(value: str) -> str:
    """NFC, single spaces; letters (any script, with diacritics) separated by space ' - ."""
    text = _tidy(value)
    if not text or not _NAME_CHARS.match(text):
        raise ValueError("a name holds letters separated by single spaces")
    return text


def _nfc_text(value: str) -> str:
    text = _tidy(value)
    if _CONTROL.search(text):
        raise ValueError("control or format characters")
    return text


StaffCode = Annotated[str, Field(pattern=r"^[A-Z0-9]{4,32}$")]
# Electronic identifier of an agency: 000.00.xx.Hyy (provinces) / Gyy (ministries, sectors).
AgencyCode = Annotated[str, Field(pattern=r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$")]
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(normalise_name)]
Text = Annotated[str, Field(max_length=200), AfterValidator(_nfc_text)]
Serial = Annotated[int, Field(ge=1, le=SERIAL_MAX)]
_STRICT = ConfigDict(extra="forbid", strict=True)

# The wire schema is TypedDicts (validated by pydantic-core without building Python objects per
# field: about twice as fast as models at 2 M changes); rules across fields are in check_page.


@with_config(_STRICT)
class StaffState(TypedDict):
    code: StaffCode
    full_name: Name
    agency_code: AgencyCode
    unit: Text
    position: Text
    active: bool


@with_config(_STRICT)
class CardState(TypedDict):
    serial: Serial
    staff_code: StaffCode
    issuer: AgencyCode
    gen: Annotated[int, Field(ge=1, le=255)]
    status: CardStatus
    issued_at: date | None
    expires_at: date | None


@with_config(_STRICT)
class Change(TypedDict):
    id: Annotated[int, Field(ge=1, le=2**63 - 1)]
    kind: ChangeKind
    at: AwareDatetime
    staff: NotRequired[StaffState | None]
    card: NotRequired[CardState | None]
    # Reference of the local action this change acknowledges (see gateway.national.local).
    ref: NotRequired[Annotated[str, Field(max_length=64)] | None]


@with_config(_STRICT)
class WirePage(TypedDict):
    changes: Annotated[list[Change], Field(max_length=100_000)]
    next_cursor: Annotated[str, Field(max_length=256)]
    has_more: bool
    head: NotRequired[int | None]  # the feed's newest change id (progress only)


WIRE_PAGE: TypeAdapter[WirePage] = TypeAdapter(WirePage)
STAFF: TypeAdapter[StaffState] = TypeAdapter(StaffState)
CARD: TypeAdapter[CardState] = TypeAdapter(CardState)


@dataclass(frozen=True)
class Page:
    changes: list[Change]
    next_cursor: str
    has_more: bool = False
    head: int | None = None


def parse_page(body: bytes | str) -> Page:
    """Validate one page (raises pydantic's ValidationError; :func:`check_page` comes after)."""
    w = WIRE_PAGE.validate_json(body)
    return Page(w["changes"], w["next_cursor"], w["has_more"], w.get("head"))


def check_change(ch: Change) -> None:
    """Rules across the fields of one change (raises ValueError)."""
    kind, staff, card = ch["kind"], ch.get("staff"), ch.get("card")
    if kind.startswith("staff."):
        if staff is None:
            raise ValueError(f"{kind} without staff")
        if kind == "staff.retired" and staff["active"]:
            raise ValueError("staff.retired with active staff")
    else:
        if card is None:
            raise ValueError(f"{kind} without card")
        if card["status"] != KIND_STATUS[kind]:
            raise ValueError(f"{kind} leaves the card {card['status']}")
    if card is not None:
        if staff is not None and card["staff_code"] != staff["code"]:
            raise ValueError("card and staff of one change disagree on the staff code")
        issued, expires = card["issued_at"], card["expires_at"]
        if issued is not None and expires is not None and expires <= issued:
            raise ValueError("expires_at is not after issued_at")


def check_page(page: Page, cursor: str) -> None:
    """Feed-level rules a well-formed page can still break (raises :class:`FeedError`)."""
    after = parse_cursor(cursor)
    prev = after
    for n, ch in enumerate(page.changes):
        cid = ch["id"]
        if cid <= prev:
            if cid <= after:
                raise FeedError(f"change {cid} is not after cursor {after} (repeated page or cursor "
                                "went backwards)")  # fmt: skip
            raise FeedError(f"change ids not strictly increasing ({prev} then {cid})")
        prev = cid
        try:
            check_change(ch)
        except ValueError as exc:
            raise FeedError(f"change {cid} (changes.{n}) is inconsistent: {exc}") from None
    if page.changes:
        if page.next_cursor != str(prev):
            raise FeedError(f"next_cursor {page.next_cursor!r} is not the last change id {prev}")
    elif page.next_cursor != cursor:
        raise FeedError(f"empty page moves the cursor from {cursor!r} to {page.next_cursor!r}")
    elif page.has_more:
        raise FeedError("empty page says it has more (the feed would never end)")


def parse_cursor(cursor: str) -> int:
    if cursor == "":
        return 0
    if not cursor.isdigit() or len(cursor) > 19:
        raise FeedError(f"bad cursor {cursor[:40]!r}")
    return int(cursor)


class ChangeFeed(Protocol):
    def pages(self, cursor: str) -> Iterator[Page]:
        """Pages of changes after ``cursor`` ("" = from the beginning) until the feed's head."""
        ...


# ---- HTTP -------------------------------------------------------------------------------------


def tls_context(cert: Path | None = None, key: Path | None = None, ca: Path | None = None) -> ssl.SSLContext:
    """Server verification against ``ca`` (else the system store) and, with ``cert``, our client
    certificate for mutual TLS."""
    ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    return ctx


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class HttpChangeFeed:
    """``GET {base}/v1/changes?after=<cursor>&limit=<n>`` → ``{"changes", "next_cursor", "has_more",
    "head"}`` (docs/national-sync.md). With ``prefetch`` the next page is fetched and validated in a
    background thread while the caller applies the current one."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        cert: Path | None = None,
        key: Path | None = None,
        ca: Path | None = None,
        page_size: int = 10_000,
        timeout: float = 60.0,
        max_attempts: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 300.0,
        prefetch: bool = True,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.page_size = page_size
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.prefetch = prefetch
        self.sleep = sleep
        self.retries = 0  # attempts that were retried (for reports and tests)
        headers = {"Accept": "application/json", "User-Agent": "cbcc-gateway"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if client is None:
            verify: ssl.SSLContext | bool = True
            if base_url.startswith("https:"):
                verify = tls_context(cert, key, ca)
            client = httpx.Client(base_url=base_url, timeout=timeout, verify=verify)
        else:
            client.base_url = httpx.URL(base_url) if base_url else client.base_url
        client.headers.update(headers)
        self.client = client

    def close(self) -> None:
        self.client.close()

    def fetch(self, cursor: str) -> Page:
        """One page after ``cursor``, retried as needed, validated (raises :class:`FeedError`)."""
        parse_cursor(cursor)
        body = self._get(cursor)
        try:
            page = parse_page(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            if first["type"] == "json_invalid":
                raise FeedError(f"page after {cursor!r} is not JSON ({first['msg']})") from None
            raise FeedError(f"page after {cursor!r} violates the schema at {where}: {first['msg']} "
                            f"({exc.error_count()} errors)") from None  # fmt: skip
        check_page(page, cursor)
        return page

    def _get(self, cursor: str) -> bytes:
        params = {"after": cursor or "0", "limit": str(self.page_size)}
        last = "no attempt"
        for attempt in range(1, self.max_attempts + 1):
            wait: float | None = None
            try:
                resp = self.client.get("/v1/changes", params=params)
            except httpx.TimeoutException:
                last = "timeout"
            except httpx.TransportError as exc:
                last = f"transport error ({type(exc).__name__})"
            else:
                if resp.status_code == 200:
                    ctype = resp.headers.get("content-type", "")
                    if "json" not in ctype:
                        raise FeedError(f"page after {cursor!r} has content type {ctype!r}")
                    return resp.content
                if resp.status_code == 429:
                    wait = retry_after(resp.headers.get("retry-after"))
                    if wait is not None and wait > self.max_retry_after:
                        limit = self.max_retry_after
                        raise FeedError(f"rate limited for {wait:.0f} s (more than {limit:.0f})")
                    last = "rate limited (429)"
                elif resp.status_code >= 500:
                    last = f"server error {resp.status_code}"
                elif resp.status_code in (401, 403):
                    raise FeedError(f"not authorised ({resp.status_code}): check the token or certificate")
                else:
                    raise FeedError(f"unexpected status {resp.status_code} for the page after {cursor!r}")
            if attempt == self.max_attempts:
                break
            if wait is None:
                wait = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                wait *= 0.5 + random.random() / 2  # jitter: many gateways must not retry in step
            self.retries += 1
            self.sleep(wait)
        raise FeedError(f"{last} after {self.max_attempts} attempts (page after {cursor!r})")

    def pages(self, cursor: str) -> Iterator[Page]:
        if not self.prefetch:
            while True:
                page = self.fetch(cursor)
                yield page
                if not page.has_more:
                    return
                cursor = page.next_cursor
        with ThreadPoolExecutor(1, thread_name_prefix="national-feed") as pool:
            pending: Future[Page] | None = pool.submit(self.fetch, cursor)
            try:
                while pending is not None:
                    page = pending.result()
                    pending = pool.submit(self.fetch, page.next_cursor) if page.has_more else None
                    yield page
            finally:
                if pending is not None:
                    pending.cancel()


def utc_midnight(d: date | None) -> datetime | None:
    return None if d is None else datetime(d.year, d.month, d.day, tzinfo=UTC)
