"""The national revocation list, built from the card table and published to the readers.

docs/revocation-list-national-v1.md (format) and docs/mqtt.md ("National revocation list"):

- **What is revoked**: every ``Card`` whose status is not ``"issued"`` (locked, revoked, expired,
  replaced). A full list's serial ranges are the issuers' extents in the card table
  (``min … max`` serial per issuer; overlapping extents are merged); the builder trims each range
  to its revoked serials.
- **Objects**: a full list on a schedule (``full_every_s``, default daily) or when a delta would
  grow past its limits (16,384 serials each way, or ``max_delta_ratio`` of the full list's size);
  otherwise a delta, cumulative since the current full list, for every change. Each object gets
  the next seq of the ``Counter`` ``ncrl`` (full lists and deltas share it), is kept on disk in
  ``folder`` and recorded as a ``RevocationPublication`` row.
- **Signing**: the header is signed by the **national root key** through an injected
  ``signer(header_payload) -> COSE_Sign1`` callable. In production the national CA signs (the
  gateway sends it the deterministic-CBOR header payload, ~150 bytes, and gets the COSE_Sign1
  back; the body never leaves the gateway, the header names its SHA-256). Tests and a
  self-contained deployment use :func:`local_root_signer`. Whatever comes back is verified
  against the root public key before anything is stored or published.
- **Publishing** (MQTT, retained, QoS 1): the object in chunks of 2 KiB on
  ``cbcc/v1/all/blob/{sha8}/{i}``, then its list manifest (``{0: "manifest", 1: 1, 2: seq,
  3: iat, 4: kind, 5: length, 6: SHA-256, 7: chunk size}`` signed by the gateway's configuration
  key) on ``cbcc/v1/all/ncrl`` (the current full list, kind ``"ncrl"``) or
  ``cbcc/v1/all/ncrl_delta`` (the current delta, kind ``"ncrl_delta"``; an empty retained message
  when a new full list has no delta yet). Then the retained chunks of the superseded objects are
  cleared (empty retained messages), as docs/mqtt.md asks.
- **A lock takes effect fast**: :func:`lock_card` sets the card's status to ``"locked"`` and
  publishes a delta at once; an online reader fetches it (a manifest and one or two chunks) and
  denies the card within seconds (the test measures it); a reader that was offline finds the
  retained manifests when it reconnects and fetches only the delta. :func:`on_cards_changed` is
  the same hook for the national sync. Both never raise into the caller: a failed publication
  is logged and :meth:`CrlPublisher.tick` (the service's periodic job) catches up.
- **A reader without the base**: it reports ``ncrl_delta:wrong_base``; :meth:`CrlPublisher.on_notice`
  publishes the current full list's chunks and manifest again (at most once per
  ``republish_every_s``), and the reader itself asks for the retained full list again.

One publisher per deployment (it owns the retained ``ncrl`` topics); it serialises its own work
with a lock, and seqs come from the database counter.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from gateway.errors import GatewayError
from gateway.models import Card, RevocationPublication
from gateway.mqtt.downlink import next_seqs
from gateway.national import local
from messages import _, words
from trustcore import cbor_det, cose, files, keys
from trustcore import crl_national as ncrl

log = logging.getLogger("cbcc.crl")

Publish = Callable[[str, bytes, int, bool], None]
Signer = Callable[[bytes], bytes]

ROOT = "cbcc/v1/"
TOPIC_FULL = ROOT + "all/ncrl"
TOPIC_DELTA = ROOT + "all/ncrl_delta"
BLOB = ROOT + "all/blob/"
KIND_FULL = "ncrl"  # manifest kinds (firmware/lib/blob_transfer.py)
KIND_DELTA = "ncrl_delta"
CHUNK = 2048
MAX_CHUNKS = 512  # the reader's progress bitmap: objects up to 1 MiB in 2 KiB chunks
COUNTER = "ncrl"
ISSUED = "issued"

CARD: sa.Table = Card.__table__  # type: ignore[attr-defined]
PUB: sa.Table = RevocationPublication.__table__  # type: ignore[attr-defined]


class CrlPublishError(GatewayError):
    """The list could not be built, signed or stored (nothing was published)."""


def local_root_signer(root_key: rsa.RSAPrivateKey) -> Signer:
    """A signer holding the root key itself (tests, a self-contained deployment)."""

    def sign(payload: bytes) -> bytes:
        return cose.sign1(payload, root_key, alg=cose.ALG_RS256)

    return sign


def manifest(key: rsa.RSAPrivateKey, seq: int, iat: int, kind: str, obj: bytes, chunk: int = CHUNK) -> bytes:
    """A list manifest (docs/mqtt.md) signed by the gateway's configuration key."""
    payload = {0: "manifest", 1: 1, 2: seq, 3: iat, 4: kind, 5: len(obj), 6: hashlib.sha256(obj).digest(),
               7: chunk}  # fmt: skip
    return cose.sign1(cbor_det.dumps(payload), key, alg=cose.ALG_RS256)


