"""``cbcc reader provision`` and ``cbcc keys card-keys`` end to end, and the firmware reading the result.

The reader side is checked twice: statically (every ``cfg[...]`` key firmware/device/main.py indexes is
in the written reader.json) and by running the firmware's own cose_key, card_layout and the port's TLS
stack under the MicroPython unix port on the written files.
"""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import json
import stat
from pathlib import Path
from typing import Any

import pytest
import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from support.host import UID, root_key, rsa_key
from support.micropython_runner import ROOT, run_micropython
from typer.testing import CliRunner

from cbcc.card_keys import card_keys_app
from cbcc.reader import reader_app
from provisioning import card_keys
from provisioning import reader_provision as rp
from trustcore import keys, passphrase

MAIN_PY = ROOT / "firmware" / "device" / "main.py"
ASSEMBLY_PY = ROOT / "firmware" / "lib" / "assembly.py"  # main.py hands reader.json to it
RID = "hn-snv-t3-p301"
MAC = bytes(range(1, 33))
MQTT_PW = "Zq3-mqtt-pass_word"
WIFI_PW = "wifi mật khẩu 123"
PASS = "mật khẩu thẻ"

# The composition cli.py will do: `cbcc reader ...` and `cbcc keys card-keys ...`.
app = typer.Typer()
_keys = typer.Typer()
_keys.add_typer(card_keys_app, name="card-keys")
app.add_typer(_keys, name="keys")
app.add_typer(reader_app, name="reader")


@pytest.fixture(autouse=True)
def _no_ambient_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(passphrase.ENV_VAR, raising=False)


