"""One-process mode: a reader's event is committed before the embedded broker acknowledges it.

amqtt acknowledges an incoming QoS 1 PUBLISH as soon as it has queued it in memory, and it
forgets a message it delivered when the subscriber does not acknowledge it within 5 s. With the
broker inside the gateway process that would leave a window in which a reader has deleted an
event from its journal (it got its PUBACK) while no row exists yet: a crash there loses the event.

So in one-process mode events do not travel through amqtt's delivery at all. The broker's
protocol handler hands each PUBLISH on a reader's own ``cbcc/v1/r/<id>/ev`` topic to
:class:`BrokerIngest`, which groups concurrent messages into one database transaction
(``IngestWriter.write_batch`` in a worker thread) and only then sends the PUBACK. While the
database is unavailable the PUBACKs wait and the readers keep their journals: nothing is lost,
and a re-sent event is a duplicate the writer counts, not a second row.

This patches one method of amqtt's broker-side protocol handler (pinned by uv.lock); the test
``tests/test_gateway_embedded_ingest.py`` fails if an amqtt upgrade changes what it relies on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.puback import PubackPacket
from amqtt.session import INCOMING

from gateway.ingest import BatchResult, IngestWriter, Message
from gateway.ingest_health import IngestHealth
from messages import _

log = logging.getLogger("cbcc.gateway.embedded_ingest")

_active: BrokerIngest | None = None
_original: Callable[[Any, Any], Awaitable[None]] | None = None


def _own_event_topic(topic: str, username: str | None) -> bool:
    parts = topic.split("/")
    return len(parts) == 5 and parts[:3] == ["cbcc", "v1", "r"] and parts[4] == "ev" and parts[3] == username


def _ours(handler: Any, m: Any) -> bool:
    session = getattr(handler, "session", None)
    return (
        _active is not None
        and session is not None
        and getattr(m, "direction", None) == INCOMING
        and m.qos in (0, 1)
        and (m.qos == 0 or m.packet_id is not None)
        and _own_event_topic(m.topic, session.username)
    )


async def _flow(self: Any, app_message: Any) -> None:
    """BrokerProtocolHandler._handle_message_flow, with events ingested before the PUBACK."""
    ingest = _active
    if ingest is None or not _ours(self, app_message):
        assert _original is not None  # noqa: S101 — type narrowing for mypy, not input validation
        await _original(self, app_message)
        return
    await ingest.submit(app_message.topic, bytes(app_message.data))
    if app_message.qos == 1:
        puback = PubackPacket.build(app_message.packet_id)
        await self._send_packet(puback)
        app_message.puback_packet = puback


class BrokerIngest:
    """Commits events arriving at the embedded broker in small group transactions."""

    def __init__(
        self, writer: IngestWriter, *, batch_max: int = 500, wait_s: float = 0.005, retry_s: float = 1.0
    ) -> None:
        self.writer = writer
        self.batch_max = batch_max
        self.wait_s = wait_s
        self.retry_s = retry_s
        self._pending: list[tuple[Message, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.stored = 0
        self.batches = 0
        self.db_failures = 0
        self.health = IngestHealth()
        self.on_batch: Callable[[BatchResult], None] | None = None

    async def submit(self, topic: str, payload: bytes) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._pending.append((Message(topic, payload, 0, time.time()), fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        await fut

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            await asyncio.sleep(self.wait_s)  # let concurrent readers join the transaction
            batch, self._pending = self._pending[: self.batch_max], self._pending[self.batch_max :]
            msgs = [m for m, _fut in batch]
            while True:
                try:
                    res = await loop.run_in_executor(None, self.writer.write_batch, msgs)
                    self.health.committed()
                    break
                except Exception as exc:  # database away: no PUBACK yet, readers keep their journals
                    self.db_failures += 1
                    self.health.failed(exc)
                    log.warning(
                        _(
                            "embedded ingest: batch of {count} not committed ({error}); retrying",
                            count=len(msgs),
                            error=type(exc).__name__,
                        )
                    )
                    await asyncio.sleep(self.retry_s)
            self.stored += res.stored
            self.batches += 1
            if self.on_batch is not None:
                self.on_batch(res)
            for _m, fut in batch:
                if not fut.done():
                    fut.set_result(None)


def install(ingest: BrokerIngest | None) -> None:
    """Route reader events of the in-process broker to ``ingest`` (None: back to amqtt's flow)."""
    global _active, _original
    if _original is None:
        _original = BrokerProtocolHandler._handle_message_flow
        BrokerProtocolHandler._handle_message_flow = _flow
    _active = ingest