def chunk_topic(sha256_hex: str, i: int) -> str:
    return f"{BLOB}{sha256_hex[:8]}/{i}"


def chunks(obj: bytes, chunk: int = CHUNK) -> list[bytes]:
    return [obj[i : i + chunk] for i in range(0, len(obj), chunk)]


# ---- the card table ------------------------------------------------------------------------------


def revoked_serials(engine: Engine) -> frozenset[int]:
    """Every serial whose card is not ``issued``."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(CARD.c.serial).where(CARD.c.status != ISSUED))
        return frozenset(int(r[0]) for r in rows)


def issuer_ranges(engine: Engine) -> list[ncrl.Range]:
    """The issuers' serial extents (``min … max`` per issuer), overlapping ones merged."""
    q = sa.select(sa.func.min(CARD.c.serial), sa.func.max(CARD.c.serial)).group_by(CARD.c.issuer)
    with engine.connect() as conn:
        spans = sorted((int(a), int(b) + 1) for a, b in conn.execute(q) if a is not None)
    out: list[list[int]] = []
    for lo, hi in spans:
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [ncrl.Range(lo, hi) for lo, hi in out]


def build_full_from_db(
    engine: Engine, bucket_entries: int = ncrl.DEFAULT_BUCKET_ENTRIES
) -> tuple[bytes, int]:
    """(full body, revoked count) for the card table as it is."""
    revoked = revoked_serials(engine)
    body = ncrl.build_full_body(revoked, issuer_ranges(engine), bucket_entries=bucket_entries)
    return body, len(revoked)


def _last_change(engine: Engine) -> tuple[object, ...]:
    """A cheap fingerprint of the card table's revocation state: rows, latest update, and the count
    and sum of the revoked serials (a status change with an old timestamp still shows)."""
    revoked = CARD.c.status != ISSUED
    q = sa.select(
        sa.func.count(),
        sa.func.max(CARD.c.updated_at),
        sa.func.count().filter(revoked),
        sa.func.sum(CARD.c.serial).filter(revoked),
    )
    with engine.connect() as conn:
        return tuple(conn.execute(q).one())


# ---- what is published ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """One object as recorded (row) and kept (file)."""

    seq: int
    kind: str  # full | delta
    base_seq: int | None
    sha256: str  # of the whole object (header + body): the manifest's digest and chunk topics
    size: int
    path: Path
    created_at: datetime
    header: ncrl.Header
    revoked: frozenset[int]  # the revoked set the object describes (a delta: base ± its changes)

    @property
    def manifest_kind(self) -> str:
        return KIND_FULL if self.kind == "full" else KIND_DELTA

    def blob(self) -> bytes:
        return self.path.read_bytes()