def run(*args: str | Path, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def _cert(
    subject: str, *, ca: bool, issuer_key: Any = None, days: int = 3650, extra_pem: bool = False
) -> x509.Certificate:
    key = rsa_key("broker-ca")
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    return builder.sign(key, hashes.SHA256())


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("inputs")
    pw = d / "pw"
    pw.write_text(PASS + "\n", encoding="utf-8")
    (d / "root.cose_key").write_bytes(keys.cose_key_bytes(root_key().public_key()))
    (d / "config.cose_key").write_bytes(keys.cose_key_bytes(rsa_key("config").public_key()))
    (d / "p256.cose_key").write_bytes(keys.cose_key_bytes(keys.generate_p256().public_key()))
    ca = _cert("cbcc broker CA", ca=True)
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "ca.der").write_bytes(ca.public_bytes(serialization.Encoding.DER))
    leaf = _cert("broker.example.vn", ca=False)
    (d / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (d / "bundle.pem").write_bytes((d / "ca.pem").read_bytes() * 2)
    secrets = {"reader_id": RID, "mac_key": MAC.hex(), "mqtt_password": MQTT_PW}
    (d / "secrets.json").write_text(json.dumps(secrets), encoding="utf-8")
    (d / "wifi").write_text(WIFI_PW + "\n", encoding="utf-8")
    masters = card_keys.generate()
    card_keys.write_new(d / "card.keys", masters, PASS.encode(), n=1 << 14)  # fast KDF for tests
    return {"dir": d, "pw": pw, "ca": ca, "masters": masters}


def provision_args(inputs: dict[str, Any], out: Path, **over: str | None) -> list[str | Path]:
    d: Path = inputs["dir"]
    opts: dict[str, str | Path | None] = {
        "--reader-id": RID,
        "--secrets": d / "secrets.json",
        "--broker-host": "mqtt.snv.hanoi.gov.vn",
        "--broker-ca": d / "ca.pem",
        "--root-key": d / "root.cose_key",
        "--config-key": d / "config.cose_key",
        "--card-keys": d / "card.keys",
        "--passphrase-file": inputs["pw"],
        "--board": "esp32-devkitc",
        "--network": "wifi",
        "--ssid": "SNV-IoT",
        "--wifi-password-file": d / "wifi",
        "--out": out,
    }
    for k, v in over.items():
        opts["--" + k.replace("_", "-")] = v
    args: list[str | Path] = ["reader", "provision"]
    for k, v in opts.items():
        if v is not None:
            args += [k, v]
    return args


@pytest.fixture(scope="module")
def wifi_tree(
    inputs: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("trees") / "reader-wifi"
    r = run(
        *provision_args(inputs, out), "--json", "--role", "attendance", "--firmware-version", "cbcc-1.2.3"
    )
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r.stdout
    return out, json.loads(lines[0])


@pytest.fixture(scope="module")
def lan_tree(inputs: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trees") / "reader-lan"
    args = provision_args(
        inputs, out, board="olimex-esp32-poe-iso", network="lan", ssid=None, wifi_password_file=None,
        broker_ca=str(inputs["dir"] / "ca.der"),
    )  # fmt: skip
    r = run(*args)
    assert r.exit_code == 0, r.output
    return out


# ---------------------------------------------------------------- card keys


def test_card_keys_init_show_and_refusals(tmp_path: Path, inputs: dict[str, Any]) -> None:
    path = tmp_path / "card.keys"
    r = run("keys", "card-keys", "init", "--out", path, "--passphrase-file", inputs["pw"])
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc["format"] == "cbcc-card-keys/1" and doc["kdf"]["n"] == card_keys.SCRYPT_N
    assert doc["aead"] == "AES-256-GCM" and "amk" not in path.read_text()
    loaded = card_keys.load(path, lambda: PASS.encode())
    r = run("keys", "card-keys", "show", path, "--passphrase-file", inputs["pw"], "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"key_version": 1, "kcv": loaded.check_values()}
    for secret in (loaded.amk, loaded.read, loaded.uid, loaded.picc):
        assert secret.hex() not in r.stdout
    # never overwritten
    r = run("keys", "card-keys", "init", "--out", path, "--passphrase-file", inputs["pw"])
    assert r.exit_code == 1 and "refusing to overwrite" in r.stderr
    # wrong passphrase: one clean line
    bad = tmp_path / "bad"
    bad.write_text("nope\n")
    r = run("keys", "card-keys", "show", path, "--passphrase-file", bad)
    assert r.exit_code == 1 and "wrong passphrase" in r.stderr and "Traceback" not in r.output


def test_card_keys_header_is_authenticated(inputs: dict[str, Any]) -> None:
    blob = (inputs["dir"] / "card.keys").read_bytes()
    doc = json.loads(blob)
    doc["key_version"] = 2  # relabelled generation
    with pytest.raises(card_keys.CardKeysError, match="wrong passphrase or damaged"):
        card_keys.unseal(json.dumps(doc).encode(), lambda: PASS.encode())
    doc = json.loads(blob)
    doc["kdf"]["n"] = 1 << 10  # weakened KDF is refused before any passphrase is asked for
    with pytest.raises(card_keys.CardKeysError, match="scrypt parameters"):
        card_keys.unseal(json.dumps(doc).encode(), lambda: pytest.fail("asked for a passphrase"))


def test_host_an10922_matches_firmware(inputs: dict[str, Any]) -> None:
    import card_layout  # firmware/lib, on CPython (conftest)

    m: card_keys.CardMasterKeys = inputs["masters"]
    issuer = card_layout.IssuerKeys(m.amk, m.read, m.uid, m.picc)
    assert m.uid_key() == issuer.uid_key()
    assert card_keys.an10922_aes128(m.read, UID + b"VC1CBCCVC") == issuer.read(UID)
    share = m.reader_share()
    assert share.read_master == m.read and share.uid_key == issuer.reader_keys().uid_key


# ---------------------------------------------------------------- the tree


def test_tree_files_modes_and_manifest(wifi_tree: tuple[Path, dict[str, Any]]) -> None:
    out, summary = wifi_tree
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted([*rp.DEVICE_FILES, rp.MANIFEST])
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE((out / "keys").stat().st_mode) == 0o700
    for rel in written:
        assert stat.S_IMODE((out / rel).stat().st_mode) == 0o600, rel
    listed = rp.parse_manifest((out / rp.MANIFEST).read_text())
    assert sorted(listed) == sorted(rp.DEVICE_FILES)
    for rel, digest in listed.items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest
    assert summary["files"] == listed
    assert rp.verify_tree(out) == listed
    assert not list(out.parent.glob(".*tmp"))


def test_summary_has_no_secrets(wifi_tree: tuple[Path, dict[str, Any]], inputs: dict[str, Any]) -> None:
    _, summary = wifi_tree
    text = json.dumps(summary)
    m: card_keys.CardMasterKeys = inputs["masters"]
    for secret in (MAC.hex(), MQTT_PW, WIFI_PW, m.read.hex(), m.uid_key().hex(), m.amk.hex()):
        assert secret not in text
    assert summary["reader_id"] == RID and summary["role"] == "attendance" and summary["flashed"] is False
    assert summary["broker"] == {"host": "mqtt.snv.hanoi.gov.vn", "port": 8883}
    assert summary["root_kid"] == keys.kid_of(root_key().public_key()).hex()


def test_reader_json_content(wifi_tree: tuple[Path, dict[str, Any]], inputs: dict[str, Any]) -> None:
    out, _ = wifi_tree
    cfg = json.loads((out / "reader.json").read_text(encoding="utf-8"))
    m: card_keys.CardMasterKeys = inputs["masters"]
    assert cfg == {
        "reader_id": RID,
        "role": "attendance",
        "board": "esp32-devkitc",
        "network": {"type": "wifi", "ssid": "SNV-IoT", "password": WIFI_PW},
        "broker": {"host": "mqtt.snv.hanoi.gov.vn", "port": 8883},
        "password": MQTT_PW,
        "mac_key": MAC.hex(),
        "reader_keys": {"read_master": m.read.hex(), "uid_key": m.uid_key().hex()},
        "firmware": "cbcc-1.2.3",
        "size_hint": 512,
    }
    # only the reader's share: no AMK, PICC or UID master anywhere in the tree
    blob = b"".join((out / p).read_bytes() for p in rp.DEVICE_FILES)
    for master in (m.amk, m.picc, m.uid):
        assert master.hex().encode() not in blob and master not in blob
    assert (out / "keys" / "broker-ca.der").read_bytes() == inputs["ca"].public_bytes(
        serialization.Encoding.DER
    )
    assert (out / "keys" / "root.cose_key").read_bytes() == (inputs["dir"] / "root.cose_key").read_bytes()
    pins = json.loads((out / "pinmap.json").read_text())
    full = json.loads((ROOT / "hardware" / "pinmap.json").read_text())
    assert pins == {"schema": "cbcc-pinmap/1", "boards": {"esp32-devkitc": full["boards"]["esp32-devkitc"]}}
    assert "LOCK_RELAY = 32" in (out / "board_pins.py").read_text()


def test_lan_tree(lan_tree: Path, inputs: dict[str, Any]) -> None:
    cfg = json.loads((lan_tree / "reader.json").read_text())
    assert cfg["board"] == "olimex-esp32-poe-iso" and cfg["role"] == "door"
    assert cfg["network"] == {"type": "lan", "mdc": 23, "mdio": 18, "phy_addr": 0, "power": 12}
    assert (lan_tree / "keys" / "broker-ca.der").read_bytes() == (inputs["dir"] / "ca.der").read_bytes()
    assert "olimex-esp32-poe-iso" in json.loads((lan_tree / "pinmap.json").read_text())["boards"]


# ---------------------------------------------------------------- what main.py reads


def _aliases(tree: ast.AST) -> dict[str, str]:
    """``cfg`` and the names bound to ``cfg[...]`` (``n = cfg["network"]``, ``b = cfg["broker"]``)."""
    alias: dict[str, str] = {"cfg": ""}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Subscript) and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "cfg" and isinstance(node.value.slice, ast.Constant)
        ):  # fmt: skip
            alias[node.targets[0].id] = str(node.value.slice.value)
    return alias


def _keys_in(
    nodes: list[ast.stmt], alias: dict[str, str]
) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    req: set[tuple[str, str]] = set()
    opt: set[tuple[str, str]] = set()
    for stmt in nodes:
        for node in ast.walk(stmt):
            if (
                isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
                and node.value.id in alias and isinstance(node.slice, ast.Constant)
            ):  # fmt: skip
                req.add((alias[node.value.id], str(node.slice.value)))
            if (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get" and isinstance(node.func.value, ast.Name)
                and node.func.value.id in alias and node.args and isinstance(node.args[0], ast.Constant)
            ):  # fmt: skip
                opt.add((alias[node.func.value.id], str(node.args[0].value)))
    return req, opt


def _assembly_reads() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """What assembly.build_reader reads of the configuration main.py hands it (reader.json over
    assembly.DEFAULTS): keys it indexes that DEFAULTS does not supply are required of reader.json;
    the rest are optional."""
    tree = ast.parse(ASSEMBLY_PY.read_text(encoding="utf-8"))
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "build_reader")
    req, opt = _keys_in(fn.body, _aliases(fn))
    defaults = next(
        n.value for n in tree.body
        if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name) and n.targets[0].id == "DEFAULTS"
    )  # fmt: skip
    assert isinstance(defaults, ast.Dict)
    supplied: set[tuple[str, str]] = set()
    for k, v in zip(defaults.keys, defaults.values, strict=True):
        assert isinstance(k, ast.Constant)
        supplied.add(("", str(k.value)))
        if isinstance(v, ast.Dict):
            supplied |= {(str(k.value), str(s.value)) for s in v.keys if isinstance(s, ast.Constant)}
    return req - supplied, opt | (req & supplied)


