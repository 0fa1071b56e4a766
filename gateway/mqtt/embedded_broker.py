"""The one-machine default: an MQTT broker inside the gateway process (amqtt).

``EmbeddedBroker(host, port, users, acl)`` serves plain MQTT on ``host:port`` (keep it on
127.0.0.1 for the gateway itself) and, with ``tls=``, MQTT over TLS 1.2+ for readers on
``tls_host:tls_port``. Every client must log in (``users``: username -> password, either clear
or a Mosquitto ``$7$`` hash from a ``cbcc broker config`` password file); anonymous clients are
refused. Topics follow the same contract ACL as the Mosquitto configuration
(``gateway.mqtt.broker_config.Acl``): a reader publishes only ``cbcc/v1/r/<its id>/{ev,status,health}``
and reads only its own ``{cmd,cfg,time}`` plus ``cbcc/v1/all/#``; gateway users get ``cbcc/v1/#``.
A client id must equal its username, so a reader cannot pose as another client.

Limits (docs/broker.md, "Embedded broker"): amqtt speaks MQTT 3.1.1 only, so the gateway connects
with ``protocol=MQTTv311`` (no shared subscriptions, one consumer); its sessions, queues and
retained messages live in memory only (a restart loses them); and amqtt forgets a QoS 1
message it delivered but that the client did not acknowledge within 5 s or before the
connection dropped — it is not redelivered on reconnect. Use Mosquitto where "nothing lost" must
hold across gateway crashes and restarts.

Start and stop either from a running event loop (``await b.start_async()`` /
``await b.stop_async()``) or from synchronous code (``b.start()`` / ``b.stop()``: the broker then
runs on its own loop in a background thread).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from gateway.mqtt.broker_config import Acl, TlsFiles, verify_password
from messages import _

log = logging.getLogger(__name__)

_PLUGINS = __name__


def _password_ok(given: str | None, stored: str) -> bool:
    if given is None:
        return False
    if stored.startswith("$7$"):
        return verify_password(given, stored)
    return hmac.compare_digest(given.encode("utf-8"), stored.encode("utf-8"))


class CbccAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt ships no type information
    """Username and password required; the client id must be the username."""

    @dataclass
    class Config:
        users: dict[str, str] = field(default_factory=dict)

    async def authenticate(self, *, session: Session) -> bool | None:
        users: dict[str, str] = self.config.users
        user = session.username
        if not user or user not in users:
            log.info(_("refused: unknown user {user!r}", user=user))
            return False
        if not _password_ok(session.password, users[user]):
            log.info(_("refused: bad password for {user!r}", user=user))
            return False
        if session.client_id != user:
            log.info(
                _(
                    "refused: {user!r} must use its username as client id, not {client!r}",
                    user=user,
                    client=session.client_id,
                )
            )
            return False
        return True


class CbccTopicPlugin(BaseTopicPlugin):  # type: ignore[misc]
    """The contract ACL (``broker_config.Acl``) for publish, subscribe and delivery."""

    @dataclass
    class Config:
        gateway_users: list[str] = field(default_factory=lambda: ["gateway"])
        readers: list[str] | None = None

    def _acl(self) -> Acl:
        cfg = self.config
        readers = None if cfg.readers is None else frozenset(cfg.readers)
        return Acl(frozenset(cfg.gateway_users), readers)

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Action | None = None
    ) -> bool | None:
        if session is None or topic is None:
            return False
        acl, user = self._acl(), session.username
        if action == Action.PUBLISH:
            ok = acl.may_publish(user, topic)
        elif action == Action.SUBSCRIBE:
            ok = acl.may_subscribe(user, topic)
        elif action == Action.RECEIVE:
            ok = acl.may_receive(user, topic)
        else:
            ok = False
        if not ok and action != Action.RECEIVE:
            log.info(_("denied: {user!r} may not {action} {topic!r}", user=user, action=action, topic=topic))
        return ok


class _Broker(Broker):  # type: ignore[misc]  # amqtt ships no type information
    """amqtt's broker, with retained messages sent only for the session's own subscriptions and
    only where the ACL lets it receive them.

    amqtt 0.12's ``client_connected`` calls ``_publish_retained_messages_for_subscription`` for
    every filter in the broker (every client's) and never checks the ACL on that path: a reader
    connecting after another had published its retained status was handed that status and
    journalled ``topic:unexpected`` (tests/gateway/test_embedded_broker_retained.py)."""

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        topic_filter = subscription[0]
        own = [q for s, q in self._subscriptions.get(topic_filter, ()) if s is session]
        if not own:
            return  # another client's filter
        handler = self._get_handler(session)
        if handler is None:
            return
        sends = []
        for topic, retained in list(self._retained_messages.items()):
            if not self._matches(topic, topic_filter):
                continue
            if not await self._topic_filtering(session, topic=topic, action=Action.RECEIVE):
                continue
            qos = min(own[0], retained.qos or own[0])
            sends.append(asyncio.ensure_future(handler.mqtt_publish(retained.topic, retained.data, qos,
                                                                    retain=True)))  # fmt: skip
        if sends:
            await asyncio.wait(sends)


class EmbeddedBroker:
    """An amqtt broker configured for the cbcc contract (see the module docstring)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        users: Mapping[str, str] | None = None,
        acl: Acl | None = None,
        *,
        tls: TlsFiles | None = None,
        tls_host: str = "0.0.0.0",  # noqa: S104 — readers on the LAN dial the TLS listener; the plain one stays on loopback
        tls_port: int = 8883,
    ) -> None:
        self.host, self.port = host, port
        self.users = dict(users or {})
        self.acl = acl or Acl()
        self.tls, self.tls_host, self.tls_port = tls, tls_host, tls_port
        self._broker: Broker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def config(self) -> dict[str, Any]:
        listeners: dict[str, Any] = {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}}
        if self.tls is not None:
            listeners["tls"] = {
                "type": "tcp",
                "bind": f"{self.tls_host}:{self.tls_port}",
                "ssl": True,
                "certfile": str(self.tls.certfile),
                "keyfile": str(self.tls.keyfile),
            }
        readers = None if self.acl.readers is None else sorted(self.acl.readers)
        return {
            "listeners": listeners,
            "plugins": {
                f"{_PLUGINS}.CbccAuthPlugin": {"users": self.users},
                f"{_PLUGINS}.CbccTopicPlugin": {
                    "gateway_users": sorted(self.acl.gateway_users),
                    "readers": readers,
                },
            },
        }

    # ---- inside a running loop ----------------------------------------------------------------

    async def start_async(self) -> None:
        if self._broker is not None:
            raise RuntimeError("broker already started")
        broker = _Broker(self.config())
        await broker.start()
        self._broker = broker
        if self.port == 0:  # an ephemeral port: report the one the OS chose
            self.port = self._bound_port("default")
        if self.tls is not None and self.tls_port == 0:
            self.tls_port = self._bound_port("tls")

    async def stop_async(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()

    def set_user(self, user: str, password: str) -> None:
        """Add or change a login while the broker runs (a reader registered through the API).

        ``password`` is clear text or a Mosquitto ``$7$`` hash. The running auth plugin holds
        its own copy of the users (amqtt builds plugin configs from the dict it was given)."""
        self.users[user] = password
        broker = self._broker
        if broker is None:
            return
        for plugin in broker.plugins_manager._auth_plugins:  # amqtt has no public accessor
            if isinstance(plugin, CbccAuthPlugin):
                plugin.config.users[user] = password

    def _bound_port(self, listener: str) -> int:
        assert self._broker is not None  # noqa: S101 — type narrowing for mypy, not input validation
        server = self._broker._servers[listener].instance
        return int(server.sockets[0].getsockname()[1])

    # ---- from synchronous code: a background thread with its own loop ------------------------

    def start(self, timeout: float = 10) -> None:
        if self._thread is not None:
            raise RuntimeError("broker already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:  # handed to the caller of start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                # amqtt leaves per-connection waiters behind; end them before the loop closes.
                leftover = asyncio.all_tasks(loop)
                for task in leftover:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="cbcc-embedded-broker", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("embedded broker did not start")
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]

    def stop(self, timeout: float = 15) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.stop_async(), loop).result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            self._loop = self._thread = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
