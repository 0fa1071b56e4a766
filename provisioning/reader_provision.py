"""Everything one reader needs on its flash, checked and written as a tree that mirrors the device.

``firmware/device/main.py`` reads ``/reader.json`` and ``/keys/*``; ``board_esp32.EspBoard`` reads
``/pinmap.json`` (``["boards"][board]``); ``boot.py`` imports ``board_pins`` (``LOCK_RELAY``). The tree
written here holds exactly those files, plus a host-side ``MANIFEST`` (``sha256sum -c`` format) that is
not copied to the reader::

    DIR/reader.json            0600  reader id, role, board, network, broker, MQTT password, MAC key,
                                     reader card keys (read master, UID key), firmware, size hint
    DIR/pinmap.json            0600  hardware/pinmap.json reduced to this reader's board
    DIR/board_pins.py          0600  BOARD and LOCK_RELAY for boot.py
    DIR/keys/root.cose_key     0600  pinned root public key (COSE_Key)
    DIR/keys/config.cose_key   0600  pinned configuration public key (COSE_Key)
    DIR/keys/broker-ca.der     0600  the CA that signed the broker's certificate (DER)
    DIR/MANIFEST               0600  SHA-256 of every file above

Everything is validated before anything is written, and the tree is built in a temporary sibling
directory and renamed into place, so a refused or failed run leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from messages import _
from provisioning.card_keys import ReaderShare
from provisioning.errors import ProvisioningError
from trustcore import ids, keys
from trustcore.files import fsync_dir

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PINMAP = ROOT / "hardware" / "pinmap.json"
PINMAP_SCHEMA = "cbcc-pinmap/1"

ROLES = ("door", "attendance", "both")
MAC_KEY_LEN = 32
MAX_PASSWORD = 256
SIZE_HINT_MAX = 1024
DEFAULT_SIZE_HINT = 512
DEFAULT_PORT = 8883

# Which network each supported board uses (hardware/pinmap.md): the DevKitC has no Ethernet PHY and
# the PoE board keeps Wi-Fi off (the GPIO36/39 erratum bites only with Wi-Fi power save).
BOARD_NETWORK = {"esp32-devkitc": "wifi", "olimex-esp32-poe-iso": "lan"}

READER_JSON = "reader.json"
PINMAP_JSON = "pinmap.json"
BOARD_PINS = "board_pins.py"
ROOT_KEY = "keys/root.cose_key"
CONFIG_KEY = "keys/config.cose_key"
BROKER_CA = "keys/broker-ca.der"
MANIFEST = "MANIFEST"
DEVICE_FILES = (READER_JSON, PINMAP_JSON, BOARD_PINS, ROOT_KEY, CONFIG_KEY, BROKER_CA)

_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


# ---------------------------------------------------------------- checks


def check_reader_id(reader_id: str) -> str:
    if not ids.is_reader_id(reader_id):
        raise ProvisioningError(
            _(
                "reader id {id!r} is not valid: 1-63 lowercase letters, digits or '-', starting with "
                "a letter or digit (it is also the MQTT username and a topic level)",
                id=reader_id,
            )
        )
    return reader_id


@dataclass(frozen=True)
class ReaderSecrets:
    """What ``cbcc gateway reader add --secrets-out`` shows once: the MAC key and MQTT password."""

    reader_id: str
    mac_key: bytes
    mqtt_password: str


def parse_secrets(data: bytes, source: str) -> ReaderSecrets:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ProvisioningError(_("{source}: not a JSON secrets file", source=source)) from None
    if not isinstance(doc, dict):
        raise ProvisioningError(_("{source}: not a JSON object", source=source))
    missing = [k for k in ("reader_id", "mac_key", "mqtt_password") if k not in doc]
    if missing:
        raise ProvisioningError(_("{source}: missing {fields}", source=source, fields=", ".join(missing)))
    rid, mac_hex, password = doc["reader_id"], doc["mac_key"], doc["mqtt_password"]
    if not isinstance(rid, str):
        raise ProvisioningError(_("{source}: reader_id must be a string", source=source))
    check_reader_id(rid)
    if not isinstance(mac_hex, str) or not re.fullmatch(r"[0-9a-fA-F]*", mac_hex):
        raise ProvisioningError(_("{source}: mac_key must be a hex string", source=source))
    mac = bytes.fromhex(mac_hex) if len(mac_hex) % 2 == 0 else b""
    if len(mac) != MAC_KEY_LEN:
        raise ProvisioningError(
            _(
                "{source}: mac_key must be {n} bytes (64 hex digits), not {digits} digits",
                source=source,
                n=MAC_KEY_LEN,
                digits=len(mac_hex),
            )
        )
    if mac == bytes(MAC_KEY_LEN):
        raise ProvisioningError(_("{source}: mac_key is all zeros", source=source))
    if not isinstance(password, str) or not password:
        raise ProvisioningError(_("{source}: mqtt_password must be a non-empty string", source=source))
    if len(password) > MAX_PASSWORD or any(ord(c) < 0x20 or ord(c) == 0x7F for c in password):
        raise ProvisioningError(
            _(
                "{source}: mqtt_password must be at most {n} printable characters",
                source=source,
                n=MAX_PASSWORD,
            )
        )
    return ReaderSecrets(rid, mac, password)


def check_broker_host(host: str) -> str:
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > 253 or not all(_HOST_LABEL.match(label) for label in name.split(".")):
        raise ProvisioningError(_("broker host {host!r} is not a host name or IP address", host=host))
    return host


@dataclass(frozen=True)
class CaInfo:
    der: bytes
    subject: str
    not_after: str
    warnings: tuple[str, ...] = ()


def load_broker_ca(data: bytes, source: str, *, now: dt.datetime | None = None) -> CaInfo:
    """One CA certificate (PEM or DER) → DER. Refuses leaf certificates, bundles and expired CAs."""
    pem_count = data.count(b"-----BEGIN CERTIFICATE-----")
    try:
        if pem_count > 1:
            raise ProvisioningError(
                _(
                    "{source} holds {n} certificates: give the one CA certificate that signed the "
                    "broker's certificate (the reader pins exactly one)",
                    source=source,
                    n=pem_count,
                )
            )
        if pem_count == 1:
            cert = x509.load_pem_x509_certificate(data)
        elif data.lstrip().startswith(b"-----BEGIN"):
            raise ProvisioningError(_("{source} is PEM but not a certificate", source=source))
        else:
            cert = x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise ProvisioningError(
            _("{source} is not an X.509 certificate (PEM or DER): {reason}", source=source, reason=exc)
        ) from None
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    except ValueError as exc:
        raise ProvisioningError(
            _("{source}: malformed certificate extensions: {reason}", source=source, reason=exc)
        ) from None
    if bc is None or not bc.ca:
        raise ProvisioningError(
            _(
                "{source} is not a CA certificate (no basicConstraints CA:TRUE): give the CA that signed "
                "the broker's certificate, not the broker's own certificate",
                source=source,
            )
        )
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not ku.key_cert_sign:
            raise ProvisioningError(
                _("{source}: the CA's keyUsage does not allow certificate signing", source=source)
            )
    except x509.ExtensionNotFound:
        pass
    now = now or dt.datetime.now(dt.UTC)
    if cert.not_valid_after_utc <= now:
        raise ProvisioningError(
            _(
                "{source}: the CA certificate expired on {date}",
                source=source,
                date=cert.not_valid_after_utc.date(),
            )
        )
    if cert.not_valid_before_utc > now:
        raise ProvisioningError(
            _(
                "{source}: the CA certificate is not valid before {date}",
                source=source,
                date=cert.not_valid_before_utc.date(),
            )
        )
    warnings: list[str] = []
    if cert.not_valid_after_utc - now < dt.timedelta(days=365):
        warnings.append(
            _("the broker CA expires on {date}, within a year", date=cert.not_valid_after_utc.date())
        )
    der = cert.public_bytes(serialization.Encoding.DER)
    return CaInfo(der, cert.subject.rfc4514_string(), cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  tuple(warnings))  # fmt: skip


def check_cose_key(data: bytes, source: str, what: str) -> bytes:
    """A COSE_Key the firmware accepts, and RSA (readers verify RS256 with root and config keys)."""
    try:
        public = keys.load_cose_key(data)
    except keys.KeyFormatError as exc:
        raise ProvisioningError(
            _("{source}: {what} is not a usable COSE_Key: {reason}", source=source, what=what, reason=exc)
        ) from None
    if not isinstance(public, rsa.RSAPublicKey):
        raise ProvisioningError(
            _("{source}: the {what} must be an RSA key (readers verify RS256)", source=source, what=what)
        )
    return keys.kid_of(public)


def load_pinmap(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProvisioningError(
            _("cannot read pin map {path}: {reason}", path=path, reason=exc.strerror)
        ) from None
    except json.JSONDecodeError as exc:
        raise ProvisioningError(_("{path}: not JSON: {reason}", path=path, reason=exc)) from None
    if (
        not isinstance(doc, dict)
        or doc.get("schema") != PINMAP_SCHEMA
        or not isinstance(doc.get("boards"), dict)
    ):
        raise ProvisioningError(_("{path} is not a {schema} pin map", path=path, schema=PINMAP_SCHEMA))
    return doc


def board_spec(pinmap: dict[str, Any], board: str) -> dict[str, Any]:
    boards: dict[str, Any] = pinmap["boards"]
    if board not in boards or board not in BOARD_NETWORK:
        known = ", ".join(sorted(set(boards) & set(BOARD_NETWORK)))
        raise ProvisioningError(
            _("unknown board {board!r}; supported boards: {known}", board=board, known=known)
        )
    spec = boards[board]
    relay = spec.get("signals", {}).get("lock_relay", {}).get("gpio")
    if not isinstance(relay, int) or isinstance(relay, bool):
        raise ProvisioningError(_("pin map: board {board} has no native GPIO for lock_relay", board=board))
    return dict(spec)


def network_config(board: str, spec: dict[str, Any], network: str, ssid: str | None,
                   wifi_password: str | None) -> dict[str, Any]:  # fmt: skip
    """The ``network`` object main.py's ``_network`` reads."""
    wanted = BOARD_NETWORK[board]
    if network != wanted:
        raise ProvisioningError(
            _(
                "board {board} uses --network {wanted}, not {network}",
                board=board,
                wanted=wanted,
                network=network,
            )
        )
    if network == "wifi":
        if not ssid:
            raise ProvisioningError(_("--network wifi needs --ssid"))
        if len(ssid.encode("utf-8")) > 32:
            raise ProvisioningError(_("--ssid is longer than 32 bytes"))
        if wifi_password is None:
            raise ProvisioningError(
                _("--network wifi needs --wifi-password-file (open networks are not supported)")
            )
        n = len(wifi_password)
        if not (8 <= n <= 63 or (n == 64 and re.fullmatch(r"[0-9a-fA-F]{64}", wifi_password))):
            raise ProvisioningError(
                _("the Wi-Fi password must be 8-63 characters (WPA2/WPA3 passphrase) or 64 hex digits")
            )
        return {"type": "wifi", "ssid": ssid, "password": wifi_password}
    if ssid is not None or wifi_password is not None:
        raise ProvisioningError(_("--ssid and --wifi-password-file apply to --network wifi only"))
    eth = spec.get("network", {})
    if eth.get("type") != "ethernet":
        raise ProvisioningError(_("pin map: board {board} has no Ethernet description", board=board))
    out: dict[str, Any] = {"type": "lan"}
    for key in ("mdc", "mdio", "phy_addr", "power"):
        if key in eth:
            out[key] = eth[key]
    return out