def _main_py_reads() -> dict[str, Any]:
    """Parse main.py and the assembly it hands reader.json to: the cfg keys indexed (required)
    or .get() / defaulted (optional), per sub-object.

    Names bound to ``cfg[...]`` (``n = cfg["network"]``, ``k = cfg["reader_keys"]``, ``b = ...``) are
    followed one level down; inside ``_network`` the keys indexed in the ``lan`` branch are required
    for LAN readers only, the rest for Wi-Fi readers only.
    """
    tree = ast.parse(MAIN_PY.read_text(encoding="utf-8"))
    alias = _aliases(tree)
    net_fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_network")
    lan_if = next(s for s in net_fn.body if isinstance(s, ast.If))
    lan_req, lan_opt = _keys_in(lan_if.body, alias)
    after = net_fn.body[net_fn.body.index(lan_if) + 1 :]
    wifi_req, wifi_opt = _keys_in(after, alias)
    before = net_fn.body[: net_fn.body.index(lan_if)]
    others = [n for n in tree.body if n is not net_fn]
    all_req, all_opt = _keys_in(others + before, alias)
    _, test_opt = _keys_in([lan_if], alias)  # the branch's own test: n.get("type")
    asm_req, asm_opt = _assembly_reads()
    return {
        "req": all_req | asm_req,
        "opt": all_opt | test_opt | asm_opt,
        "lan": (lan_req, lan_opt),
        "wifi": (wifi_req, wifi_opt),
    }


