"""Issuer key rollover (provisioning/rollover.py, ``cbcc keys rollover | rollover-report | retire``).

Against a real gateway database (SQLite, migrated) whose card register holds the issuer's cards:
a rollover with a shared range and one with a new range; both keys in one trust list, which the
reader's on-flash store takes and under which credentials of both keys verify; minting with the
old key refused; the report lists the cards still signed by the old key; retiring is refused while
any is left, allowed with --strand (listing them) or once none is left; a retired key cannot be
listed again.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session
from support.host import UID
from typer.testing import CliRunner

from cbcc.app import app
from gateway.db import make_engine, migrate
from gateway.models import Card, CardIssuance
from trustcore import credential, keys, trust_list

RUNNER = CliRunner()


def cbcc(*args: Any) -> Any:
    return RUNNER.invoke(app, [str(a) for a in args], env={"CBCC_LANG": "en"})  # the texts matched below


def _db(tmp_path: Path, cards: list[tuple[int, str, datetime, datetime]]) -> str:
    url = f"sqlite:///{tmp_path / 'gw.db'}"
    migrate(url)
    engine = make_engine(url)
    now = datetime.now(UTC)
    with Session(engine) as s:
        for serial, status, issued, expires in cards:
            s.add(Card(serial=serial, staff_code=f"CB-{serial}", issuer="000.00.31.H26", gen=1, status=status,
                       issued_at=issued, expires_at=expires, updated_at=now))  # fmt: skip
        s.commit()
    engine.dispose()
    return url


@pytest.fixture
def ceremony(tmp_path: Path) -> dict[str, Path]:
    pw = tmp_path / "pw"
    pw.write_text("a long enough passphrase for tests\n")
    assert cbcc("keys", "init-root", "--out", tmp_path / "root", "--passphrase-file", pw).exit_code == 0
    res = cbcc("keys", "new-issuer", "--name", "Sở Nội vụ tỉnh Nam Định", "--serial-range", "1000:2000",
               "--out", tmp_path / "old", "--passphrase-file", pw,
               "--not-before", "2024-01-01T00:00:00Z")  # fmt: skip
    assert res.exit_code == 0, res.output
    return {
        "pw": pw,
        "root": tmp_path / "root",
        "old": tmp_path / "old",
        "new": tmp_path / "new",
        "dir": tmp_path,
    }


def _record(d: Path, serial: int) -> Path:
    now = int(time.time())
    rec = {"serial": serial, "staff": f"CB-{serial}", "name": "Nguyễn Thị Hương", "agency": "000.00.31.H26",
           "unit": "Phòng Tổ chức", "position": "", "title": "Chuyên viên",
           "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60)),
           "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 86400 * 365)),
           "uid": UID.hex(), "gen": 1}  # fmt: skip
    p = d / f"rec-{serial}.json"
    p.write_text(json.dumps(rec, ensure_ascii=False), encoding="utf-8")
    return p


def test_shared_range_rollover_end_to_end(ceremony: dict[str, Path], tmp_path: Path) -> None:
    c = ceremony
    old_cred = tmp_path / "old.cbor"
    mint = ("card", "mint", "--passphrase-file", c["pw"])
    assert cbcc(*mint, "--record", _record(tmp_path, 1001), "--issuer-key", c["old"] / "issuer.key.pem",
                "--out", old_cred).exit_code == 0  # fmt: skip
    res = cbcc("keys", "rollover", "--issuer", c["old"], "--out", c["new"], "--shared-range",
               "--passphrase-file", c["pw"])  # fmt: skip
    assert res.exit_code == 0, res.output
    new_doc = json.loads((c["new"] / "issuer.json").read_text(encoding="utf-8"))
    assert (new_doc["serial_lo"], new_doc["serial_hi"], new_doc["name"]) == (
        1000,
        2000,
        "Sở Nội vụ tỉnh Nam Định",
    )
    # issuance moves to the new key: the old one is refused by mint
    refused = cbcc(*mint, "--record", _record(tmp_path, 1002), "--issuer-key", c["old"] / "issuer.key.pem",
                   "--out", tmp_path / "x.cbor")  # fmt: skip
    assert refused.exit_code != 0 and "rolled over" in " ".join(refused.output.split())
    new_cred = tmp_path / "new.cbor"
    assert cbcc(*mint, "--record", _record(tmp_path, 1003), "--issuer-key", c["new"] / "issuer.key.pem",
                "--out", new_cred).exit_code == 0  # fmt: skip
    # both keys in one trust list (identical range, same authority: allowed)
    trust = tmp_path / "trust.cbor"
    res = cbcc("keys", "trust-list", "--root-key", c["root"] / "root.key.pem", "--issuer", c["old"],
               "--issuer", c["new"], "--out", trust, "--passphrase-file", c["pw"])  # fmt: skip
    assert res.exit_code == 0, res.output
    root = keys.load_cose_key((c["root"] / "root.cose_key").read_bytes())
    tl = trust_list.load(trust.read_bytes(), root).trust_list
    assert tl is not None and len(tl.entries) == 2
    for cred in (old_cred, new_cred):
        assert credential.verify(cred.read_bytes(), tl, UID, int(time.time())).reason == "ok"
    # the reader's store takes the list and verifies both cards
    import cose_key
    import credential as fw_credential
    import trust_store

    store = trust_store.TrustStore(cose_key.load((c["root"] / "root.cose_key").read_bytes()), str(tmp_path))
    assert store.update(trust.read_bytes()) == "ok" and store.count == 2
    for cred in (old_cred, new_cred):
        assert fw_credential.verify(cred.read_bytes(), UID, int(time.time()), store)[0] == "ok"
    store.close()

    # the register: 1001 (old key, before the rollover), 1500 expired, 1600 revoked, 1003 (after: new key)
    now = datetime.now(UTC)
    before = now - timedelta(days=30)
    db = _db(tmp_path, [(1001, "issued", before, now + timedelta(days=300)),
                        (1500, "issued", before, now - timedelta(days=1)),
                        (1600, "revoked", before, now + timedelta(days=300)),
                        (1003, "issued", now + timedelta(seconds=5), now + timedelta(days=300)),
                        (5000, "issued", before, now + timedelta(days=300))])  # fmt: skip
    report = cbcc("keys", "rollover-report", "--issuer", c["old"], "--db", db)
    assert report.exit_code == 1, report.output
    assert "CB-1001" in report.output and "CB-1500" not in report.output and "CB-1003" not in report.output
    assert "CB-1600" not in report.output and "CB-5000" not in report.output
    refused = cbcc("keys", "retire", "--issuer", c["old"], "--db", db)
    assert refused.exit_code != 0 and "1001" in refused.output and "--strand" in refused.output
    assert not (c["old"] / "retired.json").exists()
    forced = cbcc("keys", "retire", "--issuer", c["old"], "--db", db, "--strand")
    assert forced.exit_code == 0, forced.output
    assert "stranded 1 card" in forced.output and "1001 CB-1001" in forced.output
    assert json.loads((c["old"] / "retired.json").read_text())["stranded"] == [1001]
    # the retired key cannot go into a list any more
    res = cbcc("keys", "trust-list", "--root-key", c["root"] / "root.key.pem", "--issuer", c["old"],
               "--issuer", c["new"], "--out", tmp_path / "t2.cbor", "--passphrase-file", c["pw"])  # fmt: skip
    assert res.exit_code != 0 and "retired" in res.output


def test_new_range_rollover_and_clean_retire(ceremony: dict[str, Path], tmp_path: Path) -> None:
    c = ceremony
    overlap = cbcc("keys", "rollover", "--issuer", c["old"], "--out", c["new"], "--serial-range", "1500:3000",
                   "--passphrase-file", c["pw"])  # fmt: skip
    assert overlap.exit_code != 0 and "overlaps" in " ".join(overlap.output.split())
    both = cbcc("keys", "rollover", "--issuer", c["old"], "--out", c["new"], "--serial-range", "2000:3000",
                "--shared-range", "--passphrase-file", c["pw"])  # fmt: skip
    assert both.exit_code != 0
    res = cbcc("keys", "rollover", "--issuer", c["old"], "--out", c["new"], "--serial-range", "2000:3000",
               "--passphrase-file", c["pw"])  # fmt: skip
    assert res.exit_code == 0, res.output
    now = datetime.now(UTC)
    # with a new range the serial tells the keys apart: 1999 is the old key's even if issued later
    db = _db(tmp_path, [(1999, "replaced", now, now + timedelta(days=300)),
                        (2000, "issued", now, now + timedelta(days=300))])  # fmt: skip
    report = cbcc("keys", "rollover-report", "--issuer", c["old"], "--db", db)
    assert report.exit_code == 0, report.output
    done = cbcc("keys", "retire", "--issuer", c["old"], "--db", db)
    assert done.exit_code == 0, done.output
    assert json.loads((c["old"] / "retired.json").read_text())["stranded"] == []
    again = cbcc("keys", "rollover", "--issuer", c["old"], "--out", c["dir"] / "third", "--shared-range",
                 "--passphrase-file", c["pw"])  # fmt: skip
    assert again.exit_code != 0


def test_report_and_retire_count_issuance_records(ceremony: dict[str, Path], tmp_path: Path) -> None:
    """Cards the register does not hold yet: a pending issuance whose credential the old key signed
    counts (one signed by the new key does not, nor an abandoned one); a done issuance missing from
    the register counts; retire without --strand is refused while any is left."""
    c = ceremony
    res = cbcc("keys", "rollover", "--issuer", c["old"], "--out", c["new"], "--shared-range",
               "--passphrase-file", c["pw"])  # fmt: skip
    assert res.exit_code == 0, res.output
    creds = {}
    for serial, d in ((1010, c["old"]), (1011, c["new"])):
        rec = json.loads(_record(tmp_path, serial).read_text(encoding="utf-8"))
        key = keys.load_private_key(d / "issuer.key.pem", lambda: c["pw"].read_text().strip().encode())
        creds[serial] = credential.mint(credential.claims_from_record(rec), key)
    now = datetime.now(UTC)
    db = _db(tmp_path, [(1020, "issued", now + timedelta(seconds=5), now + timedelta(days=300))])
    engine = make_engine(db)

    def issuance(serial: int, state: str, cred: bytes | None, started: datetime) -> CardIssuance:
        return CardIssuance(serial=serial, staff_code=f"CB-{serial}", issuer="000.00.31.H26", gen=1,
                            uid=UID.hex(), state=state, operator="op", station="st", credential=cred,
                            started_at=started)  # fmt: skip

    with Session(engine) as s:
        s.add(issuance(1010, "pending", creds[1010], now))  # signed by the old key: counts
        s.add(issuance(1011, "pending", creds[1011], now - timedelta(days=1)))  # new key: does not
        s.add(issuance(1012, "abandoned", None, now - timedelta(days=1)))  # revoked serial
        s.add(issuance(1013, "done", None, now - timedelta(days=1)))  # not in the register: counts
        s.add(issuance(1020, "done", None, now + timedelta(seconds=5)))  # in the register (new key)
        s.commit()
    engine.dispose()
    report = cbcc("keys", "rollover-report", "--issuer", c["old"], "--db", db)
    assert report.exit_code == 1, report.output
    out = " ".join(report.output.split())
    assert "CB-1010" in out and "CB-1013" in out, report.output
    assert "CB-1011" not in out and "CB-1012" not in out and "CB-1020" not in out
    assert "pending" in out
    refused = cbcc("keys", "retire", "--issuer", c["old"], "--db", db)
    assert refused.exit_code != 0 and "1010" in refused.output and "1013" in refused.output
    assert not (c["old"] / "retired.json").exists()
    forced = cbcc("keys", "retire", "--issuer", c["old"], "--db", db, "--strand")
    assert forced.exit_code == 0, forced.output
    assert json.loads((c["old"] / "retired.json").read_text())["stranded"] == [1010, 1013]
