"""Composition root of a running gateway: database, (embedded) broker, ingest, fleet, downlink,
REST API and the periodic jobs. ``cbcc gateway run`` calls :func:`run`; tests and the demo use
:class:`Gateway` directly (``start()`` / ``stop()``) and serve ``gateway.app`` themselves.
"""

from __future__ import annotations

import logging
import secrets
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from gateway import crl_publisher, db, retention, timefix
from gateway.api import ApiContext, create_app
from gateway.bell import Bell, Listener, notify
from gateway.crl_publisher import CrlPublisher, local_root_signer
from gateway.fleet import Fleet, apply_event_effects
from gateway.ingest import BatchResult, IngestWriter
from gateway.ingest_worker import ProcessWriter, writer_from_settings
from gateway.mqtt import broker_config, dynsec_admin, embedded_ingest
from gateway.mqtt.consumer import Consumer
from gateway.mqtt.downlink import Downlink
from gateway.mqtt.embedded_broker import EmbeddedBroker
from gateway.mqtt.embedded_ingest import BrokerIngest
from gateway.registry import KeyCache
from gateway.secretbox import SecretBox
from gateway.settings import MqttSettings, Settings
from messages import _
from trustcore import keys, passphrase

log = logging.getLogger("cbcc.gateway")

GATEWAY_USER = "gateway"


@dataclass(frozen=True)
class LocalBrokerFiles:
    """The one-machine broker's files in the data folder (made by ``cbcc gateway init``)."""

    folder: Path

    @property
    def passwd(self) -> Path:  # readers' password hashes, Mosquitto format
        return self.folder / "passwd"

    @property
    def gateway_password(self) -> Path:
        return self.folder / "gateway.pass"

    @property
    def tls(self) -> broker_config.TlsFiles | None:
        f = broker_config.TlsFiles(
            self.folder / "ca.crt", self.folder / "server.crt", self.folder / "server.key"
        )
        return f if f.certfile.exists() and f.keyfile.exists() else None


def local_broker_files(settings: Settings) -> LocalBrokerFiles:
    return LocalBrokerFiles(settings.data_dir / "broker")


def ensure_gateway_password(files: LocalBrokerFiles) -> str:
    if not files.gateway_password.exists():
        files.folder.mkdir(parents=True, exist_ok=True)
        keys.write_new_file(files.gateway_password, secrets.token_urlsafe(24).encode(), private=True)
    return files.gateway_password.read_text().strip()


def add_reader_password(files: LocalBrokerFiles, reader_id: str, password: str) -> str:
    """Record a reader's MQTT password (hashed) for the embedded broker; returns the hash."""
    current = broker_config.parse_password_file(files.passwd.read_text()) if files.passwd.exists() else {}
    current[reader_id] = broker_config.hash_password(password)
    broker_config.replace_file(files.passwd, broker_config.password_file_text(current).encode())
    return current[reader_id]


def teach_broker(
    settings: Settings, reader_id: str, password: str, running: EmbeddedBroker | None = None
) -> bool:
    """The one way a registered reader's MQTT password reaches the broker, whichever path
    registered it (the API, ``cbcc gateway reader add``, ``cbcc reader setup``): the embedded
    broker's password file (read when the gateway starts; ``running`` learns it at once), or an
    external Mosquitto through its dynamic-security API when ``[mqtt] admin_password_file`` is set.
    True when a broker was told; BrokerConfigError when the external one refused or was unreachable
    (the registration stands: each caller says so in its own way)."""
    if settings.mqtt.embedded:
        hashed = add_reader_password(local_broker_files(settings), reader_id, password)
        if running is not None:
            running.set_user(reader_id, hashed)
        return True
    return dynsec_admin.apply_with_settings(settings.mqtt, lambda a: a.add_reader(reader_id, password))


def load_root_signing_key(settings: Settings) -> rsa.RSAPrivateKey | None:
    """The national root key, only in a self-contained deployment that signs its own lists."""
    path = settings.root_signing_key_file
    if path is None:
        return None
    key = keys.load_private_key(
        path,
        lambda: passphrase.obtain(
            settings.root_passphrase_file, confirm=False, purpose=_("the root key {path}", path=path)
        ),
    )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(_("{path}: the national root key must be RSA (readers verify RS256)", path=path))
    return key