def _lookup(cfg: dict[str, Any], path: str, key: str) -> tuple[bool, Any]:
    obj = cfg if not path else cfg.get(path, {})
    return key in obj, obj.get(key)


def test_main_py_parse_finds_what_it_should() -> None:
    reads = _main_py_reads()
    assert {("", "board"), ("", "network"), ("", "reader_keys"), ("", "mac_key"), ("", "password")} <= reads[
        "req"
    ]
    assert {("reader_keys", "read_master"), ("reader_keys", "uid_key"), ("broker", "host")} <= reads["req"]
    assert {("network", "ssid"), ("network", "password")} <= reads["wifi"][0]
    assert ("", "size_hint") in reads["opt"] and ("broker", "port") in reads["opt"]


@pytest.mark.parametrize("which", ["wifi", "lan"])
def test_reader_json_has_every_key_main_py_indexes(
    which: str, wifi_tree: tuple[Path, dict[str, Any]], lan_tree: Path
) -> None:
    out = wifi_tree[0] if which == "wifi" else lan_tree
    cfg = json.loads((out / "reader.json").read_text(encoding="utf-8"))
    reads = _main_py_reads()
    net_req, net_opt = reads[which]
    for path, key in reads["req"] | net_req:
        present, _ = _lookup(cfg, path, key)
        assert present, f"main.py indexes cfg[{path!r}][{key!r}] but reader.json lacks it"
    # "exactly": nothing main.py never reads
    known = reads["req"] | reads["opt"] | net_req | net_opt
    for key, value in cfg.items():
        assert ("", key) in known, f"reader.json key {key!r} is not read by main.py"
        if isinstance(value, dict):
            for sub in value:
                assert (key, sub) in known, f"reader.json {key}.{sub} is not read by main.py"
    assert cfg["network"].get("type", "wifi") == which