def read_wifi_password(path: Path) -> str:
    try:
        raw = path.read_bytes().split(b"\n", 1)[0].removesuffix(b"\r")
        return raw.decode("utf-8")
    except OSError as exc:
        raise ProvisioningError(
            _("cannot read Wi-Fi password file {path}: {reason}", path=path, reason=exc.strerror)
        ) from None
    except UnicodeDecodeError:
        raise ProvisioningError(_("{path}: the Wi-Fi password is not UTF-8", path=path)) from None


# ---------------------------------------------------------------- the tree


@dataclass(frozen=True)
class ReaderImage:
    """Validated content of one reader's tree (relative path → bytes) and a secret-free summary."""

    files: dict[str, bytes]
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def reader_json(
    *,
    reader_id: str,
    role: str,
    board: str,
    network: dict[str, Any],
    broker: dict[str, Any],
    secrets: ReaderSecrets,
    share: ReaderShare,
    firmware: str,
    size_hint: int,
) -> dict[str, Any]:
    """Exactly the keys ``firmware/device/main.py`` reads."""
    return {
        "reader_id": reader_id,
        "role": role,
        "board": board,
        "network": network,
        "broker": broker,
        "password": secrets.mqtt_password,
        "mac_key": secrets.mac_key.hex(),
        "reader_keys": {"read_master": share.read_master.hex(), "uid_key": share.uid_key.hex()},
        "firmware": firmware,
        "size_hint": size_hint,
    }


