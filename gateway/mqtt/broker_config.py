"""A production Mosquitto configuration for cbcc: TLS, passwords, per-reader ACLs, persistence.

Everything here is pure Python and testable without a broker:

- reader ids and the topic rules of the MQTT contract (docs/mqtt.md): a reader publishes only
  ``cbcc/v1/r/<its id>/{ev,status,health}`` and reads only its own ``{cmd,cfg,time}`` plus
  ``cbcc/v1/all/#``; a gateway user reads and writes ``cbcc/v1/#``. ``Acl`` evaluates the same
  rules in Python (the embedded broker uses it), ``acl_file_text`` writes them for Mosquitto;
- Mosquitto's own password hash (``$7$``: PBKDF2-HMAC-SHA512, as ``mosquitto_passwd`` of
  Mosquitto 2.x writes it), so no Mosquitto tool is needed on the machine that prepares the files;
- the queue and in-flight sizes (``queue_depth``; see docs/broker.md for the reasoning);
- a CA and a server certificate made with ``cryptography`` (the CA key encrypted at rest);
- the folder layout written by ``cbcc broker config`` and rewritten by ``add-reader`` /
  ``remove-reader`` (``BrokerFiles``), with the roster kept in ``roster.json``;
- with Mosquitto's dynamic-security plugin (``dynsec_json``; the default when the plugin is
  installed) the same rules are enforced when a client SUBSCRIBEs, not only on delivery: Mosquitto
  2.0's ``acl_file`` grants every subscription, so a reader could subscribe to
  ``$share/<group>/cbcc/v1/r/+/ev``, join the gateways' shared group and black-hole every second
  event of other readers (issue 15, finding 2). The gateways' shared group name is random per
  deployment (``Roster.shared_group``) and the only ``$share`` filter anyone may subscribe to.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import hmac
import io
import ipaddress
import json
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from messages import _
from trustcore import files, ids

ROOT = "cbcc/v1"

# Usernames end up in topics, in the password file (``user:hash``) and in the ACL file, so they
# are kept to characters that mean nothing to any of them: no '/', '+', '#', '%', ':', spaces.
_USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

# The reader's rules, exactly the contract's (tests/support/broker.py's ACL with %u substituted).
READER_WRITE = ("ev", "status", "health")
READER_READ = ("cmd", "cfg", "time", "ack")
BROADCAST_READ = f"{ROOT}/all/#"
GATEWAY_RULES: tuple[tuple[str, str], ...] = (("readwrite", f"{ROOT}/#"), ("read", "$SYS/#"))
# The broker admin (dynamic-security plugin only): may use the plugin's control topics and nothing
# else, so readers are added and removed in the running broker (gateway/mqtt/dynsec_admin.py).
ADMIN_USER = "cbcc-admin"
ADMIN_RULES: tuple[tuple[str, str], ...] = (("readwrite", "$CONTROL/dynamic-security/#"),)

# mosquitto_passwd (2.x) defaults: 12-byte salt, 101 PBKDF2 iterations, 64-byte SHA-512 output.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12

# Sizing defaults (docs/broker.md, "Queue and in-flight settings").
DEFAULT_TAPS_PER_READER_PER_DAY = 4000
DEFAULT_MAX_INFLIGHT = 1000
MIN_QUEUE = 100_000


class BrokerConfigError(Exception):
    """A user error in broker configuration (bad id, missing file, refusing to overwrite)."""


def check_user(name: str, what: str = "gateway user") -> str:
    """A gateway's MQTT username (readers' usernames are their reader ids: check_reader_id)."""
    if not _USER_RE.match(name):
        raise BrokerConfigError(
            _(
                "{what} {name!r} is not usable as an MQTT username: use 1-64 letters, digits, '.', '_' "
                "or '-', starting with a letter or digit",
                what=what,
                name=name,
            )
        )
    return name


def check_reader_id(name: str) -> str:
    """A reader's MQTT username: its reader id, under the one reader id rule (trustcore/ids.py)."""
    if not ids.is_reader_id(name):
        raise BrokerConfigError(
            _(
                "reader id {id!r} is not valid: 1-63 lowercase letters, digits or '-', starting with "
                "a letter or digit (it is also the MQTT username and a topic level)",
                id=name,
            )
        )
    return name