# ---------------------------------------------------------------- refusals


def _bad_secrets(d: Path, name: str, doc: Any) -> str:
    p = d / name
    p.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return str(p)


REFUSALS: list[tuple[str, dict[str, str | None], str]] = [
    ("reader id shape", {"reader_id": "HN_SNV"}, "reader id 'HN_SNV' is not valid"),
    ("other reader's secrets", {"reader_id": "hn-snv-t3-p302"}, "is for reader hn-snv-t3-p301"),
    ("short MAC key", {"secrets": "short-mac"}, "mac_key must be 32 bytes"),
    ("no password", {"secrets": "no-pw"}, "mqtt_password must be a non-empty string"),
    ("not JSON", {"secrets": "garbage"}, "not a JSON secrets file"),
    ("leaf instead of CA", {"broker_ca": "leaf.pem"}, "is not a CA certificate"),
    ("CA bundle", {"broker_ca": "bundle.pem"}, "holds 2 certificates"),
    ("CA not a cert", {"broker_ca": "root.cose_key"}, "is not an X.509 certificate"),
    ("root key garbage", {"root_key": "wifi"}, "root key is not a usable COSE_Key"),
    ("config key P-256", {"config_key": "p256.cose_key"}, "must be an RSA key"),
    ("same root and config", {"config_key": "root.cose_key"}, "are the same key"),
    ("unknown board", {"board": "esp32-s3-box"}, "Invalid value for '--board'"),
    ("board/network mismatch", {"network": "lan", "ssid": None, "wifi_password_file": None},
     "board esp32-devkitc uses --network wifi"),
    ("wifi without password", {"wifi_password_file": None}, "needs --wifi-password-file"),
    ("wifi without ssid", {"ssid": None}, "--network wifi needs --ssid"),
    ("short wifi password", {"wifi_password_file": "short-wifi"}, "Wi-Fi password must be 8-63"),
    ("bad broker host", {"broker_host": "mqtt_host..vn"}, "is not a host name or IP address"),
    ("wrong card-keys passphrase", {"passphrase_file": "bad-pw"}, "wrong passphrase"),
    ("card keys not a file", {"card_keys": "secrets.json"}, "is not a cbcc-card-keys/1 file"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "over", "message"), REFUSALS, ids=[c[0] for c in REFUSALS])
def test_refusals(
    case: str, over: dict[str, str | None], message: str, inputs: dict[str, Any], tmp_path: Path
) -> None:
    d: Path = inputs["dir"]
    extra = {
        "short-mac": {"reader_id": RID, "mac_key": "00ff" * 8, "mqtt_password": "x"},
        "no-pw": {"reader_id": RID, "mac_key": MAC.hex(), "mqtt_password": ""},
        "garbage": "{not json",
    }
    resolved: dict[str, str | None] = {}
    for k, v in over.items():
        if v in extra:
            resolved[k] = _bad_secrets(tmp_path, v, extra[v])
        elif v == "short-wifi":
            (tmp_path / "w").write_text("1234567\n")
            resolved[k] = str(tmp_path / "w")
        elif v == "bad-pw":
            (tmp_path / "p").write_text("sai mật khẩu\n")
            resolved[k] = str(tmp_path / "p")
        elif v is not None and (d / v).exists():
            resolved[k] = str(d / v)
        else:
            resolved[k] = v
    out = tmp_path / "tree"
    r = run(*provision_args(inputs, out, **resolved))
    if case == "unknown board":
        assert r.exit_code == 2 and message in r.output  # typer's own usage error
    else:
        assert r.exit_code == 1, r.output
        err = r.stderr.strip()
        assert err.startswith(("lỗi:", "error:")) and message in err, err  # Vietnamese by default
        assert len(err.splitlines()) == 1, err
        assert "Traceback" not in r.output
    assert not out.exists()
    assert not list(tmp_path.glob(".*tmp"))