def board_pins_py(board: str, relay_gpio: int) -> bytes:
    return (
        "# Written by `cbcc reader provision` from hardware/pinmap.json for the reader's board; read by\n"
        "# boot.py before anything else.\n"
        f"BOARD = {board!r}\n"
        f"LOCK_RELAY = {relay_gpio}\n"
    ).encode("ascii")


def build_image(*, reader_id: str, secrets: ReaderSecrets, broker_host: str, broker_port: int,
                server_hostname: str | None, ca: CaInfo, root_cose: bytes, config_cose: bytes,
                share: ReaderShare, pinmap: dict[str, Any], board: str, network: dict[str, Any],
                role: str, firmware: str, size_hint: int) -> ReaderImage:  # fmt: skip
    check_reader_id(reader_id)
    if secrets.reader_id != reader_id:
        raise ProvisioningError(
            _("the secrets file is for reader {theirs}, not {ours}", theirs=secrets.reader_id, ours=reader_id)
        )
    if role not in ROLES:
        raise ProvisioningError(_("role must be one of {roles}", roles=", ".join(ROLES)))
    if not 1 <= broker_port <= 65535:
        raise ProvisioningError(_("--broker-port must be 1..65535"))
    if not 0 <= size_hint <= SIZE_HINT_MAX:
        raise ProvisioningError(_("size hint must be 0..{max}", max=SIZE_HINT_MAX))
    if len(share.read_master) != 16 or len(share.uid_key) != 16:
        raise ProvisioningError(_("reader card keys must be 16 bytes each"))
    check_broker_host(broker_host)
    spec = board_spec(pinmap, board)
    broker: dict[str, Any] = {"host": broker_host, "port": broker_port}
    if server_hostname is not None:
        check_broker_host(server_hostname)
        broker["server_hostname"] = server_hostname
    cfg = reader_json(reader_id=reader_id, role=role, board=board, network=network, broker=broker,
                      secrets=secrets, share=share, firmware=firmware, size_hint=size_hint)  # fmt: skip
    reduced = {"schema": pinmap["schema"], "boards": {board: spec}}
    files = {
        READER_JSON: (json.dumps(cfg, ensure_ascii=False, indent=1) + "\n").encode("utf-8"),
        PINMAP_JSON: (json.dumps(reduced, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8"),
        BOARD_PINS: board_pins_py(board, spec["signals"]["lock_relay"]["gpio"]),
        ROOT_KEY: root_cose,
        CONFIG_KEY: config_cose,
        BROKER_CA: ca.der,
    }
    summary: dict[str, Any] = {
        "reader_id": reader_id,
        "role": role,
        "board": board,
        "network": network["type"],
        "broker": {k: v for k, v in broker.items()},
        "firmware": firmware,
        "size_hint": size_hint,
        "broker_ca": {"subject": ca.subject, "not_after": ca.not_after},
    }
    return ReaderImage(files, summary, ca.warnings)


def manifest_text(files: dict[str, bytes]) -> str:
    """``sha256sum -c`` format: ``<hex>  <path>`` per line, sorted by path."""
    return "".join(f"{hashlib.sha256(files[p]).hexdigest()}  {p}\n" for p in sorted(files))


def parse_manifest(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        digest, sep, path = line.partition("  ")
        if not sep or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ProvisioningError(_("malformed MANIFEST line: {line!r}", line=line))
        out[path] = digest
    return out


def check_out_dir(out: Path) -> None:
    """The output directory must not exist yet, or be empty: nothing is ever overwritten."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ProvisioningError(_("{out} exists and is not a directory; refusing to overwrite it", out=out))
    if out.is_dir() and any(out.iterdir()):
        raise ProvisioningError(_("{out} is not empty; refusing to overwrite a reader's files", out=out))
    if out.parent.exists() and not out.parent.is_dir():
        raise ProvisioningError(_("{path} is not a directory", path=out.parent))


def write_tree(out: Path, image: ReaderImage) -> dict[str, str]:
    """Write the tree (directory 0700, files 0600) via a temporary sibling and one rename."""
    check_out_dir(out)
    files = dict(image.files)
    files_with_manifest = dict(files, **{MANIFEST: manifest_text(files).encode("ascii")})
    out.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # every input was checked already
    tmp = out.parent / f".{out.name}.{os.getpid()}.tmp"
    try:
        tmp.mkdir(mode=0o700)
        os.chmod(tmp, 0o700)  # mkdir's mode is filtered by the umask
        for rel, data in files_with_manifest.items():
            target = tmp / rel
            if not target.parent.exists():
                target.parent.mkdir(mode=0o700)
                os.chmod(target.parent, 0o700)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        if out.is_dir():
            out.rmdir()  # empty (checked above)
        os.rename(tmp, out)
        fsync_dir(out.parent)  # the rename itself durable, like trustcore.files.write_atomic
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ProvisioningError(_("cannot write {path}: {reason}", path=out, reason=exc.strerror)) from None
    return {p: hashlib.sha256(d).hexdigest() for p, d in sorted(files.items())}


def verify_tree(out: Path) -> dict[str, str]:
    """Recompute every hash in ``out/MANIFEST``; raises on any mismatch or missing file."""
    listed = parse_manifest((out / MANIFEST).read_text(encoding="ascii"))
    for rel, digest in listed.items():
        try:
            actual = hashlib.sha256((out / rel).read_bytes()).hexdigest()
        except OSError as exc:
            raise ProvisioningError(_("{path}: {reason}", path=out / rel, reason=exc.strerror)) from None
        if actual != digest:
            raise ProvisioningError(_("{path} does not match MANIFEST", path=out / rel))
    return listed


# ---------------------------------------------------------------- writing to a reader (mpremote)

_DEVICE_HASH_SNIPPET = (
    "import hashlib,binascii\n"
    "for p in {paths!r}:\n"
    " h=hashlib.sha256()\n"
    " f=open(p,'rb')\n"
    " while True:\n"
    "  b=f.read(512)\n"
    "  if not b: break\n"
    "  h.update(b)\n"
    " f.close()\n"
    " print(binascii.hexlify(h.digest()).decode(),p)\n"
)


def mpremote_commands(out: Path, port: str) -> list[list[str]]:
    """The mpremote invocations that copy the tree to a reader and print the hashes it stored."""
    base = ["mpremote", "connect", port]
    cmds: list[list[str]] = [[*base, "exec", "import os\ntry:\n os.mkdir('/keys')\nexcept OSError:\n pass"]]
    for rel in DEVICE_FILES:
        cmds.append([*base, "fs", "cp", str(out / rel), ":/" + rel])
    cmds.append([*base, "exec", device_hash_snippet()])
    return cmds


def device_hash_snippet() -> str:
    return _DEVICE_HASH_SNIPPET.format(paths=tuple("/" + p for p in DEVICE_FILES))


def parse_device_hashes(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(" ", 1)
        if len(parts) == 2 and re.fullmatch(r"[0-9a-f]{64}", parts[0]):
            out[parts[1].removeprefix("/")] = parts[0]
    return out
