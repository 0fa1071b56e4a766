"""``cbcc demo``: the trust core end to end, on the host and on the reader's own code.

A national root, two issuers and a trust list are created (keys encrypted at rest with a
passphrase that lives only in this process), credentials are minted for a handful of civil
servants, and each tap scenario is verified twice: by the host verifier and by the firmware
verifier under the real MicroPython unix port. The two must agree and match what the scenario
expects; the exit code says whether they did.
"""

from __future__ import annotations

import json
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from messages import _, words
from simulators import firmware_runner
from trustcore import credential, keys, revocation, trust_list

ESP32_FACTOR = 70  # shared/context/esp32-projection.md: unix-port µs × 70 ≈ ESP32 at 240 MHz
YEAR = 365 * 24 * 3600


def _vn(n: float, digits: int = 0) -> str:
    """Vietnamese number format: dot between thousands, comma before decimals."""
    return f"{n:,.{digits}f}".replace(",", " ").replace(".", ",").replace(" ", ".")


@dataclass(frozen=True)
class Tap:
    """One card presented to a reader, and what the reader must answer."""

    title: str
    credential_file: str
    chip_uid: bytes
    expect: str


def _record(serial: int, staff: str, name: str, agency: str, unit: str, position: str, title: str,
            uid: bytes, iat: int, exp: int) -> dict[int, Any]:
    return credential.claims_from_record({
        "serial": serial, "staff": staff, "name": name, "agency": agency, "unit": unit,
        "position": position, "title": title,
        "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(iat)),
        "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp)),
        "uid": uid.hex(), "gen": 1, "groups": ["tru-so-chinh"],
    })  # fmt: skip


def _setup(out: Path, now: int, issuers_out: dict[str, Any] | None = None) -> tuple[list[Tap], list[str]]:
    """Create keys, trust list, revocation list and credentials in ``out``; return the taps.

    ``issuers_out`` receives each issuer's private key and trust-list entry (slug → (key, entry)), so
    the gateway part can issue cards through the encoder with a key the readers trust."""
    log: list[str] = []
    secret = secrets.token_urlsafe(24).encode()  # never leaves this process
    root = keys.generate_rsa(keys.ROOT_BITS)
    keys.write_private_key(out / "root.key.pem", root, secret)
    keys.write_new_file(out / "root.cose_key", keys.cose_key_bytes(root.public_key()))
    log.append(_("national root key RSA-3072, kid {kid} (encrypted at rest)").format(
        kid=keys.kid_of(root.public_key()).hex()))

    issuers = {
        "bnv": ("Bộ Nội vụ", 1_000_000, 2_000_000),
        "hn": ("Sở Nội vụ thành phố Hà Nội", 2_000_000, 3_000_000),
    }
    private: dict[str, keys.PrivateKey] = {}
    entries = []
    for slug, (name, lo, hi) in issuers.items():
        key = keys.generate_rsa(keys.ISSUER_BITS)
        keys.write_private_key(out / f"{slug}.key.pem", key, secret)
        private[slug] = key
        # Valid from well before the oldest card below, so every card was signed in the key's window.
        window = (now - 8 * YEAR, now + 10 * YEAR)
        entries.append(trust_list.IssuerEntry(key.public_key(), *window, lo, hi, name))
        if issuers_out is not None:
            issuers_out[slug] = (key, entries[-1])
        log.append(_("issuing authority: {name}, card numbers {lo}–{hi}").format(name=name, lo=_vn(lo),
                                                                                  hi=_vn(hi - 1)))
    (out / "trust.cbor").write_bytes(trust_list.build(root, 1, now, entries))
    (out / "crl.cbor").write_bytes(revocation.build(root, 1, now, [2_000_017]))
    log.append(_("trust list seq 1 and revocation list seq 1 (card 2.000.017 revoked) signed"))

    uid_a, uid_b, uid_c, uid_d = (bytes.fromhex(h) for h in
                                  ("04a1b2c3d4e5f6", "04112233445566", "04deadbeef0102", "04998877665544"))
    people = [
        ("huong", private["hn"], _record(2_000_001, "CB010012345", "Nguyễn Thị Hương", "000.00.31.H26",
                                         "Phòng Tổ chức cán bộ", "Trưởng phòng", "Chuyên viên chính",
                                         uid_a, now - 30 * 86400, now + 5 * YEAR)),
        ("duc", private["bnv"], _record(1_000_042, "CB000000042", "Trần Văn Đức", "000.00.00.G09",
                                        "Vụ Công chức - Viên chức", "", "Chuyên viên", uid_b,
                                        now - 400 * 86400, now + 4 * YEAR)),
        ("tuan", private["hn"], _record(2_000_017, "CB010099017", "Lê Minh Tuấn", "000.00.31.H26",
                                        "Văn phòng Sở", "", "Cán sự", uid_c, now - 90 * 86400,
                                        now + 5 * YEAR)),
        ("trang", private["hn"], _record(2_000_050, "CB010077050", "Phạm Thu Trang", "000.00.31.H26",
                                         "Phòng Công chức", "", "Chuyên viên", uid_d, now - 6 * YEAR,
                                         now - 30 * 86400)),
    ]
    for slug, signer, claims in people:
        (out / f"{slug}.cbor").write_bytes(credential.mint(claims, signer))
    log.append(_("{n} cards issued (each bound to its chip's UID)").format(n=len(people)))

    # A copy of Hương's credential with one byte of her name changed, and a card signed by a key
    # nobody trusts.
    forged = bytearray((out / "huong.cbor").read_bytes())
    at = forged.find("Hương".encode())
    forged[at] ^= 0x01
    (out / "forged.cbor").write_bytes(bytes(forged))
    rogue = keys.generate_rsa(keys.ISSUER_BITS)
    (out / "rogue.cbor").write_bytes(credential.mint(people[1][2], rogue))

    taps = [
        Tap(_("Nguyễn Thị Hương taps her card"), "huong.cbor", uid_a, credential.OK),
        Tap(_("Trần Văn Đức (Ministry of Home Affairs) comes to work"), "duc.cbor", uid_b, credential.OK),
        Tap(_("Lê Minh Tuấn: card reported lost"), "tuan.cbor", uid_c, credential.REVOKED),
        Tap(_("Phạm Thu Trang: card expired"), "trang.cbor", uid_d, credential.EXPIRED),
        Tap(_("Hương's card data copied onto another chip"), "huong.cbor", uid_d, credential.UID_MISMATCH),
        Tap(_("Card data altered (full name)"), "forged.cbor", uid_a, credential.BAD_SIGNATURE),
        Tap(_("Card signed by an untrusted party"), "rogue.cbor", uid_b, credential.UNKNOWN_ISSUER),
    ]
    return taps, log