# ---- passwords ------------------------------------------------------------------------------


def generate_password() -> str:
    """A random 192-bit password, URL-safe text (fits the reader's configuration and CONNECT)."""
    return secrets.token_urlsafe(24)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """Mosquitto 2.x password-file hash: ``$7$<iterations>$<b64 salt>$<b64 PBKDF2-SHA512>``.

    The iteration count is stored in the hash, so Mosquitto verifies any count; 101 is what
    ``mosquitto_passwd`` uses. Stretching adds nothing to a random 192-bit password, and every
    CONNECT pays for it, so the default is kept.
    """
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Check ``password`` against a ``$7$`` hash (as Mosquitto does); other formats never match."""
    parts = stored.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != "7" or not parts[2].isdigit():
        return False
    try:
        salt = base64.b64decode(parts[3], validate=True)
        want = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    iterations = int(parts[2])
    if not 1 <= iterations <= 10_000_000:
        return False
    got = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(got, want)


def password_file_text(hashes_by_user: dict[str, str]) -> str:
    return "".join(f"{user}:{h}\n" for user, h in sorted(hashes_by_user.items()))


def parse_password_file(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, h = line.partition(":")
        if not sep:
            raise BrokerConfigError(_("malformed password file line for {user!r}", user=user))
        out[user] = h
    return out


# ---- topics and ACL -------------------------------------------------------------------------


def reader_rules(reader_id: str) -> list[tuple[str, str]]:
    """(access, topic filter) pairs of one reader: Mosquitto's ``write``/``read`` words."""
    base = f"{ROOT}/r/{check_reader_id(reader_id)}"
    return (
        [("write", f"{base}/{t}") for t in READER_WRITE]
        + [("read", f"{base}/{t}") for t in READER_READ]
        + [("read", BROADCAST_READ)]
    )


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching of a concrete topic against a filter (``+`` one level, ``#`` the rest)."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    f, t = topic_filter.split("/"), topic.split("/")
    for i, level in enumerate(f):
        if level == "#":
            return True
        if i >= len(t) or (level != "+" and level != t[i]):
            return False
    return len(f) == len(t)


def filter_covered(rule: str, sub_filter: str) -> bool:
    """True when every topic ``sub_filter`` can match is also matched by ``rule``."""
    r, s = rule.split("/"), sub_filter.split("/")
    for i, level in enumerate(r):
        if level == "#":
            return True
        if i >= len(s) or s[i] == "#":
            return False
        if level == "+":
            continue
        if s[i] != level:  # a literal rule level covers neither '+' nor another literal
            return False
    return len(r) == len(s)


def new_shared_group() -> str:
    """An unguessable name for the gateways' shared subscription (goes into gateway settings)."""
    return "cbcc-" + secrets.token_hex(8)


DYNSEC_PLUGIN_PATHS = (
    Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"),
    Path("/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so"),
    Path("/usr/lib/mosquitto_dynamic_security.so"),
    Path("/usr/local/lib/mosquitto_dynamic_security.so"),
)


def find_dynsec_plugin() -> Path | None:
    return next((p for p in DYNSEC_PLUGIN_PATHS if p.exists()), None)


def _dynsec_password(stored: str) -> dict[str, object]:
    """A ``$7$`` hash as the plugin's client fields (same PBKDF2-SHA512, split apart)."""
    parts = stored.split("$")
    if len(parts) != 5 or parts[1] != "7":
        raise BrokerConfigError(_("password hash is not in Mosquitto's $7$ format"))
    return {"password": parts[4], "salt": parts[3], "iterations": int(parts[2])}


def dynsec_acls(rules: Iterable[tuple[str, str]]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for access, topic in rules:
        wild = "+" in topic or "#" in topic
        if access in ("write", "readwrite"):
            out.append({"acltype": "publishClientSend", "topic": topic, "allow": True})
        if access in ("read", "readwrite"):
            out.append({"acltype": "publishClientReceive", "topic": topic, "allow": True})
            kind = "subscribePattern" if wild else "subscribeLiteral"
            out.append({"acltype": kind, "topic": topic, "allow": True})
    return out


def dynsec_json(readers: Iterable[str], gateway_users: Iterable[str], hashes_by_user: dict[str, str],
                shared_group: str) -> bytes:  # fmt: skip
    """The dynamic-security plugin's file: deny by default (publish, receive, subscribe), one role
    per reader with its literal topics, one gateway role that may also subscribe through
    ``$share/<shared_group>/``. Users without a password hash are left out."""
    gw_rules = [*GATEWAY_RULES, ("read", f"$share/{check_user(shared_group, 'shared group')}/{ROOT}/#")]
    roles: list[dict[str, object]] = [{"rolename": "cbcc-gateway", "acls": dynsec_acls(gw_rules)}]
    clients: list[dict[str, object]] = []
    for user in sorted(set(gateway_users)):
        if user in hashes_by_user:
            clients.append({"username": user, **_dynsec_password(hashes_by_user[user]),
                            "roles": [{"rolename": "cbcc-gateway"}]})  # fmt: skip
    if ADMIN_USER in hashes_by_user:
        roles.append({"rolename": "cbcc-broker-admin", "acls": dynsec_acls(ADMIN_RULES)})
        clients.append({"username": ADMIN_USER, **_dynsec_password(hashes_by_user[ADMIN_USER]),
                        "roles": [{"rolename": "cbcc-broker-admin"}]})  # fmt: skip
    for rid in sorted(set(readers)):
        if rid in hashes_by_user:
            roles.append({"rolename": f"reader:{rid}", "acls": dynsec_acls(reader_rules(rid))})
            clients.append({"username": rid, **_dynsec_password(hashes_by_user[rid]),
                            "roles": [{"rolename": f"reader:{rid}"}]})  # fmt: skip
    deny = {"publishClientSend": False, "publishClientReceive": False, "subscribe": False,
            "unsubscribe": True}
    doc = {
        "defaultACLAccess": deny,
        "clients": clients,
        "groups": [],
        "roles": roles,
    }
    return (json.dumps(doc, indent=1) + "\n").encode()


@dataclass(frozen=True)
class Acl:
    """The contract's access rules: ``gateway_users`` get ``cbcc/v1/#``; every other
    authenticated user is a reader whose id is its username (``readers`` given: only those)."""

    gateway_users: frozenset[str] = frozenset({"gateway"})
    readers: frozenset[str] | None = None

    def rules(self, user: str | None) -> list[tuple[str, str]]:
        if user is None:
            return []
        if user in self.gateway_users:
            return list(GATEWAY_RULES)
        if (self.readers is not None and user not in self.readers) or not ids.is_reader_id(user):
            return []
        return reader_rules(user)

    def may_publish(self, user: str | None, topic: str) -> bool:
        return any(a in ("write", "readwrite") and topic_matches(f, topic) for a, f in self.rules(user))

    def may_receive(self, user: str | None, topic: str) -> bool:
        return any(a in ("read", "readwrite") and topic_matches(f, topic) for a, f in self.rules(user))

    def may_subscribe(self, user: str | None, sub_filter: str) -> bool:
        return any(a in ("read", "readwrite") and filter_covered(f, sub_filter) for a, f in self.rules(user))


def acl_file_text(readers: Iterable[str], gateway_users: Iterable[str]) -> str:
    """Mosquitto ACL: one block per user, nothing for anyone else (anonymous is refused anyway).

    Explicit blocks rather than ``pattern ... %u`` rules: the file lists exactly the readers that
    exist, so a stale password line alone grants no topic, and the file can be audited by eye.
    """
    out = [
        "# cbcc MQTT contract v1 (docs/mqtt.md, docs/broker.md). Generated by `cbcc broker`;",
        "# edit the roster with `cbcc broker add-reader/remove-reader`, not by hand.",
        "",
    ]
    for user in sorted(set(gateway_users)):
        out += ["# gateway user", f"user {check_user(user, 'gateway user')}"]
        out += [f"topic {a} {t}" for a, t in GATEWAY_RULES]
        out.append("")
    for rid in sorted(set(readers)):
        out += [f"user {rid}"] + [f"topic {a} {t}" for a, t in reader_rules(rid)]
        out.append("")
    return "\n".join(out)


# ---- sizing ---------------------------------------------------------------------------------


def queue_depth(readers: int, taps_per_reader_per_day: int = DEFAULT_TAPS_PER_READER_PER_DAY) -> int:
    """``max_queued_messages``: a gateway that is down for a day must find every tap queued.

    The gateway's session collects the events of every reader, so its queue needs
    readers x taps per day; doubled for status changes, alarms and notices, and never below
    ``MIN_QUEUE`` so that readers added later fit without a reload.
    """
    return max(MIN_QUEUE, 2 * max(readers, 1) * taps_per_reader_per_day)


# ---- certificates ---------------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for n in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            entries.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(entries)


@dataclass(frozen=True)
class TlsFiles:
    cafile: Path
    certfile: Path
    keyfile: Path


def make_ca_and_server_cert(
    folder: Path,
    server_names: Sequence[str],
    ca_passphrase: bytes,
    *,
    ca_days: int = 3650,
    server_days: int = 825,
) -> TlsFiles:
    """A broker CA (P-256; key encrypted with ``ca_passphrase``) and a server certificate for
    ``server_names`` (DNS names or IP addresses, as readers dial them).

    Writes ``ca.crt`` (PEM, for the gateway), ``ca.der`` (what readers pin), ``ca.key``
    (encrypted, kept offline to renew the server certificate), ``server.crt`` and ``server.key``
    (clear, mode 0600: Mosquitto must read it unattended). Refuses to overwrite any of them.
    """
    if not server_names:
        raise BrokerConfigError(_("the server certificate needs at least one --server-name"))
    if not ca_passphrase:
        raise BrokerConfigError(_("the CA key needs a passphrase"))
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("cbcc MQTT broker CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=ca_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(server_names[0]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=server_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_san(server_names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(folder / "ca.crt", folder / "server.crt", folder / "server.key")
    ca_key_pem = ca_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(ca_passphrase),
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    outputs = [
        (files.cafile, ca.public_bytes(serialization.Encoding.PEM), False),
        (folder / "ca.der", ca.public_bytes(serialization.Encoding.DER), False),
        (folder / "ca.key", ca_key_pem, True),
        (files.certfile, cert.public_bytes(serialization.Encoding.PEM), False),
        (files.keyfile, key_pem, True),
    ]
    existing = [str(p) for p, _data, _private in outputs if p.exists()]
    if existing:
        raise BrokerConfigError(_("refusing to overwrite {paths}", paths=", ".join(existing)))
    for path, data, private in outputs:
        write_new_file(path, data, private=private)
    return files


# ---- files ----------------------------------------------------------------------------------


def write_new_file(path: Path, data: bytes, *, private: bool = False) -> None:
    """Create ``path`` exclusively; private files are 0600 from the first byte."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    except FileExistsError:
        raise BrokerConfigError(_("{path} already exists; refusing to overwrite it", path=path)) from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def replace_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` in one step (a broker reloading on SIGHUP never sees half a file)."""
    files.write_atomic(path, data, mode)


def read_reader_ids(path: Path) -> list[str]:
    """Reader ids from a CSV: the ``reader_id`` (or ``id``) column if there is a header, else the
    first column; blank lines and lines starting with '#' are skipped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise BrokerConfigError(_("cannot read {path}: {reason}", path=path, reason=exc.strerror)) from None
    rows = [
        r for r in csv.reader(io.StringIO(text)) if r and r[0].strip() and not r[0].lstrip().startswith("#")
    ]
    if not rows:
        return []
    head = [c.strip().lower() for c in rows[0]]
    column = 0
    for name in ("reader_id", "id", "reader"):
        if name in head:
            column = head.index(name)
            rows = rows[1:]
            break
    return [check_reader_id(r[column].strip()) for r in rows if len(r) > column]


def credentials_csv(rows: Sequence[tuple[str, str, str]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["username", "password", "role"])
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


@dataclass
class BrokerSettings:
    """What goes into mosquitto.conf. Paths are as the broker host will see them."""

    install_dir: Path
    tls_port: int = 8883
    tls_bind: str | None = None  # None: every interface
    local_port: int | None = None  # plain MQTT on 127.0.0.1 only, for a gateway on this host
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    persistence_dir: Path = Path("/var/lib/mosquitto/")
    autosave_seconds: int = 60
    max_inflight: int = DEFAULT_MAX_INFLIGHT
    max_queued: int = MIN_QUEUE
    max_packet_size: int = 65536
    session_expiry: str = "30d"
    clientid_is_username: bool = True
    log_dest: str | None = None
    # Mosquitto's dynamic-security plugin: subscriptions checked at SUBSCRIBE (see the module
    # docstring). None: password_file + acl_file (subscriptions are then checked on delivery only).
    dynsec_plugin: Path | None = None

    def tls(self) -> TlsFiles:
        d = self.install_dir
        return TlsFiles(
            self.cafile or d / "ca.crt", self.certfile or d / "server.crt", self.keyfile or d / "server.key"
        )


def mosquitto_conf_text(s: BrokerSettings) -> str:
    """The broker configuration; every setting that matters for 'nothing lost' is commented."""
    tls = s.tls()
    d = s.install_dir
    persistence_dir = str(s.persistence_dir).rstrip("/") + "/"  # Mosquitto appends the file name
    # Listener options go after their `listener` line: one before any listener would silently
    # open Mosquitto's default listener (1883, every interface, no TLS).
    per_listener = (
        [
            "# The client id is the username: nobody can take over (and wipe) another client's session.",
            "use_username_as_clientid true",
        ]
        if s.clientid_is_username
        else []
    )
    lines = [
        "# cbcc MQTT broker (Mosquitto 2.x). Generated by `cbcc broker config`; explained in docs/broker.md.",
        "",
        "# Authentication and authorisation apply to every listener alike.",
        "per_listener_settings false",
        "allow_anonymous false",
    ]
    if s.dynsec_plugin is not None:
        lines += [
            "# Users and rules in the dynamic-security plugin's file: a reader may SUBSCRIBE only to its",
            "# own downlink topics (acl_file would grant any subscription). A change needs a restart,",
            "# or `cbcc broker add-reader/remove-reader --live` (cbcc-admin, $CONTROL/dynamic-security).",
            f"plugin {s.dynsec_plugin}",
            f"plugin_opt_config_file {d / 'dynamic-security.json'}",
        ]
    else:
        lines += [f"password_file {d / 'passwd'}", f"acl_file {d / 'acl'}"]
    lines += [
        "",
        "# Persistence: QoS 1 messages and sessions survive a restart. Saved every autosave_interval",
        "# seconds and on a clean shutdown (SIGTERM); see docs/broker.md for what a crash can cost.",
        "persistence true",
        f"persistence_location {persistence_dir}",
        f"autosave_interval {s.autosave_seconds}",
        "",
        "# Queue for an offline or slow client: a day of taps from every reader (docs/broker.md).",
        f"max_queued_messages {s.max_queued}",
        "max_queued_bytes 0",
        "queue_qos0_messages false",
        "# Unacknowledged QoS 1 messages per client (MQTT 3.1.1 clients; an MQTT 5 client's own",
        "# Receive Maximum replaces it). High enough for a gateway that acknowledges in batches.",
        f"max_inflight_messages {s.max_inflight}",
        f"max_packet_size {s.max_packet_size}",
        f"persistent_client_expiration {s.session_expiry}",
        "",
        "# Readers: MQTT over TLS 1.2+ only.",
        f"listener {s.tls_port}" + (f" {s.tls_bind}" if s.tls_bind else ""),
        "protocol mqtt",
        f"cafile {tls.cafile}",
        f"certfile {tls.certfile}",
        f"keyfile {tls.keyfile}",
        "tls_version tlsv1.2",
        *per_listener,
    ]
    if s.local_port is not None:
        lines += [
            "",
            "# The gateway on this host: plain MQTT bound to loopback only (passwords still apply).",
            f"listener {s.local_port} 127.0.0.1",
            "protocol mqtt",
            *per_listener,
        ]
    lines += ["", "log_type error", "log_type warning", "log_type notice", "log_timestamp true"]
    if s.log_dest:
        lines.append(f"log_dest {s.log_dest}")
    return "\n".join(lines) + "\n"


@dataclass
class Roster:
    gateway_users: list[str] = field(default_factory=lambda: ["gateway"])
    readers: list[str] = field(default_factory=list)
    shared_group: str = field(default_factory=new_shared_group)

    def to_json(self) -> bytes:
        doc = {"version": 1, "gateway_users": sorted(self.gateway_users), "readers": sorted(self.readers),
               "shared_group": self.shared_group}  # fmt: skip
        return (json.dumps(doc, indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Roster:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("version") != 1:
            raise BrokerConfigError(_("roster.json: unknown format"))
        group = doc.get("shared_group")  # older rosters: a new random one, written back on change
        group = check_user(group, "shared group") if isinstance(group, str) else new_shared_group()
        return cls(list(doc["gateway_users"]), list(doc["readers"]), group)


@dataclass(frozen=True)
class BrokerFiles:
    """The folder ``cbcc broker config`` writes (and add/remove-reader rewrites)."""

    folder: Path

    @property
    def conf(self) -> Path:
        return self.folder / "mosquitto.conf"

    @property
    def passwd(self) -> Path:
        return self.folder / "passwd"

    @property
    def acl(self) -> Path:
        return self.folder / "acl"

    @property
    def roster(self) -> Path:
        return self.folder / "roster.json"

    @property
    def dynsec(self) -> Path:
        return self.folder / "dynamic-security.json"

    def credentials(self, label: str) -> Path:
        return self.folder / f"credentials-{label}.csv"

    def load_roster(self) -> Roster:
        try:
            return Roster.from_json(self.roster.read_bytes())
        except OSError as exc:
            raise BrokerConfigError(
                _(
                    "cannot read {path}: {reason}",
                    path=self.roster,
                    reason=exc.strerror,
                )
            ) from None

    def load_hashes(self) -> dict[str, str]:
        try:
            return parse_password_file(self.passwd.read_text(encoding="utf-8"))
        except OSError as exc:
            raise BrokerConfigError(
                _(
                    "cannot read {path}: {reason}",
                    path=self.passwd,
                    reason=exc.strerror,
                )
            ) from None

    def load_for_change(self) -> tuple[Roster, dict[str, str]]:
        """The roster and password hashes to change, counting readers the running broker learned
        live (a gateway's registration, ``--live`` from another machine): the dynamic-security
        plugin saves them to ``dynamic-security.json`` but nobody writes them to ``roster.json``,
        so a rewrite from the roster alone would drop them at the next restart."""
        roster, hashes_by_user = self.load_roster(), self.load_hashes()
        known = {*roster.readers, *roster.gateway_users, ADMIN_USER}
        for rid, stored in self._saved_readers().items():
            if rid not in known:
                roster.readers.append(rid)
                hashes_by_user[rid] = stored
        return roster, hashes_by_user

    def _saved_readers(self) -> dict[str, str]:
        """Reader clients in the plugin's saved state (one role ``reader:<id>``) with their ``$7$``
        hash; anything else in that file is left to the roster."""
        try:
            doc = json.loads(self.dynsec.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise BrokerConfigError(_("cannot read {path}: {reason}", path=self.dynsec, reason=exc)) from None
        out: dict[str, str] = {}
        for c in doc.get("clients", []) if isinstance(doc, dict) else []:
            rid, roles = c.get("username"), [r.get("rolename") for r in c.get("roles", [])]
            fields = (c.get("iterations"), c.get("salt"), c.get("password"))
            if isinstance(rid, str) and roles == [f"reader:{rid}"] and all(fields):
                try:
                    out[check_reader_id(rid)] = "$7${}${}${}".format(*fields)
                except BrokerConfigError:
                    continue  # not a reader id: not ours to carry over
        return out

    def _write_security(self, roster: Roster, hashes_by_user: dict[str, str]) -> None:
        replace_file(self.passwd, password_file_text(hashes_by_user).encode())
        replace_file(self.acl, acl_file_text(roster.readers, roster.gateway_users).encode(), 0o644)
        replace_file(self.roster, roster.to_json(), 0o644)
        if self.dynsec.exists() or (self.conf.exists() and "plugin_opt_config_file" in self.conf.read_text()):
            replace_file(self.dynsec, dynsec_json(roster.readers, roster.gateway_users, hashes_by_user,
                                                  roster.shared_group))  # fmt: skip


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def write_broker_folder(
    files: BrokerFiles, settings: BrokerSettings, readers: Sequence[str], gateway_users: Sequence[str]
) -> Path:
    """Write mosquitto.conf, passwd, acl, roster.json and the one-time credentials file (0600).

    Returns the credentials file. Refuses to touch a folder that already holds a configuration.
    """
    readers = [check_reader_id(r) for r in readers]
    gateway_users = [check_user(g, "gateway user") for g in gateway_users]
    if not gateway_users:
        raise BrokerConfigError(_("at least one gateway user is needed"))
    dupes = sorted({u for u in [*readers, *gateway_users] if [*readers, *gateway_users].count(u) > 1})
    if dupes:
        raise BrokerConfigError(_("duplicate usernames: {names}", names=", ".join(dupes)))
    for p in (files.conf, files.passwd, files.acl, files.roster):
        if p.exists():
            raise BrokerConfigError(
                _(
                    "{path} already exists; use add-reader/remove-reader to change a roster",
                    path=p,
                )
            )
    files.folder.mkdir(parents=True, exist_ok=True)
    if ADMIN_USER in readers:
        raise BrokerConfigError(_("{user} is the broker admin's username, not a reader id", user=ADMIN_USER))
    passwords = {u: generate_password() for u in [*gateway_users, *readers]}
    rows = [(u, passwords[u], "gateway") for u in gateway_users] + [
        (r, passwords[r], "reader") for r in readers
    ]
    if settings.dynsec_plugin is not None:
        passwords[ADMIN_USER] = generate_password()
        rows.append((ADMIN_USER, passwords[ADMIN_USER], "admin"))
    cred = files.credentials(_stamp())
    write_new_file(cred, credentials_csv(rows), private=True)
    replace_file(files.conf, mosquitto_conf_text(settings).encode(), 0o644)
    files._write_security(
        Roster(list(gateway_users), list(readers)), {u: hash_password(p) for u, p in passwords.items()}
    )
    return cred


def add_reader(files: BrokerFiles, reader_id: str, password: str | None = None) -> tuple[Path, str]:
    """Add one reader; returns (credentials file, password). ``password``: the one the gateway
    made when it registered the reader (`cbcc gateway reader add`), so the device has one
    password for both; None: a new random one."""
    rid = check_reader_id(reader_id)
    roster = files.load_roster()
    if rid in roster.readers or rid in roster.gateway_users or rid in files.load_hashes():
        raise BrokerConfigError(_("{id} is already in the roster", id=rid))
    roster, hashes_by_user = files.load_for_change()  # may hold rid already: added --live just now
    if password is None:
        password = generate_password()
    elif len(password) < 16:
        raise BrokerConfigError(_("a reader password must have at least 16 characters"))
    cred = files.credentials(f"{rid}-{_stamp()}")
    write_new_file(cred, credentials_csv([(rid, password, "reader")]), private=True)
    if rid not in roster.readers:
        roster.readers.append(rid)
    hashes_by_user[rid] = hash_password(password)
    files._write_security(roster, hashes_by_user)
    return cred, password


def remove_reader(files: BrokerFiles, reader_id: str) -> None:
    roster, hashes_by_user = files.load_for_change()
    if reader_id not in roster.readers:
        raise BrokerConfigError(_("{id} is not a reader in {roster}", id=reader_id, roster=files.roster))
    roster.readers.remove(reader_id)
    hashes_by_user.pop(reader_id, None)
    files._write_security(roster, hashes_by_user)
