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

import contextlib
import email.utils
import itertools
import queue
import random
import re
import ssl
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired, Protocol, runtime_checkable

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

from gateway.errors import GatewayError
from messages import _
from messages.api import validation_reason

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


class FeedError(GatewayError):
    """The feed was rejected; nothing of the offending page was applied."""

    def __init__(self, reason: str) -> None:
        super().__init__(_("national feed rejected: {reason}", reason=reason))
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
        raise ValueError(_("a name holds letters separated by single spaces"))
    return text


def _nfc_text(value: str) -> str:
    text = _tidy(value)
    if _CONTROL.search(text):
        raise ValueError(_("control or format characters"))
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
            raise ValueError(_("{kind} without staff", kind=kind))
        if kind == "staff.retired" and staff["active"]:
            raise ValueError(_("staff.retired with active staff"))
    else:
        if card is None:
            raise ValueError(_("{kind} without card", kind=kind))
        if card["status"] != KIND_STATUS[kind]:
            raise ValueError(_("{kind} leaves the card {status}", kind=kind, status=card["status"]))
    if card is not None:
        if staff is not None and card["staff_code"] != staff["code"]:
            raise ValueError(_("card and staff of one change disagree on the staff code"))
        issued, expires = card["issued_at"], card["expires_at"]
        if issued is not None and expires is not None and expires <= issued:
            raise ValueError(_("expires_at is not after issued_at"))


def check_page(page: Page, cursor: str) -> None:
    """Feed-level rules a well-formed page can still break (raises :class:`FeedError`)."""
    after = parse_cursor(cursor)
    prev = after
    for n, ch in enumerate(page.changes):
        cid = ch["id"]
        if cid <= prev:
            if cid <= after:
                raise FeedError(
                    _(
                        "change {id} is not after cursor {after} (repeated page or cursor went backwards)",
                        id=cid,
                        after=after,
                    )
                )
            raise FeedError(_("change ids not strictly increasing ({prev} then {id})", prev=prev, id=cid))
        prev = cid
        try:
            check_change(ch)
        except ValueError as exc:
            raise FeedError(
                _("change {id} (changes.{n}) is inconsistent: {reason}", id=cid, n=n, reason=exc.args[0])
            ) from None
    if page.changes:
        if page.next_cursor != str(prev):
            raise FeedError(
                _("next_cursor {cursor!r} is not the last change id {id}", cursor=page.next_cursor, id=prev)
            )
    elif page.next_cursor != cursor:
        raise FeedError(
            _("empty page moves the cursor from {cursor!r} to {next!r}", cursor=cursor, next=page.next_cursor)
        )
    elif page.has_more:
        raise FeedError(_("empty page says it has more (the feed would never end)"))


def parse_cursor(cursor: str) -> int:
    if cursor == "":
        return 0
    if not cursor.isdigit() or len(cursor) > 19:
        raise FeedError(_("bad cursor {cursor!r}", cursor=cursor[:40]))
    return int(cursor)


# ---- snapshot (first load) ---------------------------------------------------------------------

SNAPSHOT_MAX = 100_000_000  # records of either kind; far above the national 2 M
SNAPSHOT_LINE_MAX = 64 * 1024  # bytes: a real line is < 1 kB
STAFF_FIELDS = ("code", "full_name", "agency_code", "unit", "position", "active")
CARD_FIELDS = ("serial", "staff_code", "issuer", "gen", "status", "issued_at", "expires_at")


@with_config(_STRICT)
class SnapshotEnd(TypedDict):
    as_of: Annotated[int, Field(ge=1, le=2**63 - 1)]  # the snapshot is the state after this change id
    staff: Annotated[int, Field(ge=0, le=SNAPSHOT_MAX)]  # staff rows that follow the header
    cards: Annotated[int, Field(ge=0, le=SNAPSHOT_MAX)]  # card rows that follow the staff rows


@with_config(_STRICT)
class SnapshotHead(SnapshotEnd):
    at: AwareDatetime  # when the national service took it
    staff_fields: list[str]  # must be STAFF_FIELDS: a service that reorders columns is refused
    card_fields: list[str]


