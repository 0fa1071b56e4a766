"""What the API needs from the rest of the gateway, gathered in one small object.

``downlink`` and ``fleet`` are optional: a read-only API (or a test) runs without them, and the
endpoints that need the downlink (configuration push, commands) then answer 503.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.engine import Engine

from gateway.auth import Authenticator, FailureLimiter
from gateway.bell import Bell
from gateway.ingest_health import IngestHealth
from gateway.models import Command, ConfigPush
from gateway.secretbox import SecretBox
from gateway.settings import Settings


class DownlinkLike(Protocol):
    """``gateway.mqtt.downlink.Downlink``: signed configurations and commands (it writes their audit
    entries). Raises a ``ValueError`` (``DownlinkError``) for input it refuses."""

    def push_config(
        self, reader_id: str, source: Mapping[str, Any], actor: str, /, role: str = ...
    ) -> ConfigPush: ...

    def send_command(
        self, target: str, action: str, args: Any, actor: str, /, role: str = ..., ttl_s: int = ...
    ) -> Command: ...

    def lockdown_site(
        self, site: str, actor: str, /, role: str = ..., ttl_s: int = ...
    ) -> Sequence[Command]: ...


class FleetLike(Protocol):
    """``gateway.fleet.Fleet``: readers that have not applied the configuration pushed to them."""

    def laggards(self, older_than_s: float, /) -> Sequence[object]: ...


class KeyCacheLike(Protocol):
    def forget(self, reader_id: str) -> None: ...


@dataclass
class ApiContext:
    engine: Engine
    settings: Settings
    box: SecretBox
    downlink: DownlinkLike | None = None
    fleet: FleetLike | None = None
    # Told when a reader is disabled, re-enabled or changed (ingest's gateway.registry.KeyCache).
    key_cache: KeyCacheLike | None = None
    # Called with (reader id, MQTT password) after a reader is registered, e.g. to add it to the
    # broker's password file; None: the operator does it with the password the API returned.
    on_reader_registered: Callable[[str, str], None] | None = None
    # Called with (reader id, enabled) when a reader is disabled or enabled again, e.g. to refuse
    # (and disconnect) it at the broker; None: nothing beyond the key cache.
    on_reader_enabled: Callable[[str, bool], None] | None = None
    # Serve /metrics without a token (a scraper on a private network). None: the settings'
    # ``http.metrics_open`` when it exists, else False.
    metrics_open: bool | None = None
    authenticator: Authenticator = field(default_factory=Authenticator)
    auth_limiter: FailureLimiter = field(default_factory=FailureLimiter)
    # The running ingest's progress: /healthz is red while it is stuck. None: not checked.
    ingest_health: IngestHealth | None = None
    # Rung after each ingest commit in this process: the console's live feeds query at once.
    events_bell: Bell = field(default_factory=Bell)

    def metrics_without_token(self) -> bool:
        if self.metrics_open is not None:
            return self.metrics_open
        return bool(getattr(self.settings.http, "metrics_open", False))