def load_signing_key(settings: Settings) -> rsa.RSAPrivateKey | None:
    """The configuration/command signing key, or None (then pushes and commands answer 503)."""
    path = settings.signing_key_file or settings.data_dir / "config.key.pem"
    if not path.exists():
        log.warning(_("no signing key at {path}: configuration pushes and commands are disabled", path=path))
        return None
    key = keys.load_private_key(
        path,
        lambda: passphrase.obtain(
            settings.signing_passphrase_file, confirm=False, purpose=_("the signing key {path}", path=path)
        ),
    )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(_("{path}: the signing key must be RSA (readers verify RS256)", path=path))
    return key


class _ForgetBoth:
    """A reader disabled or re-keyed through the API: the key cache here and the worker's forget it."""

    def __init__(self, keys: KeyCache, writer: IngestWriter | ProcessWriter) -> None:
        self._keys, self._writer = keys, writer

    def forget(self, reader_id: str) -> None:
        self._keys.forget(reader_id)
        if isinstance(self._writer, ProcessWriter):
            self._writer.forget(reader_id)


class Gateway:
    """Everything one gateway process runs. ``start()`` connects; ``stop()`` drains and closes."""

    def __init__(
        self,
        settings: Settings,
        *,
        signing_key: rsa.RSAPrivateKey | None = None,
        root_key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        self.settings = settings
        self.bell = Bell()  # rung after each ingest commit: the console's live feeds wake on it
        self.listener: Listener | None = None  # commits of other processes (PostgreSQL)
        db.migrate(settings.database.url)
        self.engine: Engine = db.make_engine(settings.database.url, pool_size=settings.database.pool_size)
        self.box = SecretBox.from_file(settings.resolved_master_key_file())
        self.keys = KeyCache(self.engine, self.box)
        self.keys.load_all()
        self.broker: EmbeddedBroker | None = None
        self.broker_files = local_broker_files(settings)
        self._notices: deque[tuple[str, str, str]] = deque(maxlen=10_000)
        self.writer: IngestWriter | ProcessWriter
        if settings.mqtt.embedded or settings.ingest.workers == 0:
            self.writer = IngestWriter(self.engine, self.keys, effects=self._effects)
        else:
            # A worker process verifies and writes (gateway/ingest_worker.py); fleet effects run in
            # its transaction. List notices then reach the publisher only through its periodic
            # tick (readers re-request a full list on wrong_base themselves).
            self.writer = writer_from_settings(
                settings, self.engine, self.keys, effects="gateway.fleet:apply_event_effects"
            )
        self.broker_ingest: BrokerIngest | None = None
        mqtt = settings.mqtt
        if mqtt.embedded:
            mqtt = self._embedded_broker(mqtt)
        self.mqtt = mqtt
        self.fleet = Fleet(self.engine, self.keys, self.publish)
        self.consumer = Consumer(
            mqtt,
            self.writer,
            on_status=self.fleet.on_status,
            on_health=self.fleet.on_health,
            ingest=settings.ingest,
        )
        key = signing_key if signing_key is not None else load_signing_key(settings)
        self.downlink = Downlink(self.engine, key, self.publish) if key is not None else None
        self.crl: CrlPublisher | None = None
        root = root_key if root_key is not None else load_root_signing_key(settings)
        if root is not None and key is not None:
            self.crl = CrlPublisher(
                self.engine,
                local_root_signer(root),
                root.public_key(),
                key,
                self.publish,
                settings.data_dir / "ncrl",
            )
        self.consumer.on_batch = lambda res, msgs: self._committed(res)
        self.app: FastAPI = create_app(
            ApiContext(
                events_bell=self.bell,
                engine=self.engine,
                settings=settings,
                box=self.box,
                downlink=self.downlink,
                fleet=self.fleet,
                key_cache=_ForgetBoth(self.keys, self.writer),
                on_reader_registered=self._reader_registered,
                on_reader_enabled=self._reader_enabled,
                metrics_open=settings.http.metrics_open,
                ingest_health=self.broker_ingest.health
                if self.broker_ingest is not None
                else self.consumer.health,
            )
        )
        self._stop = threading.Event()
        self._jobs: threading.Thread | None = None
        self._national: threading.Thread | None = None

    # ---- the one-machine broker ---------------------------------------------------------------

    def _embedded_broker(self, mqtt: MqttSettings) -> MqttSettings:
        files = self.broker_files
        gw_password = ensure_gateway_password(files)
        users = broker_config.parse_password_file(files.passwd.read_text()) if files.passwd.exists() else {}
        users[GATEWAY_USER] = broker_config.hash_password(gw_password)
        tls = files.tls
        # Events are committed at the broker, before the reader's PUBACK (gateway.mqtt.embedded_ingest).
        assert isinstance(self.writer, IngestWriter)  # noqa: S101 — type narrowing for mypy, not input validation; one-process mode writes in-process
        self.broker_ingest = BrokerIngest(self.writer)
        # the confirmations (gateway.ack) go out as with an external broker: a reader that saw
        # them once waits for them for good, whichever broker it talks to next
        self.broker_ingest.on_batch = self._confirm
        embedded_ingest.install(self.broker_ingest)
        self.broker = EmbeddedBroker(
            mqtt.host,
            mqtt.port,
            users,
            broker_config.Acl(frozenset({GATEWAY_USER})),
            tls=tls,
            tls_host=mqtt.embedded_tls_host,
            tls_port=mqtt.embedded_tls_port,
        )
        self.broker.start()
        if tls is None:
            log.warning(
                _(
                    "embedded broker without TLS (no certificate in {folder}): readers cannot connect",
                    folder=files.folder,
                )
            )
        # amqtt speaks MQTT 3.1.1 only: one consumer, no shared subscription, plain loopback.
        return mqtt.model_copy(
            update={
                "port": self.broker.port,
                "protocol": "3.1.1",
                "shared_group": None,
                "tls": False,
                "username": GATEWAY_USER,
                "client_id": GATEWAY_USER,  # the embedded broker requires client id = username
                "password": SecretStr(gw_password),
            }
        )

    def _reader_registered(self, reader_id: str, password: str) -> None:
        def apply() -> bool:
            return teach_broker(self.settings, reader_id, password, self.broker) and self.broker is None

        self._broker_change(reader_id, apply)

    def _reader_enabled(self, reader_id: str, enabled: bool) -> None:
        if self.broker is None:
            self._broker_live(reader_id, lambda a: a.set_enabled(reader_id, enabled))

    def _broker_live(self, reader_id: str, change: Callable[[dynsec_admin.DynsecAdmin], None]) -> None:
        self._broker_change(reader_id, lambda: dynsec_admin.apply_with_settings(self.settings.mqtt, change))

    def _broker_change(self, reader_id: str, apply: Callable[[], bool]) -> None:
        """The registration stands whatever the broker says; a failure is logged for the operator
        (`cbcc broker add-reader --live` does the same by hand). ``apply``: True when a running
        broker was changed live."""
        try:
            if apply():
                log.info(_("broker updated live for reader {id}", id=reader_id))
        except broker_config.BrokerConfigError as exc:
            log.warning(
                _(
                    "reader {id}: the broker was not updated ({reason}); use `cbcc broker`",
                    id=reader_id,
                    reason=exc,
                )
            )

    # ---- running ------------------------------------------------------------------------------

    def _effects(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        """Inside ingest's transaction: alarms and outcomes (fleet); list notices are acted on
        after it, by the periodic thread (a refused delta makes the full list go out again)."""
        apply_event_effects(conn, rows)
        for r in rows:
            detail = r.get("detail")
            if r.get("kind") == "notice" and isinstance(detail, str) and detail.count(":") == 1:
                what, status = detail.split(":")
                if what.startswith("ncrl"):
                    self._notices.append((str(r.get("reader_id")), what, status))

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        self.consumer.publish(topic, payload, qos, retain)

    def _confirm(self, res: BatchResult) -> None:
        for topic, payload in res.acks:
            self.publish(topic, payload, 1, False)
        # one-process mode: no other process ingests, and this runs on the broker's event loop
        self._committed(res, others=False)

    def _committed(self, res: BatchResult, *, others: bool = True) -> None:
        if res.stored:
            self.bell.ring()  # this process's live feeds
            if others:
                notify(self.engine)  # other processes' (PostgreSQL)

    def start(self, wait_connected: float = 10) -> None:
        if self.engine.dialect.name == "postgresql":
            self.listener = Listener(self.engine, self.bell)
            self.listener.start()
        self.consumer.start()
        if wait_connected and not self.consumer.wait_connected(wait_connected):
            m = self.settings.mqtt
            log.warning(
                _(
                    "MQTT broker {host}:{port} not reachable yet (settings [mqtt] host/port, "
                    "CBCC_MQTT__HOST, CBCC_MQTT__PORT); ingest starts when it is",
                    host=m.host,
                    port=m.port,
                )
            )
        crl_publisher.install(self.crl)
        if self.crl is not None:
            self.crl.republish()
        self._jobs = threading.Thread(target=self._periodic, name="cbcc-jobs", daemon=True)
        self._jobs.start()
        if self.settings.national.url:
            self._national = threading.Thread(target=self._national_loop, name="cbcc-national", daemon=True)
            self._national.start()

    def stop(self) -> None:
        self._stop.set()
        self.consumer.stop()
        if self.listener is not None:
            self.listener.stop()
        if isinstance(self.writer, ProcessWriter):
            self.writer.stop()
        for t in (self._jobs, self._national):
            if t is not None:
                t.join(10)
        self.fleet.flush()
        crl_publisher.install(None)
        if self.broker is not None:
            self.broker.stop()
            embedded_ingest.install(None)
        self.engine.dispose()

    def _national_loop(self) -> None:
        """Follow the national change feed and push local locks upstream, every ``interval_s``.

        Its own thread: a first full load takes minutes and must not hold up the fleet flush.
        Revocation changes of each committed page go to the list publisher at once."""
        from gateway.national.feed import HttpChangeFeed, national_client
        from gateway.national.local import push_pending
        from gateway.national.sync import sync_feed

        n = self.settings.national
        assert n.url is not None  # noqa: S101 — type narrowing for mypy, not input validation
        token = n.token_file.read_text().splitlines()[0].strip() if n.token_file else None
        feed = HttpChangeFeed(n.url, token=token, cert=n.cert_file, key=n.key_file, ca=n.ca_file)
        crl = self.crl

        def hook(serials: list[int]) -> None:
            if crl is not None:
                crl.on_cards_changed(serials)

        with national_client(
            n.url, token=token, cert=n.cert_file, key=n.key_file, ca=n.ca_file, timeout=30
        ) as client:
            while not self._stop.is_set():
                try:
                    report = sync_feed(self.engine, feed, on_change=hook)
                    if report.applied:
                        log.info(_("national sync: {report}", report=report))
                    push_pending(client, self.engine)
                except Exception:  # the feed is away or returned garbage: nothing half-applied, retry
                    log.exception(
                        _("national sync failed; retrying in {seconds:.0f} s", seconds=n.interval_s)
                    )
                self._stop.wait(n.interval_s)

    def _periodic(self) -> None:
        """Fleet flush each second, time corrections and laggards each minute, retention hourly."""
        last_fix = last_lag = last_crl = 0.0
        last_purge = time.monotonic()
        policy = self.settings.retention
        while not self._stop.wait(1.0):
            now = time.monotonic()
            try:
                self.fleet.flush()
                if now - last_fix >= 10:
                    last_fix = now
                    with self.engine.begin() as conn:
                        timefix.fix_pending(conn)
                while self._notices:
                    rid, what, status = self._notices.popleft()
                    if self.crl is not None:
                        self.crl.on_notice(rid, what, status)
                if self.crl is not None and now - last_crl >= 60:
                    last_crl = now
                    self.crl.tick()
                if now - last_lag >= 60:
                    last_lag = now
                    self.fleet.laggards(600)
                if now - last_purge >= policy.purge_interval_s:
                    last_purge = now
                    report = retention.purge(self.engine, policy)
                    if report.total():
                        log.info(_("retention purge: {report}", report=report))
            except Exception:  # a database hiccup must not end the periodic jobs
                log.exception(_("periodic job failed"))


def run(settings: Settings) -> int | None:
    """``cbcc gateway run``: serve until interrupted (SIGINT/SIGTERM), then drain and stop; the
    signal that stopped it (uvicorn hands a caught signal back once it has shut down)."""
    import uvicorn

    from gateway import logjson

    logjson.configure_logging()
    gw = Gateway(settings)
    gw.start()
    m = settings.mqtt
    broker = (
        _(
            "embedded broker: gateway {host}:{port}, readers (TLS) {tls_host}:{tls_port}",
            host=m.host,
            port=m.port,
            tls_host=m.embedded_tls_host,
            tls_port=m.embedded_tls_port,
        )
        if m.embedded
        else _("broker {host}:{port}", host=m.host, port=m.port)
    )
    log.info(
        _(
            "serving API on http://{host}:{port} (docs at /docs); {broker}; data folder {folder}",
            host=settings.http.host,
            port=settings.http.port,
            broker=broker,
            folder=settings.data_dir,
        )
    )
    http = settings.http
    server = uvicorn.Server(
        uvicorn.Config(gw.app, host=http.host, port=http.port, access_log=False, log_config=None)
    )

    stopped_by: list[int] = []

    def _stop(signum: int, _frame: object) -> None:
        server.should_exit = True  # what uvicorn's own handlers do once it has installed them
        stopped_by.append(signum)

    # A SIGTERM/SIGINT that arrives before uvicorn takes over the signals asks it to stop, instead of
    # raising inside its event loop's start (a stop right after start printed a traceback).
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        gw.stop()
    return stopped_by[0] if stopped_by else None