@with_config(_STRICT)
class SnapshotStart(TypedDict):
    snapshot: SnapshotHead


@with_config(_STRICT)
class SnapshotTrailer(TypedDict):
    end: SnapshotEnd


# Rows are positional arrays of the fields of StaffState and CardState, with the same rules. The
# fast adapters check names and texts with patterns only (pydantic-core, no Python per field) and
# accept a conservative alphabet (ASCII, Latin-1, Latin Extended-A/B, Latin Extended Additional:
# Vietnamese in NFC) in the form the full rules would leave unchanged; a batch they refuse, or
# whose texts are not NFC, is validated again with the full rules, which normalise or reject it
# exactly as for pages.
_LATIN = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"
_FastName = Annotated[
    str, Field(min_length=1, max_length=200, pattern=f"^[{_LATIN}]+(?:[ '\\-.][{_LATIN}]+)*$")
]
_FastText = Annotated[str, Field(max_length=200, pattern=f"^(?:[!-~{_LATIN}]+(?: [!-~{_LATIN}]+)*)?$")]
StaffRow = tuple[StaffCode, Name, AgencyCode, Text, Text, bool]
_FastStaffRow = tuple[StaffCode, _FastName, AgencyCode, _FastText, _FastText, bool]
CardRow = tuple[Serial, StaffCode, AgencyCode, Annotated[int, Field(ge=1, le=255)], CardStatus, date | None,
                date | None]  # fmt: skip
SNAPSHOT_START: TypeAdapter[SnapshotStart] = TypeAdapter(SnapshotStart)
SNAPSHOT_END: TypeAdapter[SnapshotTrailer] = TypeAdapter(SnapshotTrailer)
STAFF_ROWS: TypeAdapter[list[StaffRow]] = TypeAdapter(list[StaffRow], config=_STRICT)
STAFF_ROWS_FAST: TypeAdapter[list[StaffRow]] = TypeAdapter(list[_FastStaffRow], config=_STRICT)
CARD_ROWS: TypeAdapter[list[CardRow]] = TypeAdapter(list[CardRow], config=_STRICT)


@dataclass(frozen=True, slots=True)
class SnapshotBatch:
    staff: list[StaffRow]
    cards: list[CardRow]


