"""Operational faults a new operator meets in the first hour (issue 16): each is one or two lines
naming what failed and what fixes it, no traceback without --debug, and nothing half-written.
These run the installed ``cbcc`` entry point (signals, exit codes and stderr as an operator sees
them)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

CBCC = str(Path(sys.executable).parent / "cbcc")


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CBCC_")}
    env.update(
        CBCC_HOME=str(tmp / "home"), CBCC_PASSPHRASE="first hour passphrase", TMPDIR=str(tmp), LANG="C.UTF-8"
    )
    env.pop("CBCC_LANG", None)
    env.update(extra)
    return env


def run(tmp: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CBCC, *args],
        env=_env(tmp, **extra),
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _short(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr
    assert 1 <= len(proc.stderr.strip().splitlines()) <= 2, proc.stderr


def test_a_failed_gateway_init_leaves_nothing_behind(tmp_path: Path) -> None:
    proc = run(tmp_path, "gateway", "init", CBCC_DATABASE__URL="postgresql://nobody@127.0.0.1:1/none")
    assert proc.returncode == 1
    _short(proc)
    assert "CBCC_DATABASE__URL" in proc.stderr
    home = tmp_path / "home"
    left = [str(p) for p in home.rglob("*")] if home.exists() else []
    assert left == [], f"a failed init left {left}"  # no orphan master key, signing key or CA


def test_gateway_init_puts_everything_in_the_data_folder_with_private_modes(tmp_path: Path) -> None:
    proc = run(tmp_path, "gateway", "init")
    assert proc.returncode == 0, proc.stderr
    data = tmp_path / "home" / "gateway"
    assert (data / "gateway.db").is_file()  # the database too, not the current directory
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == []
    assert data.stat().st_mode & 0o077 == 0
    for name in ("master.key", "config.key.pem"):
        assert (data / name).stat().st_mode & 0o077 == 0, name


def test_a_taken_port_names_the_setting_the_variable_and_the_flag(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        proc = run(tmp_path, "gateway", "run", CBCC_MQTT__PORT=str(taken), LANG="en_US.UTF-8")
    assert proc.returncode == 1
    _short(proc)
    for needle in (f"port {taken}", "[mqtt] port", "CBCC_MQTT__PORT", "--mqtt-port"):
        assert needle in proc.stderr, needle


def test_the_port_message_is_vietnamese_by_default(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        proc = run(tmp_path, "gateway", "run", "--port", str(s.getsockname()[1]))
    assert proc.returncode == 1
    assert "lỗi:" in proc.stderr and "đã bị chiếm" in proc.stderr and "--port" in proc.stderr


def test_wrong_passphrase_and_missing_file_are_one_line(tmp_path: Path) -> None:
    assert run(tmp_path, "keys", "init-root", "--out", "keys/root").returncode == 0
    proc = run(
        tmp_path,
        "keys",
        "trust-list",
        "--root-key",
        "keys/root/root.key.pem",
        "--issuer",
        "x",
        "--out",
        "t.cbor",
        CBCC_PASSPHRASE="not the passphrase",
    )
    assert proc.returncode == 1
    _short(proc)
    proc = run(tmp_path, "card", "mint", "--record", "missing.json", "--issuer-key", "k.pem", "--out", "c")
    assert proc.returncode == 1
    _short(proc)
    assert "missing.json" in proc.stderr


def test_debug_shows_the_traceback_of_an_unexpected_fault(tmp_path: Path) -> None:
    quiet = run(tmp_path, "gateway", "migrate", CBCC_DATABASE__URL="postgresql://nobody@127.0.0.1:1/none")
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr
    assert "--debug" in quiet.stderr
    loud = run(
        tmp_path, "--debug", "gateway", "migrate", CBCC_DATABASE__URL="postgresql://nobody@127.0.0.1:1/none"
    )
    assert loud.returncode == 1 and "Traceback" in loud.stderr


def test_version_and_switches(tmp_path: Path) -> None:
    proc = run(tmp_path, "--version")
    assert proc.returncode == 0 and proc.stdout.startswith("cbcc ")
    helped = run(tmp_path, "demo", "--help", COLUMNS="200").stdout
    assert "--check" in helped
    assert "<bool>" not in helped


def test_issuer_key_defaults_let_a_record_issued_last_year_verify(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    assert (
        run(
            tmp_path,
            "keys",
            "new-issuer",
            "--name",
            "Sở Nội vụ",
            "--serial-range",
            "1000000:2000000",
            "--out",
            "nd",
        ).returncode
        == 0
    )
    ok = run(
        tmp_path,
        "card",
        "mint",
        "--record",
        str(root / "examples/record.json"),
        "--issuer-key",
        "nd/issuer.key.pem",
        "--out",
        "c.cbor",
    )
    assert ok.returncode == 0, ok.stderr
    late = run(
        tmp_path,
        "keys",
        "new-issuer",
        "--name",
        "X",
        "--serial-range",
        "1000000:2000000",
        "--out",
        "late",
        "--not-before",
        "2026-01-01T00:00:00Z",
    )
    assert late.returncode == 0
    refused = run(
        tmp_path,
        "card",
        "mint",
        "--record",
        str(root / "examples/record.json"),
        "--issuer-key",
        "late/issuer.key.pem",
        "--out",
        "d.cbor",
        LANG="en_US.UTF-8",
    )
    assert refused.returncode == 1
    assert "issuer_not_valid" in refused.stderr and "--not-before" in refused.stderr
    assert not (tmp_path / "d.cbor").exists()


def test_token_list_and_revoke(tmp_path: Path) -> None:
    assert run(tmp_path, "gateway", "init").returncode == 0
    made = run(tmp_path, "gateway", "token", "create", "--name", "hr-1", "--role", "hr")
    token_id = made.stdout.strip().split("_")[1]
    listed = [
        json.loads(line) for line in run(tmp_path, "gateway", "token", "list", "--json").stdout.splitlines()
    ]
    assert {t["name"]: t["state"] for t in listed} == {"admin": "active", "hr-1": "active"}
    assert run(tmp_path, "gateway", "token", "revoke", token_id).returncode == 0
    listed = [
        json.loads(line) for line in run(tmp_path, "gateway", "token", "list", "--json").stdout.splitlines()
    ]
    assert {t["name"]: t["state"] for t in listed}["hr-1"] == "revoked"
    assert all("secret" not in json.dumps(t) for t in listed)
    missing = run(tmp_path, "gateway", "token", "revoke", "nope")
    assert missing.returncode == 1
    _short(missing)