class CrlPublisher:
    def __init__(
        self,
        engine: Engine,
        signer: Signer,
        root_public: keys.PublicKey,
        manifest_key: rsa.RSAPrivateKey,
        publish: Publish,
        folder: Path,
        *,
        clock: Callable[[], float] = time.time,
        full_every_s: float = 86400.0,
        max_delta_ratio: float = 0.5,
        bucket_entries: int = ncrl.DEFAULT_BUCKET_ENTRIES,
        seq_floor: int = 1,
        republish_every_s: float = 30.0,
    ) -> None:
        self._engine = engine
        self._signer = signer
        self._root = root_public
        self._mkey = manifest_key
        self._publish = publish
        self.folder = Path(folder)
        self._clock = clock
        self.full_every_s = full_every_s
        self.max_delta_ratio = max_delta_ratio
        self.bucket_entries = bucket_entries
        self.seq_floor = seq_floor
        self.republish_every_s = republish_every_s
        self._lock = threading.RLock()
        self._full: Published | None = None
        self._delta: Published | None = None
        self._loaded = False
        self._last_republish = -1e18
        self._seen_change: tuple[object, ...] | None = None
        self.stats = {"full": 0, "delta": 0, "unchanged": 0, "republished": 0, "errors": 0}

    # ---- state --------------------------------------------------------------------------------

    @property
    def current_full(self) -> Published | None:
        self._load()
        return self._full

    @property
    def current_delta(self) -> Published | None:
        self._load()
        return self._delta

    def _load(self) -> None:
        """The current full list and delta from the rows and files (once)."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            with self._engine.connect() as conn:
                full = conn.execute(sa.select(PUB).where(PUB.c.kind == "full").order_by(PUB.c.seq.desc())
                                    .limit(1)).first()  # fmt: skip
                delta = None
                if full is not None:
                    on_full = (PUB.c.kind == "delta") & (PUB.c.base_seq == full.seq)
                    delta = conn.execute(sa.select(PUB).where(on_full).order_by(PUB.c.seq.desc())
                                         .limit(1)).first()  # fmt: skip
            if full is not None:
                self._full = self._from_row(full, None)
                if delta is not None:
                    self._delta = self._from_row(delta, self._full)
            self._loaded = True

    def _from_row(self, row: sa.Row, base: Published | None) -> Published:  # type: ignore[type-arg]
        path = Path(row.path)
        blob = path.read_bytes()
        if hashlib.sha256(blob).hexdigest() != row.sha256:
            raise CrlPublishError(
                _("{path}: the kept object is not the one recorded for seq {seq}", path=path, seq=row.seq)
            )
        status, header, detail = ncrl.check(blob, self._root)
        if header is None or status != ncrl.OK:
            raise CrlPublishError(
                _(
                    "{path}: {status} ({words}) {detail}",
                    path=path,
                    status=status,
                    words=words.status(status),
                    detail=detail or "",
                )
            )
        body = blob[len(blob) - header.length :]
        if base is None:
            revoked = frozenset(ncrl.parse_full_body(body).serials())
        else:
            d = ncrl.parse_delta_body(body)
            revoked = (base.revoked - d.removed) | d.added
        from gateway.db import utc

        return Published(row.seq, row.kind, row.base_seq, row.sha256, row.size, path, utc(row.created_at) or
                         datetime.now(UTC), header, revoked)  # fmt: skip

    # ---- building -------------------------------------------------------------------------------

    def _sign(self, h: ncrl.Header, body: bytes) -> bytes:
        try:
            head = self._signer(ncrl.header_payload(h))
        except Exception as exc:
            raise CrlPublishError(_("the national root signer failed: {reason}", reason=exc)) from exc
        blob = head + body
        status, got, detail = ncrl.check(blob, self._root)
        if status != ncrl.OK or got != h:
            raise CrlPublishError(
                _(
                    "the signed header does not verify under the national root: {status} ({words}) {detail}",
                    status=status,
                    words=words.status(status),
                    detail=detail or "",
                )
            )
        return blob

    def _record(self, kind: str, body: bytes, revoked: frozenset[int], base: Published | None,
                now: float) -> Published:  # fmt: skip
        self.folder.mkdir(parents=True, exist_ok=True)
        created = datetime.fromtimestamp(now, UTC)
        with Session(self._engine, expire_on_commit=False) as s:
            conn = s.connection()
            top = conn.execute(sa.select(sa.func.max(PUB.c.seq))).scalar()
            floor = max(self.seq_floor, (int(top) if top is not None else 0) + 1)
            if base is not None:
                floor = max(floor, base.seq + 1)
            (seq,) = next_seqs(conn, COUNTER, 1, floor)
            digest = hashlib.sha256(body).digest()
            if kind == "full":
                h = ncrl.Header(seq, int(now), ncrl.KIND_FULL, len(body), digest)
            else:
                assert base is not None  # noqa: S101 — type narrowing for mypy, not input validation
                h = ncrl.Header(
                    seq, int(now), ncrl.KIND_DELTA, len(body), digest, base.seq, base.header.digest
                )
            blob = self._sign(h, body)
            if -(-len(blob) // CHUNK) > MAX_CHUNKS:
                raise CrlPublishError(
                    _(
                        "the object would be {size} bytes; readers take {limit}",
                        size=len(blob),
                        limit=MAX_CHUNKS * CHUNK,
                    )
                )
            sha = hashlib.sha256(blob).hexdigest()
            path = self.folder / f"ncrl-{seq:012d}-{kind}.obj"
            files.write_atomic(path, blob)
            s.add(RevocationPublication(seq=seq, kind=kind, base_seq=None if base is None else base.seq,
                                        sha256=sha, size=len(blob), revoked=len(revoked), created_at=created,
                                        path=str(path)))  # fmt: skip
            s.commit()
        return Published(
            seq, kind, None if base is None else base.seq, sha, len(blob), path, created, h, revoked
        )

    def publish(self, *, force_full: bool = False) -> Published | None:
        """Publish what changed since the last publication: a delta, or a full list when one is due
        (or ``force_full``). Returns the new object, or None when nothing changed."""
        with self._lock:
            self._load()
            now = self._clock()
            change = _last_change(self._engine)
            revoked = revoked_serials(self._engine)
            full, delta = self._full, self._delta
            described = delta.revoked if delta is not None else (full.revoked if full is not None else None)
            due = full is None or force_full or now - full.created_at.timestamp() >= self.full_every_s
            if not due and revoked == described:
                self._seen_change = change
                self.stats["unchanged"] += 1
                return None
            body: bytes | None = None
            if not due:
                assert full is not None  # noqa: S101 — type narrowing for mypy, not input validation
                added, removed = revoked - full.revoked, full.revoked - revoked
                if max(len(added), len(removed)) <= ncrl.MAX_DELTA_ENTRIES:
                    body = ncrl.build_delta_body(added, removed)
                    if len(body) > self.max_delta_ratio * full.header.length:
                        body = None
            if body is None:
                body = ncrl.build_full_body(
                    revoked, issuer_ranges(self._engine), bucket_entries=self.bucket_entries
                )
                new = self._record("full", body, revoked, None, now)
            else:
                new = self._record("delta", body, revoked, full, now)
            self._seen_change = change
            self._announce(new)
            return new

    # ---- MQTT -----------------------------------------------------------------------------------

    def _send(self, obj: Published) -> None:
        """Chunks first, then the manifest: a reader that sees the manifest finds the chunks."""
        blob = obj.blob()
        for i, part in enumerate(chunks(blob)):
            self._publish(chunk_topic(obj.sha256, i), part, 1, True)
        m = manifest(self._mkey, obj.seq, int(obj.created_at.timestamp()), obj.manifest_kind, blob)
        self._publish(TOPIC_FULL if obj.kind == "full" else TOPIC_DELTA, m, 1, True)

    def _clear(self, obj: Published | None) -> None:
        if obj is None:
            return
        for i in range(-(-obj.size // CHUNK)):
            self._publish(chunk_topic(obj.sha256, i), b"", 1, True)

    def _announce(self, new: Published) -> None:
        old_full, old_delta = self._full, self._delta
        self._send(new)
        if new.kind == "full":
            self._publish(TOPIC_DELTA, b"", 1, True)  # no delta on the new base yet
            self._full, self._delta = new, None
            self.stats["full"] += 1
            if old_full is not None and old_full.sha256 != new.sha256:
                self._clear(old_full)
            if old_delta is not None:
                self._clear(old_delta)
        else:
            self._delta = new
            self.stats["delta"] += 1
            if old_delta is not None and old_delta.sha256 != new.sha256:
                self._clear(old_delta)
        log.info(
            _(
                "national revocation list: {kind} seq {seq}, {revoked} revoked, {size} bytes",
                kind=new.kind,
                seq=new.seq,
                revoked=len(new.revoked),
                size=new.size,
            )
        )

    def republish(self) -> None:
        """Publish the current full list and delta again (gateway start; a broker that lost its
        retained messages)."""
        with self._lock:
            self._load()
            if self._full is not None:
                self._send(self._full)
                if self._delta is not None:
                    self._send(self._delta)
                else:
                    self._publish(TOPIC_DELTA, b"", 1, True)
                self.stats["republished"] += 1

    # ---- hooks ----------------------------------------------------------------------------------

    def on_cards_changed(self, serials: Iterable[int] = ()) -> Published | None:
        """Cards changed (national sync, a local lock): publish a delta now. Never raises."""
        try:
            return self.publish()
        except Exception:
            self.stats["errors"] += 1
            log.exception(
                _("national revocation list: publishing after a card change failed (retried by tick)")
            )
            return None

    def on_notice(self, reader_id: str, what: str, status: str) -> bool:
        """A reader's notice ``what:status``: a delta refused with ``wrong_base`` (the reader lacks
        the full list) makes the full list go out again. Returns True when it was re-sent."""
        if what != KIND_DELTA or status != ncrl.WRONG_BASE:
            return False
        with self._lock:
            now = self._clock()
            if now - self._last_republish < self.republish_every_s:
                return False
            self._last_republish = now
            self._load()
            if self._full is None:
                return False
            log.info(
                _(
                    "reader {id} lacks the base of the national delta: full list seq {seq} sent again",
                    id=reader_id,
                    seq=self._full.seq,
                )
            )
            self._send(self._full)
            self.stats["republished"] += 1
            return True

    def tick(self) -> Published | None:
        """The periodic job (every minute or so): a full list when one is due, a delta when the card
        table changed without a hook telling us (cheap check: row count and latest update)."""
        try:
            with self._lock:
                self._load()
                full = self._full
                due = full is None or self._clock() - full.created_at.timestamp() >= self.full_every_s
                if (
                    not due
                    and self._seen_change is not None
                    and _last_change(self._engine) == self._seen_change
                ):
                    return None
                return self.publish()
        except Exception:
            self.stats["errors"] += 1
            log.exception(_("national revocation list: periodic publication failed"))
            return None


# ---- the API-free entry points ---------------------------------------------------------------------

_installed: CrlPublisher | None = None


def install(publisher: CrlPublisher | None) -> None:
    """The publisher :func:`lock_card` and :func:`on_cards_changed` use (the service installs it)."""
    global _installed
    _installed = publisher


def on_cards_changed(serials: Iterable[int] = ()) -> Published | None:
    """Hook for the national sync (after its transaction committed): publish a delta at once."""
    p = _installed
    return None if p is None else p.on_cards_changed(serials)


def lock_card(engine: Engine, serial: int, actor: str, *, publisher: CrlPublisher | None = None,
              role: str = "", reason: str = "") -> Published | None:  # fmt: skip
    """Lock a card at the gateway (gateway.national.local: status ``locked``, flagged for the
    national database, audited, recorded as a local change) and publish the delta that makes every
    reader deny it. Raises GatewayError for an unknown card; returns the published object (None when
    the card was not ``issued``: nothing changed, or when publishing failed, which ``tick``
    retries)."""
    p = publisher if publisher is not None else _installed
    published: list[Published | None] = []

    def publish_now(serials: list[int]) -> None:
        if p is not None:
            published.append(p.on_cards_changed(serials))

    try:
        local.lock_card(engine, serial, actor=actor, reason=reason, role=role or "facility",
                        on_change=publish_now)  # fmt: skip
    except local.LocalActionError as exc:
        if f"no card {serial}" in str(exc):
            raise
        return None  # already locked, revoked, …: readers deny it already
    return published[0] if published else None