class SnapshotReader:
    """A consistent snapshot as JSON lines, validated as strictly as pages, in batches.

    Line 1 ``{"snapshot": {"as_of": N, "at": T, "staff": S, "cards": C, "staff_fields": [...],
    "card_fields": [...]}}``; then S staff rows ``[code, full_name, agency_code, unit, position,
    active]`` with codes strictly increasing; then C card rows ``[serial, staff_code, issuer, gen,
    status, issued_at, expires_at]`` with serials strictly increasing; last ``{"end": {"as_of": N,
    "staff": S, "cards": C}}``, then nothing. Order makes duplicates impossible without remembering
    keys; the trailer and the counts make a truncated or padded stream an error. :meth:`batches`
    raises :class:`FeedError` at the first violation (and at the end of a stream without a valid
    trailer), so a caller that commits only after the last batch never applies a partial or
    malformed snapshot."""

    def __init__(
        self, chunks: Iterator[bytes], *, batch_lines: int = 10_000, close: Callable[[], None] | None = None
    ) -> None:
        self._chunks = chunks
        self._close = close
        self.batch_lines = max(1, batch_lines)
        self._buf = b""
        self.line_no = 0
        self._line_iter = self._lines()
        first = next(self._line_iter, None)
        if first is None:
            raise FeedError(_("snapshot is empty (no header line)"))
        try:
            head = SNAPSHOT_START.validate_json(first)["snapshot"]
        except ValidationError as exc:
            raise FeedError(
                _("snapshot header violates the schema at {where}", where=_first_error(exc))
            ) from None
        if tuple(head["staff_fields"]) != STAFF_FIELDS or tuple(head["card_fields"]) != CARD_FIELDS:
            raise FeedError(
                _(
                    "snapshot fields {staff} / {cards} are not {want_staff} / {want_cards}",
                    staff=head["staff_fields"],
                    cards=head["card_fields"],
                    want_staff=list(STAFF_FIELDS),
                    want_cards=list(CARD_FIELDS),
                )
            )
        self.as_of, self.at, self.staff, self.cards = head["as_of"], head["at"], head["staff"], head["cards"]

    def __enter__(self) -> SnapshotReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None

    def _lines(self) -> Iterator[bytes]:
        while True:
            nl = self._buf.find(b"\n")
            while nl < 0:
                if len(self._buf) > SNAPSHOT_LINE_MAX:
                    limit = SNAPSHOT_LINE_MAX
                    raise FeedError(
                        _(
                            "snapshot line {line} is longer than {limit} bytes",
                            line=self.line_no + 1,
                            limit=limit,
                        )
                    )
                try:
                    chunk = next(self._chunks)
                except StopIteration:
                    if self._buf:
                        raise FeedError(
                            _("snapshot ends inside line {line}", line=self.line_no + 1)
                        ) from None
                    return
                except httpx.HTTPError as exc:
                    raise FeedError(
                        _(
                            "snapshot stream broken after line {line} ({error})",
                            line=self.line_no,
                            error=type(exc).__name__,
                        )
                    ) from None
                self._buf = self._buf + chunk if self._buf else chunk
                nl = self._buf.find(b"\n")
            end = self._buf.rfind(b"\n")  # every complete line of the buffer at once
            lines = self._buf[:end].split(b"\n")
            self._buf = self._buf[end + 1 :]
            for line in lines:
                self.line_no += 1
                yield line

    def _take(self, n: int) -> list[bytes]:
        lines = list(itertools.islice(self._line_iter, n))
        if lines and max(map(len, lines)) > SNAPSHOT_LINE_MAX:
            raise FeedError(
                _(
                    "snapshot line is longer than {limit} bytes (before {line})",
                    limit=SNAPSHOT_LINE_MAX,
                    line=self.line_no,
                )
            )
        if len(lines) < n:
            raise FeedError(
                _(
                    "snapshot truncated after line {line} (header promised {staff} staff and {cards} "
                    "card rows and a trailer)",
                    line=self.line_no,
                    staff=self.staff,
                    cards=self.cards,
                )
            )
        return lines

    def batches(self) -> Iterator[SnapshotBatch]:
        """Validated batches of staff rows, then of card rows, then the trailer check."""
        last_code, left = "", self.staff
        while left:
            first = self.line_no + 1
            lines = self._take(min(left, self.batch_lines))
            left -= len(lines)
            staff = _rows(STAFF_ROWS_FAST, STAFF_ROWS, lines, first, check_nfc=True)
            for n, row in enumerate(staff):
                if row[0] <= last_code:
                    raise FeedError(
                        _(
                            "snapshot line {line}: staff code {code} not after {last} (order is by code, "
                            "each once)",
                            line=first + n,
                            code=row[0],
                            last=last_code,
                        )
                    )
                last_code = row[0]
            yield SnapshotBatch(staff, [])
        last_serial, left = 0, self.cards
        while left:
            first = self.line_no + 1
            lines = self._take(min(left, self.batch_lines))
            left -= len(lines)
            cards = _rows(CARD_ROWS, CARD_ROWS, lines, first)
            for n, c in enumerate(cards):
                if c[0] <= last_serial:
                    raise FeedError(
                        _(
                            "snapshot line {line}: serial {serial} not after {last} (order is by serial, "
                            "each once)",
                            line=first + n,
                            serial=c[0],
                            last=last_serial,
                        )
                    )
                last_serial = c[0]
                if c[5] is not None and c[6] is not None and c[6] <= c[5]:
                    raise FeedError(
                        _("snapshot line {line}: expires_at is not after issued_at", line=first + n)
                    )
            yield SnapshotBatch([], cards)
        line = self._take(1)[0]
        try:
            end = SNAPSHOT_END.validate_json(line)["end"]
        except ValidationError as exc:
            raise FeedError(
                _(
                    "snapshot line {line} is not the trailer: {where}",
                    line=self.line_no,
                    where=_first_error(exc),
                )
            ) from None
        if end != {"as_of": self.as_of, "staff": self.staff, "cards": self.cards}:
            raise FeedError(_("snapshot trailer {trailer} differs from the header", trailer=dict(end)))
        if next(self._line_iter, None) is not None:
            raise FeedError(_("snapshot line {line}: data after the trailer", line=self.line_no))


