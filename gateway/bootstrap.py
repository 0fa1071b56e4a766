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
from messages import _
from trustcore import keys, passphrase


@dataclass
class InitResult:
    lines: list[str] = field(default_factory=list)
    admin_token: str | None = None


def signing_key_path(settings: Settings) -> Path:
    return settings.signing_key_file or settings.data_dir / "config.key.pem"


def _files_under(paths: list[Path]) -> set[Path]:
    found: set[Path] = set()
    for p in paths:
        if p.is_dir():
            found.update(q for q in p.rglob("*"))
            found.add(p)
        elif p.exists():
            found.add(p)
    return found


def init(
    settings: Settings,
    passphrase_file: Path | None,
    admin_name: str = "admin",
    server_names: list[str] | None = None,
) -> InitResult:
    """Run every step; when one fails (or the process is stopped), remove every file and folder this
    call created, so a failed init leaves nothing behind (no orphan master key) and can be re-run."""
    watched = [
        settings.data_dir,
        settings.resolved_master_key_file(),
        signing_key_path(settings),
        signing_key_path(settings).with_name("config.cose_key"),
    ]
    sqlite = db_file(settings)
    if sqlite is not None:
        watched += [sqlite, sqlite.with_name(sqlite.name + "-wal"), sqlite.with_name(sqlite.name + "-shm")]
    before = _files_under(watched)
    try:
        return _init(settings, passphrase_file, admin_name, server_names)
    except BaseException:
        for p in sorted(_files_under(watched) - before, key=lambda q: len(q.parts), reverse=True):
            if p.is_dir():
                p.rmdir()
            else:
                p.unlink(missing_ok=True)
        raise


def db_file(settings: Settings) -> Path | None:
    """The SQLite database file of ``settings`` (None for a server database)."""
    url = settings.database.url
    if not url.startswith("sqlite:///"):
        return None
    return Path(url.removeprefix("sqlite:///"))


def _init(
    settings: Settings,
    passphrase_file: Path | None,
    admin_name: str,
    server_names: list[str] | None,
) -> InitResult:
    out = InitResult()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    mk = settings.resolved_master_key_file()
    existed = mk.exists()
    SecretBox.from_file(mk, create=True)
    said = _("master key: {path} (kept)") if existed else _("master key: {path} (created)")
    out.lines.append(said.format(path=mk))

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
        out.lines.append(_("signing key: {path} (kept)").format(path=key_path))
    else:
        secret = secret_once()
        key = keys.generate_rsa(keys.ROOT_BITS)
        key_path.parent.mkdir(parents=True, exist_ok=True)
        keys.write_private_key(key_path, key, secret)
        pub = key_path.with_name("config.cose_key")
        if not pub.exists():
            keys.write_new_file(pub, keys.cose_key_bytes(key.public_key()))
        out.lines.append(_("signing key: {path} created; readers pin {pub} (kid {kid})").format(
            path=key_path, pub=pub, kid=keys.kid_of(key.public_key()).hex()))  # fmt: skip

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
            said = _("embedded broker: CA and server certificate for {names} in {folder}; readers pin {ca}")
            out.lines.append(said.format(names=", ".join(dict.fromkeys(names)), folder=files.folder,
                                         ca=files.folder / "ca.der"))  # fmt: skip
        else:
            out.lines.append(_("embedded broker: certificate in {folder} (kept)").format(folder=files.folder))

    db.migrate(settings.database.url)
    out.lines.append(_("database schema: current"))

    engine = db.make_engine(settings.database.url)
    with Session(engine) as s:
        if s.exec(select(ApiToken.id).limit(1)).first() is None:
            tok, plain = auth.create_token(s, admin_name, "admin", "", "init")
            audit.record(s, "init", "token.create", tok.id, role="admin", token_role="admin")  # noqa: S106 — a role name, not a password
            s.commit()
            out.admin_token = plain
            out.lines.append(_("admin token {id} created").format(id=tok.id))
        else:
            out.lines.append(_("API tokens exist: none created"))
    engine.dispose()
    return out
