"""Signed configurations and commands for readers (docs/mqtt.md, docs/reader-config.md).

Every change is numbered, recorded and audited in ONE transaction, and published only after that
transaction committed, so a published object always has its row (the reverse — a row whose
publish failed — is visible as a push or command without outcome and can be sent again):

- configuration: seq from the ``Counter`` ``config:<rid>``, above the seq the reader reports
  (one it got at provisioning, say); built and signed by ``trustcore.reader_config.build``;
  retained QoS 1 on ``cbcc/v1/r/<rid>/cfg``; ``Reader.pushed_config_seq/at`` updated so
  ``Fleet.laggards`` can tell who did not apply it.
- command: ``{0: "cmd", 1: 1, 2: seq, 3: iat, 4: target, 5: exp, 6: action, 7: args}``, seq from
  the ONE counter ``cmd`` for every reader and the broadcast topic (a reader keeps one replay
  floor for its own topic and ``all/cmd``); QoS 1, not retained, on ``r/<rid>/cmd`` or ``all/cmd``.

Validation errors raise :class:`DownlinkError` with a message for the API to show (4xx).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import cbor2
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, select

from gateway import audit
from gateway.models import Command, ConfigPush, Counter, Reader
from messages import _, message_of
from trustcore import cbor_det, cose
from trustcore import reader_config as rc
from trustcore.errors import TrustcoreError

Publish = Callable[[str, bytes, int, bool], None]

ROOT = "cbcc/v1/"
ACTIONS = ("open", "lockdown", "release", "reboot", "resync")
CMD_COUNTER = "cmd"
CMD_MAX_SIZE = 2048  # firmware/lib/commands.py MAX_SIZE
MAX_ARGS = 512  # encoded CBOR; a command with a 2048-bit RSA signature must stay under 2 KiB
MAX_TTL_S = 7 * 86400
BROADCAST = "*"

COUNTER: sa.Table = Counter.__table__  # type: ignore[attr-defined]


class DownlinkError(ValueError):
    """A request the gateway refuses (unknown reader, bad action, a wrong configuration source)."""


def config_counter(reader_id: str) -> str:
    return "config:" + reader_id


def next_seqs(conn: Connection, name: str, n: int = 1, floor: int = 1) -> list[int]:
    """Take ``n`` consecutive numbers from the counter ``name``, the first at least ``floor``.

    The UPDATE locks the counter row (PostgreSQL) or the database (SQLite) until the caller's
    transaction ends, so two gateways never hand out the same number; a rollback gives them back."""
    ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(COUNTER)
    conn.execute(ins.values(name=name, value=0).on_conflict_do_nothing(index_elements=[COUNTER.c.name]))
    v = COUNTER.c.value
    top = sa.case((v + 1 >= floor, v + n), else_=sa.literal(floor + n - 1))
    conn.execute(sa.update(COUNTER).where(COUNTER.c.name == name).values(value=top))
    last = int(conn.execute(sa.select(v).where(COUNTER.c.name == name)).scalar_one())
    return list(range(last - n + 1, last + 1))


def command_payload(seq: int, iat: int, target: str, exp: int, action: str, args: Any) -> bytes:
    return cbor_det.dumps({0: "cmd", 1: 1, 2: seq, 3: iat, 4: target, 5: exp, 6: action, 7: args})


def _topic(target: str, kind: str) -> str:
    return f"{ROOT}all/{kind}" if target == BROADCAST else f"{ROOT}r/{target}/{kind}"


class Downlink:
    def __init__(self, engine: Engine, signing_key: rsa.RSAPrivateKey, publish: Publish, *,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self._engine = engine
        self._key = signing_key
        self._publish = publish
        self._clock = clock

    # ---- configuration -----------------------------------------------------------------------

    def push_config(
        self, reader_id: str, source: Mapping[str, Any], actor: str, role: str = ""
    ) -> ConfigPush:
        """Number, sign, record and publish (retained) a configuration for one reader."""
        if not isinstance(source, Mapping):
            raise DownlinkError(_("the configuration source must be a table (a JSON object)"))
        named = source.get("reader_id")
        if named is not None and named != reader_id:
            said = _(
                "reader_id: the source is for reader {named}, not {id}", named=repr(named), id=repr(reader_id)
            )
            raise DownlinkError(said)
        try:
            rc.compile_source(source, reader_id=reader_id)  # every source error before any number is taken
        except TrustcoreError as exc:
            raise DownlinkError(message_of(exc)) from None  # re-rendered per request
        now = self._clock()
        at = datetime.fromtimestamp(now, UTC)
        with Session(self._engine, expire_on_commit=False) as s:
            reader = s.get(Reader, reader_id)
            if reader is None:
                raise DownlinkError(_("reader {id} is not registered", id=reader_id))
            floor = max(reader.config_seq or 0, reader.pushed_config_seq or 0) + 1
            (seq,) = next_seqs(s.connection(), config_counter(reader_id), 1, floor)
            try:
                blob = rc.build(source, self._key, seq, int(now), reader_id=reader_id)
            except TrustcoreError as exc:
                raise DownlinkError(message_of(exc)) from None  # re-rendered per request
            sha = hashlib.sha256(blob).hexdigest()
            push = ConfigPush(reader_id=reader_id, seq=seq, sha256=sha, pushed_by=actor[:64], pushed_at=at)
            s.add(push)
            reader.pushed_config_seq = seq
            reader.pushed_config_at = at
            s.add(reader)
            audit.record(s, actor, "config.push", reader_id, role=role, seq=seq, sha256=sha, size=len(blob))
            s.commit()
        self._publish(_topic(reader_id, "cfg"), blob, 1, True)
        return push

    # ---- commands ----------------------------------------------------------------------------

    def send_command(self, target: str, action: str, args: Any, actor: str, role: str = "",
                     ttl_s: int = 300) -> Command:  # fmt: skip
        """One signed command to a reader, or to every reader (``target="*"``, on ``all/cmd``)."""
        return self._issue([target], action, args, actor, role, ttl_s, check_targets=True)[0]

    def lockdown_site(self, site: str, actor: str, role: str = "", ttl_s: int = 300) -> list[Command]:
        """Building-wide lockdown: a ``lockdown`` command to every enabled reader of ``site``."""
        with Session(self._engine) as s:
            rids = list(s.exec(select(Reader.id).where(Reader.site == site, Reader.enabled == True)  # noqa: E712
                               .order_by(Reader.id)).all())  # fmt: skip
        if not rids:
            raise DownlinkError(_("no enabled reader at site {site}", site=repr(site)))
        return self._issue(rids, "lockdown", None, actor, role, ttl_s, check_targets=False, site=site)

    def _issue(self, targets: Sequence[str], action: str, args: Any, actor: str, role: str, ttl_s: int, *,
               check_targets: bool, site: str | None = None) -> list[Command]:  # fmt: skip
        if action not in ACTIONS:
            raise DownlinkError(_("action must be one of {actions}", actions=", ".join(ACTIONS)))
        if type(ttl_s) is not int or not 1 <= ttl_s <= MAX_TTL_S:
            raise DownlinkError(_("ttl_s must be 1 … {max} seconds", max=MAX_TTL_S))
        try:
            args_cbor = cbor2.dumps(args)
            args_json = json.dumps(args, ensure_ascii=False)
        except (TypeError, ValueError, cbor2.CBOREncodeError) as exc:
            raise DownlinkError(_("args: not JSON/CBOR data ({error})", error=str(exc))) from None
        if len(args_cbor) > MAX_ARGS or len(args_json) > 1000:
            raise DownlinkError(_("args: too large (at most {max} bytes as CBOR)", max=MAX_ARGS))
        now = self._clock()
        iat = int(now)
        at = datetime.fromtimestamp(now, UTC)
        exp_at = datetime.fromtimestamp(iat + ttl_s, UTC)
        out: list[tuple[str, bytes]] = []
        made: list[Command] = []
        with Session(self._engine, expire_on_commit=False) as s:
            if check_targets:
                for t in targets:
                    if t == BROADCAST:
                        continue
                    reader = s.get(Reader, t)
                    if reader is None:
                        raise DownlinkError(_("reader {id} is not registered", id=t))
            seqs = next_seqs(s.connection(), CMD_COUNTER, len(targets))
            for target, seq in zip(targets, seqs, strict=True):
                payload = command_payload(seq, iat, target, iat + ttl_s, action, args)
                blob = cose.sign1(payload, self._key, alg=cose.ALG_RS256)
                if len(blob) > CMD_MAX_SIZE:
                    raise DownlinkError(
                        _(
                            "the signed command would be {n} bytes (readers take {max})",
                            n=len(blob),
                            max=CMD_MAX_SIZE,
                        )
                    )
                cmd = Command(seq=seq, target=target, action=action, args=args_json, issued_by=actor[:64],
                              issued_at=at, expires_at=exp_at)  # fmt: skip
                s.add(cmd)
                detail: dict[str, Any] = {"seq": seq, "args": args, "expires": exp_at.isoformat()}
                if site is not None:
                    detail["site"] = site
                audit.record(s, actor, "command." + action, target, role=role, **detail)
                made.append(cmd)
                out.append((_topic(target, "cmd"), blob))
            s.commit()
        for topic, blob in out:
            self._publish(topic, blob, 1, False)
        return made