def _rows(fast: TypeAdapter[list[Any]], full: TypeAdapter[list[Any]], lines: list[bytes], first: int,
          check_nfc: bool = False) -> list[Any]:  # fmt: skip
    """Validate ``lines`` (one JSON array each) with ``fast``; fall back to ``full`` (normalising
    rules, errors with line numbers) for a batch ``fast`` refuses or whose texts are not NFC."""
    body = b"[" + b",".join(lines) + b"]"
    rows: list[Any] | None
    try:
        rows = fast.validate_json(body)
    except ValidationError as exc:
        if fast is full:
            raise FeedError(
                _("snapshot violates the schema at {where}", where=_first_error(exc, first))
            ) from None
        rows = None
    # "\n" never composes with a neighbour, so the joined text is NFC iff every part is.
    if (
        rows is not None
        and check_nfc
        and not unicodedata.is_normalized("NFC", "\n".join(x for r in rows for x in (r[1], r[3], r[4])))
    ):
        rows = None
    if rows is None:
        try:
            rows = full.validate_json(body)
        except ValidationError as exc:
            raise FeedError(
                _("snapshot violates the schema at {where}", where=_first_error(exc, first))
            ) from None
    if len(rows) != len(lines):  # a line holding two rows ("[..],[..]")
        raise FeedError(
            _(
                "snapshot lines {first}..{last} hold {rows} rows",
                first=first,
                last=first + len(lines) - 1,
                rows=len(rows),
            )
        )
    return rows


def _first_error(exc: ValidationError, first_line: int | None = None) -> str:
    e = exc.errors()[0]
    loc = list(e["loc"])
    if first_line is not None and loc and isinstance(loc[0], int):
        loc[0] = f"line {first_line + loc[0]}"
    where = ".".join(str(p) for p in loc)
    return _(
        "{where}: {reason} ({count} errors)",
        where=where,
        reason=validation_reason(e),
        count=exc.error_count(),
    )


