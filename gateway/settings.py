"""Gateway settings: a TOML file, overridden by ``CBCC_*`` environment variables.

One-machine defaults (SQLite + the embedded broker) need no file at all; production points
``database.url`` at PostgreSQL and ``mqtt`` at Mosquitto/EMQX. Nested keys come from the
environment as ``CBCC_DATABASE__URL``, ``CBCC_MQTT__HOST`` and so on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from gateway import datahome


class DatabaseSettings(BaseModel):
    # sqlite:///path (WAL, one machine) or postgresql://user@host/db (psycopg 3); empty: SQLite
    # in the data folder (<data_dir>/gateway.db), never in the current directory.
    url: str = ""
    pool_size: int = 5


class MqttSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    ca_file: Path | None = None
    username: str = "gateway"
    password: SecretStr = SecretStr("")
    client_id: str = "cbcc-gateway-1"
    # MQTT 5 shared subscription group for scale-out ("$share/<group>/..."); None: plain topics.
    shared_group: str | None = None
    protocol: Literal["5", "3.1.1"] = "5"
    keepalive: int = 30
    # Session expiry (MQTT 5): how long the broker keeps our queue while we are away.
    session_expiry_s: int = 7 * 24 * 3600
    # Start an in-process broker (amqtt) instead of connecting to an external one. The gateway
    # then reaches it on host:port (keep 127.0.0.1) and readers on embedded_tls_host:tls_port.
    embedded: bool = True
    embedded_tls_host: str = "0.0.0.0"  # noqa: S104 — readers on the LAN dial the TLS listener; the plain one stays on loopback
    embedded_tls_port: int = 8883
    # External Mosquitto with the dynamic-security plugin: a file holding the password of its
    # broker admin (``cbcc-admin``, made by `cbcc broker config`). Set: a reader registered,
    # disabled or enabled here is added to, refused by or let back into the RUNNING broker at once
    # (gateway/mqtt/dynsec_admin.py, docs/broker.md). None: the operator uses `cbcc broker`.
    admin_password_file: Path | None = None


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080
    # Serve /metrics without a token (a Prometheus scraper on a private network).
    metrics_open: bool = False


class IngestSettings(BaseModel):
    # A batch is committed when it holds batch_max messages, batch_wait_ms have passed, or it
    # holds at most 8 and none arrived for 2 ms (a lone tap does not wait out the linger).
    batch_max: int = Field(default=2000, ge=1, le=50_000)
    batch_wait_ms: int = Field(default=50, ge=1, le=10_000)
    # Retry pause while the database is unavailable (messages stay un-acked at the broker).
    db_retry_s: float = 2.0
    # /healthz turns red (503, with the reason) after batches failed this long without a commit.
    stuck_after_s: float = Field(default=30.0, ge=1.0)
    # Where batches are verified and written: 0 = a thread of the MQTT process (one GIL for paho
    # and the writer), 1 = a worker process (gateway/ingest_worker.py; the MQTT process keeps
    # paho, the queue and the acknowledgements). Measured in docs/gateway.md.
    workers: int = Field(default=0, ge=0, le=1)


class NationalSettings(BaseModel):
    """The national card database's change feed (docs/national-sync.md); no URL: no sync."""

    url: str | None = None
    token_file: Path | None = None  # bearer token (first line), or mutual TLS below
    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None
    interval_s: float = Field(default=30.0, ge=1.0)


class RetentionSettings(BaseModel):
    """How long personal data is kept (Decree 13/2023/NĐ-CP: only as long as configured)."""

    events_days: int = Field(default=730, ge=1)
    quarantine_days: int = Field(default=30, ge=1)
    audit_days: int = Field(default=1825, ge=1)
    purge_interval_s: int = Field(default=3600, ge=10)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CBCC_", env_nested_delimiter="__", extra="forbid")

    # Default: <CBCC_HOME or ~/.local/share/cbcc>/gateway (gateway/datahome.py), never the
    # current directory, so keys and the database stay out of a checkout.
    data_dir: Path = Field(default_factory=lambda: datahome.tool_dir("gateway"))
    # 32-byte master key (file, mode 0600) that encrypts reader keys at rest in the database.
    master_key_file: Path | None = None
    # RSA key (encrypted PKCS#8) that signs reader configurations and commands, and its passphrase.
    signing_key_file: Path | None = None
    signing_passphrase_file: Path | None = None
    # National revocation list (docs/revocation-list-national-v1.md): the root public key readers
    # pin (COSE_Key) and, for a self-contained deployment, the root's private key that signs the
    # lists. Without a signing key the gateway does not publish lists (the national CA does).
    national_root_key_file: Path | None = None
    root_signing_key_file: Path | None = None
    root_passphrase_file: Path | None = None
    database: DatabaseSettings = DatabaseSettings()
    mqtt: MqttSettings = MqttSettings()
    http: HttpSettings = HttpSettings()
    ingest: IngestSettings = IngestSettings()
    retention: RetentionSettings = RetentionSettings()
    national: NationalSettings = NationalSettings()
    # Accepted for existing settings files; logs are always one JSON object per line on stderr
    # (gateway/logjson.py), quiet by default, everything with `cbcc --debug`.
    log_json: bool = True

    @model_validator(mode="after")
    def _database_in_data_dir(self) -> Settings:
        if not self.database.url:
            self.database.url = f"sqlite:///{self.data_dir / 'gateway.db'}"
        return self

    def resolved_master_key_file(self) -> Path:
        return self.master_key_file or self.data_dir / "master.key"


def load_settings(toml_file: Path | None = None, **overrides: object) -> Settings:
    """Settings from ``toml_file`` (if any), the environment, then explicit ``overrides`` (highest)."""

    class _FromFile(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if toml_file is not None:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
            return tuple(sources)

    return Settings.model_validate(_FromFile(**overrides).model_dump())  # type: ignore[arg-type]