def test_refuses_to_overwrite(inputs: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "tree"
    out.mkdir()
    (out / "reader.json").write_text("{}")
    r = run(*provision_args(inputs, out))
    assert r.exit_code == 1 and "is not empty; refusing to overwrite" in r.stderr
    assert (out / "reader.json").read_text() == "{}"
    # an existing empty directory is fine (and ends up 0700)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(*provision_args(inputs, empty)).exit_code == 0
    assert stat.S_IMODE(empty.stat().st_mode) == 0o700


def test_expired_ca_refused(tmp_path: Path) -> None:
    old = _cert("old CA", ca=True, days=1)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    with pytest.raises(rp.ProvisioningError, match="expired"):
        rp.load_broker_ca(old.public_bytes(serialization.Encoding.PEM), "old.pem", now=later)
    info = rp.load_broker_ca(old.public_bytes(serialization.Encoding.DER), "old.der")
    assert info.warnings and "within a year" in info.warnings[0]


def test_flash_without_mpremote_prints_commands(inputs: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "tree"
    r = run(*provision_args(inputs, out), "--flash", "/dev/ttyUSB0", env={"PATH": str(tmp_path)})
    assert r.exit_code == 0, r.output
    assert "mpremote is not installed" in r.stderr
    for rel in rp.DEVICE_FILES:
        assert f"mpremote connect /dev/ttyUSB0 fs cp {out / rel} :/{rel}" in r.stdout
    assert "hashlib" in r.stdout


# ---------------------------------------------------------------- the firmware reads it


FIRMWARE_CHECK = """
import sys, json, binascii, ssl, hashlib
sys.path.insert(0, '.')
import cose_key, card_layout, board_pins

def read(p):
    with open(p, 'rb') as f:
        return f.read()

with open('reader.json') as f:
    cfg = json.load(f)
h = binascii.unhexlify
root = cose_key.load(read('keys/root.cose_key'))
config_key = cose_key.load(read('keys/config.cose_key'))
k = cfg['reader_keys']
rk = card_layout.ReaderKeys(h(k['read_master']), h(k['uid_key']))
issuer = card_layout.IssuerKeys(h('%(amk)s'), h('%(read)s'), h('%(uid)s'), h('%(picc)s'))
assert rk.uid_key == issuer.reader_keys().uid_key
assert rk.read_key(h('%(card_uid)s')) == issuer.read(h('%(card_uid)s'))
assert len(h(cfg['mac_key'])) == 32
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.verify_mode = ssl.CERT_REQUIRED
ctx.load_verify_locations(cadata=read('keys/broker-ca.der'))
with open('pinmap.json') as f:
    spec = json.load(f)['boards'][cfg['board']]
assert spec['signals']['lock_relay']['gpio'] == board_pins.LOCK_RELAY
assert board_pins.BOARD == cfg['board']
print(json.dumps({'root_kid': binascii.hexlify(root.kid).decode(),
                  'config_kid': binascii.hexlify(config_key.kid).decode(), 'rid': cfg['reader_id']}))
"""


@pytest.mark.micropython
@pytest.mark.parametrize("which", ["wifi", "lan"])
def test_firmware_accepts_what_provisioning_wrote(
    which: str, wifi_tree: tuple[Path, dict[str, Any]], lan_tree: Path, inputs: dict[str, Any]
) -> None:
    out = wifi_tree[0] if which == "wifi" else lan_tree
    m: card_keys.CardMasterKeys = inputs["masters"]
    code = FIRMWARE_CHECK % {
        "amk": m.amk.hex(), "read": m.read.hex(), "uid": m.uid.hex(), "picc": m.picc.hex(),
        "card_uid": UID.hex(),
    }  # fmt: skip
    proc = run_micropython(["-c", code], cwd=out, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {
        "root_kid": keys.kid_of(root_key().public_key()).hex(),
        "config_kid": keys.kid_of(rsa_key("config").public_key()).hex(),
        "rid": RID,
    }


@pytest.mark.micropython
def test_firmware_refuses_a_leaf_der_as_garbage(tmp_path: Path) -> None:
    """Control for the check above: the port's TLS stack does reject bytes that are not a certificate."""
    (tmp_path / "x.der").write_bytes(b"\x30\x03\x02\x01\x00")
    code = (
        "import ssl\nctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n"
        "try:\n ctx.load_verify_locations(cadata=open('x.der','rb').read())\n print('accepted')\n"
        "except ValueError:\n print('refused')\n"
    )
    proc = run_micropython(["-c", code], cwd=tmp_path, timeout=60)
    assert proc.stdout.strip() == "refused", proc.stdout + proc.stderr