def prefetched(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """``items`` produced in a background thread, ``depth`` ahead (exceptions re-raised in order)."""
    q: queue.Queue[tuple[int, Any]] = queue.Queue(depth)
    stop = threading.Event()

    def run() -> None:
        try:
            for x in items:
                while not stop.is_set():
                    try:
                        q.put((0, x), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((1, None))
        except BaseException as exc:  # handed to the consumer
            q.put((2, exc))

    t = threading.Thread(target=run, name="national-prefetch", daemon=True)
    t.start()
    try:
        while True:
            tag, x = q.get()
            if tag == 1:
                return
            if tag == 2:
                raise x
            yield x
    finally:
        stop.set()
        while t.is_alive():
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.1)
            t.join(0.01)


@runtime_checkable
class SnapshotSource(Protocol):
    def snapshot(self) -> SnapshotReader | None:
        """A consistent snapshot (as of a change id), or None if the service offers none."""
        ...


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


def national_client(
    base_url: str,
    *,
    token: str | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    ca: Path | None = None,
    timeout: float = 60.0,
) -> httpx.Client:
    """The one way to reach the national service (feed, local actions pushed upstream): TLS 1.2+
    against ``ca`` (else the system store) with our client certificate when given, the bearer
    token, JSON accepted. The caller closes it."""
    verify: ssl.SSLContext | bool = tls_context(cert, key, ca) if base_url.startswith("https:") else True
    return httpx.Client(base_url=base_url, timeout=timeout, verify=verify, headers=national_headers(token))


def national_headers(token: str | None) -> dict[str, str]:
    """What every request to the national service carries (national_client sets them)."""
    headers = {"Accept": "application/json", "User-Agent": "cbcc-gateway"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


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
        if client is None:
            client = national_client(base_url, token=token, cert=cert, key=key, ca=ca, timeout=timeout)
        else:  # a test's client (an ASGI transport): same headers as national_client's
            client.base_url = httpx.URL(base_url) if base_url else client.base_url
            client.headers.update(national_headers(token))
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
                raise FeedError(
                    _("page after {cursor!r} is not JSON ({error})", cursor=cursor, error=first["msg"])
                ) from None
            raise FeedError(
                _(
                    "page after {cursor!r} violates the schema at {where}: {error} ({count} errors)",
                    cursor=cursor,
                    where=where,
                    error=first["msg"],
                    count=exc.error_count(),
                )
            ) from None
        check_page(page, cursor)
        return page

    def _get(self, cursor: str) -> bytes:
        params = {"after": cursor or "0", "limit": str(self.page_size)}
        resp = self._open("/v1/changes", params, _("page after {cursor!r}", cursor=cursor))
        assert resp is not None  # noqa: S101 — type narrowing for mypy, not input validation
        ctype = resp.headers.get("content-type", "")
        if "json" not in ctype:
            raise FeedError(_("page after {cursor!r} has content type {type!r}", cursor=cursor, type=ctype))
        return resp.content

    def snapshot(self) -> SnapshotReader | None:
        """``GET {base}/v1/snapshot`` (JSON lines, streamed); None when the service has none
        (404, 405, 501): the sync then starts from the feed's beginning. Close the reader."""
        resp = self._open("/v1/snapshot", {}, _("snapshot"), stream=True, absent=(404, 405, 501))
        if resp is None:
            return None
        try:
            ctype = resp.headers.get("content-type", "")
            if "json" not in ctype:
                raise FeedError(_("snapshot has content type {type!r}", type=ctype))
            return SnapshotReader(resp.iter_bytes(256 * 1024), batch_lines=self.page_size, close=resp.close)
        except BaseException:
            resp.close()
            raise

    def _open(self, path: str, params: dict[str, str], what: str, *, stream: bool = False,
              absent: tuple[int, ...] = ()) -> httpx.Response | None:  # fmt: skip
        """The 200 response (read, or open when ``stream``), retried as the docs say; None for a
        status in ``absent``."""
        last = _("no attempt")
        for attempt in range(1, self.max_attempts + 1):
            wait: float | None = None
            try:
                resp = self.client.send(self.client.build_request("GET", path, params=params), stream=stream)
            except httpx.TimeoutException:
                last = _("timeout")
            except httpx.TransportError as exc:
                last = _("transport error ({error})", error=type(exc).__name__)
            else:
                if resp.status_code == 200:
                    return resp
                if stream:
                    resp.close()
                if resp.status_code in absent:
                    return None
                if resp.status_code == 429:
                    wait = retry_after(resp.headers.get("retry-after"))
                    if wait is not None and wait > self.max_retry_after:
                        limit = self.max_retry_after
                        raise FeedError(
                            _("rate limited for {wait:.0f} s (more than {limit:.0f})", wait=wait, limit=limit)
                        )
                    last = _("rate limited (429)")
                elif resp.status_code >= 500:
                    last = _("server error {status}", status=resp.status_code)
                elif resp.status_code in (401, 403):
                    raise FeedError(
                        _(
                            "not authorised ({status}): check the token or certificate",
                            status=resp.status_code,
                        )
                    )
                else:
                    raise FeedError(
                        _("unexpected status {status} for the {what}", status=resp.status_code, what=what)
                    )
            if attempt == self.max_attempts:
                break
            if wait is None:
                wait = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                wait *= 0.5 + random.random() / 2  # noqa: S311 — retry jitter, not a secret; jitter: many gateways must not retry in step
            self.retries += 1
            self.sleep(wait)
        raise FeedError(
            _("{last} after {attempts} attempts ({what})", last=last, attempts=self.max_attempts, what=what)
        )

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