def _host_verdict(out: Path, tap: Tap, now: int) -> str:
    root = keys.load_cose_key((out / "root.cose_key").read_bytes())
    trust = trust_list.load((out / "trust.cbor").read_bytes(), root).trust_list
    crl = revocation.load((out / "crl.cbor").read_bytes(), root).crl
    assert trust is not None and crl is not None  # noqa: S101 — type narrowing for mypy, not input validation
    return credential.verify((out / tap.credential_file).read_bytes(), trust, tap.chip_uid, now, crl).reason


def _reader_verdict(out: Path, tap: Tap, now: int, repeat: int = 1) -> dict[str, Any]:
    proc = firmware_runner.run_micropython(
        [
            "firmware/tools/verify_credential.py",
            str(out / tap.credential_file), str(out / "trust.cbor"), str(out / "root.cose_key"),
            "--uid", tap.chip_uid.hex(), "--now", str(now), "--crl", str(out / "crl.cbor"),
            "--repeat", str(repeat),
        ],
        heap="256K",
    )  # fmt: skip
    if proc.returncode not in (0, 1):
        raise RuntimeError(_("the reader verifier failed: {detail}", detail=proc.stderr.strip()))
    return dict(json.loads(proc.stdout))


def run(out: Path | None, console: Console, issuers_out: dict[str, Any] | None = None) -> bool:
    """Run the demo; True when every scenario gave the expected answer on both verifiers."""
    now = int(time.time())
    with tempfile.TemporaryDirectory(prefix="cbcc-demo-") as tmp:
        work = out or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        title = _("cbcc — electronic civil-servant card: offline card verification")
        console.rule(f"[bold]{title}[/bold]")
        with console.status(_("generating the national root and issuer keys, signing lists and cards…")):
            taps, log = _setup(work, now, issuers_out)
        for line in log:
            console.print(f"  • {line}")

        table = Table(title=_("Card taps: the host and the reader's code (MicroPython) both check"))
        table.add_column(_("Scenario"), ratio=3)
        table.add_column(_("Host"), no_wrap=True)
        table.add_column(_("Reader"), no_wrap=True)
        table.add_column(_("Meaning"), ratio=3)
        table.add_column(_("Right?"), no_wrap=True)
        all_ok = True
        status = console.status(_("each card checked by the host and by the reader's code…"))
        status.start()
        for tap in taps:
            host = _host_verdict(work, tap, now)
            reader = _reader_verdict(work, tap, now)["reason"]
            good = host == reader == tap.expect
            all_ok &= good
            table.add_row(tap.title, host, reader, words.reason(reader),
                          "[green]✓[/green]" if good else "[red]✗[/red]")
        status.stop()
        console.print(table)

        timing = _reader_verdict(work, taps[0], now, repeat=30)
        us = float(timing["us_per_verify"])
        console.print(
            _("The reader verifies a card (all 9 checks, RSA-2048): {us} µs on the MicroPython unix port "
              "≈ {ms} ms on an ESP32 at 240 MHz (factor ×{factor}).").format(
                us=_vn(us), ms=_vn(us * ESP32_FACTOR / 1000), factor=ESP32_FACTOR)
        )
        if out is not None:
            console.print(_("The demo's files: {folder} (private keys encrypted; the passphrase exists only "
                            "in this run)").format(folder=work))
        console.print("[bold green]" + _("Every scenario right.") + "[/bold green]" if all_ok
                      else "[bold red]" + _("A scenario went wrong: see the table above.") + "[/bold red]")
        return all_ok
