"""First start of a gateway: everything `cbcc gateway init` creates, each step idempotent.

- the data folder (mode 0700);
- the master key that seals reader keys in the database;
- the configuration/command signing key (RSA-3072, encrypted PKCS#8; readers pin its
  ``config.cose_key``) unless one is already configured;
- the database schema;
- for the one-machine broker: the gateway's MQTT password and a CA + server certificate
  (the CA key encrypted with the same passphrase; readers pin ``broker/ca.der``);
- the first admin API token, only when the database has no token yet.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, select

from gateway import audit, auth, db, service
from gateway.models import ApiToken
from gateway.mqtt import broker_config
from gateway.secretbox import SecretBox
from gateway.settings import Settings
from trustcore import keys, passphrase


@dataclass
class InitResult:
    lines: list[str] = field(default_factory=list)
    admin_token: str | None = None


def signing_key_path(settings: Settings) -> Path:
    return settings.signing_key_file or settings.data_dir / "config.key.pem"


def init(
    settings: Settings,
    passphrase_file: Path | None,
    admin_name: str = "admin",
    server_names: list[str] | None = None,
) -> InitResult:
    out = InitResult()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    mk = settings.resolved_master_key_file()
    existed = mk.exists()
    SecretBox.from_file(mk, create=True)
    out.lines.append(f"master key: {mk} ({'kept' if existed else 'created'})")

    pf = passphrase_file or settings.signing_passphrase_file
    asked: list[bytes] = []

    def secret_once() -> bytes:
        if not asked:
            asked.append(
                passphrase.obtain(pf, confirm=True, purpose="the gateway's keys (signing key, broker CA)")
            )
        return asked[0]

    key_path = signing_key_path(settings)
    if key_path.exists():
        out.lines.append(f"signing key: {key_path} (kept)")
    else:
        secret = secret_once()
        key = keys.generate_rsa(keys.ROOT_BITS)
        key_path.parent.mkdir(parents=True, exist_ok=True)
        keys.write_private_key(key_path, key, secret)
        pub = key_path.with_name("config.cose_key")
        if not pub.exists():
            keys.write_new_file(pub, keys.cose_key_bytes(key.public_key()))
        out.lines.append(f"signing key: {key_path} created; readers pin {pub} "
                         f"(kid {keys.kid_of(key.public_key()).hex()})")  # fmt: skip

    if settings.mqtt.embedded:
        files = service.local_broker_files(settings)
        service.ensure_gateway_password(files)
        if files.tls is None:
            names = (
                [*server_names, "localhost", "127.0.0.1"]
                if server_names
                else [socket.gethostname(), "localhost", "127.0.0.1"]
            )
            broker_config.make_ca_and_server_cert(files.folder, list(dict.fromkeys(names)), secret_once())
            out.lines.append(
                f"embedded broker: CA and server certificate for {', '.join(dict.fromkeys(names))} "
                f"in {files.folder}; readers pin {files.folder / 'ca.der'}"
            )
        else:
            out.lines.append(f"embedded broker: certificate in {files.folder} (kept)")

    db.migrate(settings.database.url)
    out.lines.append("database schema: current")

    engine = db.make_engine(settings.database.url)
    with Session(engine) as s:
        if s.exec(select(ApiToken.id).limit(1)).first() is None:
            tok, plain = auth.create_token(s, admin_name, "admin", "", "init")
            audit.record(s, "init", "token.create", tok.id, role="admin", token_role="admin")  # noqa: S106 — a role name, not a password
            s.commit()
            out.admin_token = plain
            out.lines.append(f"admin token {tok.id} created")
        else:
            out.lines.append("API tokens exist: none created")
    engine.dispose()
    return out
