"""``cbcc card issue | reissue | issue-batch | pending | abandon`` and ``cbcc keys new-issuer-hsm``:
file keys and SoftHSM2 issuer keys, the virtual encoder's hopper of blank cards, the gateway
database; and the batch journal resumed after a cut."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select
from support.issuance import STAFF, STATION, database, make_issuer, new_card
from typer.testing import CliRunner

from cbcc.app import app
from cbcc.issuance import batch
from gateway.db import make_engine
from provisioning.encoders.base import LinkLost
from provisioning.encoders.rfstack import VirtualEncoder

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
CSV = (
    "staff_code,name,agency,unit,position,title\n"
    "079201000001,Nguyễn Văn An,000.00.36.H40,Phòng Tổ chức,Chuyên viên,\n"
    "079201000002,Trần Thị Bình,000.00.36.H40,Văn phòng,Trưởng phòng,\n"
    "079201000003,Lê Hoàng Cường,000.00.36.H40,,,\n"
)


@pytest.fixture(autouse=True)
def english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CBCC_LANG", "en")  # the English texts matched below (tests/messages: Vietnamese)


def run(*args: str | Path, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("issuer")
    pw = d / "pass"
    pw.write_text("correct horse battery staple\n")
    r = run("keys", "card-keys", "init", "--out", d / "card-keys.json", "--passphrase-file", pw)
    assert r.exit_code == 0, r.output
    r = run(
        "keys",
        "new-issuer",
        "--name",
        "Sở Nội vụ Hà Nội",
        "--serial-range",
        "1000000:1000100",
        "--out",
        d / "issuer",
        "--passphrase-file",
        pw,
    )
    assert r.exit_code == 0, r.output
    (d / "staff.csv").write_text(CSV, encoding="utf-8")
    return {
        "dir": d,
        "pass": pw,
        "keys": d / "card-keys.json",
        "issuer": d / "issuer",
        "csv": d / "staff.csv",
    }


def common(f: dict[str, Path], db: str) -> list[str | Path]:
    return [
        "--db",
        db,
        "--issuer",
        f["issuer"],
        "--card-keys",
        f["keys"],
        "--agency-code",
        "000.00.36.H40",
        "--encoder",
        "virtual",
        "--passphrase-file",
        f["pass"],
        "--operator",
        "op1",
        "--station",
        "quay-1",
    ]


def test_issue_refuse_reissue_from_the_command_line(files: dict[str, Path], tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gw.db'}"
    r = run("card", "issue", "079201000001", "--csv", files["csv"], *common(files, db))
    assert r.exit_code == 0, r.output
    assert "issued serial 1000000 gen 1 to 079201000001" in r.output
    r = run("card", "issue", "079201000001", "--csv", files["csv"], *common(files, db))
    assert r.exit_code == 1 and "already holds live card serial 1000000" in r.output
    r = run("card", "reissue", "079201000001", "--csv", files["csv"], *common(files, db))
    assert r.exit_code == 0, r.output
    assert "serial 1000001 gen 2" in r.output and "replaces serial 1000000 (revoked)" in r.output
    r = run("card", "issue", "999", "--csv", files["csv"], *common(files, db))
    assert r.exit_code == 1 and "999 is not in" in r.output
    from gateway.models import Card, CardIssuance

    with Session(make_engine(db)) as s:
        rows = s.exec(select(CardIssuance)).all()
        assert sorted((r.serial, r.state, r.operator, r.station) for r in rows) == [
            (1000000, "done", "op1", "quay-1"),
            (1000001, "done", "op1", "quay-1"),
        ]
        assert s.get(Card, 1000000).status == "revoked"  # type: ignore[union-attr]


def test_batch_with_progress_and_journal(files: dict[str, Path], tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gw.db'}"
    journal = tmp_path / "batch.jsonl"
    r = run("card", "issue-batch", files["csv"], "--journal", journal, *common(files, db))
    assert r.exit_code == 0, r.output
    assert "issued 3, already done 0, failed 0" in r.output
    lines = [json.loads(x) for x in journal.read_text().splitlines()]
    assert [(x["staff"], x["state"], x["serial"]) for x in lines] == [
        ("079201000001", "done", 1000000),
        ("079201000002", "done", 1000001),
        ("079201000003", "done", 1000002),
    ]
    r = run("card", "issue-batch", files["csv"], "--journal", journal, *common(files, db))
    assert r.exit_code == 0 and "issued 0, already done 3" in r.output


def test_batch_cut_mid_card_is_resumed_on_the_same_card(tmp_path: Path) -> None:
    engine = database(tmp_path)
    issuer = make_issuer()
    enc = VirtualEncoder()
    cards = {st.staff_code: new_card(i + 1) for i, st in enumerate(STAFF)}
    journal = tmp_path / "j.jsonl"

    def present(st: Any) -> None:
        enc.place(cards[st.staff_code])

    # the second card is pulled away at its 40th exchange; no retry in this run
    start = {"n": None}

    def cut(n: int) -> None:
        if enc.card is cards[STAFF[1].staff_code]:
            if start["n"] is None:
                start["n"] = n
            if n - start["n"] == 40:
                enc.take()
                raise LinkLost("pulled")

    enc.before_exchange = cut
    rep = batch.run_batch(
        engine, enc, issuer, STAFF, STATION, batch.Journal(journal), next_card=present, retries=0
    )
    assert [g.staff_code for g in rep.done] == [STAFF[0].staff_code, STAFF[2].staff_code]
    assert list(rep.failed) == [STAFF[1].staff_code]
    enc.before_exchange = None
    # a torn last line (the station lost power while writing) is dropped, not fatal
    with journal.open("a") as f:
        f.write('{"staff": "0792')
    rep = batch.run_batch(engine, enc, issuer, STAFF, STATION, batch.Journal(journal), next_card=present)
    assert rep.skipped == [STAFF[0].staff_code, STAFF[2].staff_code]
    assert [(g.staff_code, g.resumed, g.serial) for g in rep.done] == [(STAFF[1].staff_code, True, 1000001)]


# ---------------------------------------------------------------- SoftHSM2


@pytest.fixture
def softhsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    util = shutil.which("softhsm2-util")
    if util is None or not Path(SOFTHSM_MODULE).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("softhsm2 is not installed (.ci/run installs it)")
        pytest.skip("softhsm2 is not installed")
    try:
        import pkcs11  # noqa: F401  # the optional extra [hsm]
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("python-pkcs11 is not installed (.ci/run syncs the [hsm] extra)")
        pytest.skip("python-pkcs11 is not installed: uv sync --extra hsm")
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    subprocess.run(
        [util, "--init-token", "--free", "--label", "cbcc-issuer", "--pin", "246810", "--so-pin", "13579111"],
        check=True,
        capture_output=True,
    )
    pin = tmp_path / "pin"
    pin.write_text("246810\n")
    return {"uri": f"{SOFTHSM_MODULE}:cbcc-issuer:issuer-2026", "pin": str(pin), "conf": str(conf)}


def test_issuer_key_generated_in_softhsm_signs_cards(
    files: dict[str, Path], softhsm: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "hsm-issuer"
    r = run(
        "keys",
        "new-issuer-hsm",
        "--pkcs11",
        softhsm["uri"],
        "--name",
        "Sở Nội vụ Hà Nội",
        "--serial-range",
        "2000000:2000010",
        "--out",
        out,
        "--pin-file",
        softhsm["pin"],
    )
    assert r.exit_code == 0, r.output
    assert not list(out.glob("*.pem"))  # no private key file exists anywhere
    r = run(
        "keys",
        "new-issuer-hsm",
        "--pkcs11",
        softhsm["uri"],
        "--name",
        "x",
        "--serial-range",
        "1:2",
        "--out",
        tmp_path / "again",
        "--pin-file",
        softhsm["pin"],
    )
    assert r.exit_code == 1 and "already holds a key labelled" in r.output
    db = f"sqlite:///{tmp_path / 'gw.db'}"
    args = [
        "--db",
        db,
        "--issuer",
        out,
        "--card-keys",
        files["keys"],
        "--agency-code",
        "000.00.36.H40",
        "--encoder",
        "virtual",
        "--passphrase-file",
        files["pass"],
        "--pkcs11",
        softhsm["uri"],
        "--pin-file",
        softhsm["pin"],
    ]
    r = run("card", "issue", "079201000002", "--csv", files["csv"], *args)
    assert r.exit_code == 0, r.output
    assert "issued serial 2000000" in r.output
    bad_pin = tmp_path / "bad"
    bad_pin.write_text("000000\n")
    r = run("card", "issue", "079201000003", "--csv", files["csv"], *args[:-1], bad_pin)
    assert r.exit_code == 1 and "refused the PIN" in r.output
    # the key pair's private half is sensitive and not extractable
    from provisioning.issuance import hsm

    key = hsm.open_uri(softhsm["uri"], Path(softhsm["pin"]))
    import pkcs11

    assert key._priv[pkcs11.Attribute.EXTRACTABLE] is False
    assert key._priv[pkcs11.Attribute.SENSITIVE] is True
    with pytest.raises(hsm.HsmError, match="stays in the HSM"):
        key.private_numbers()
    key.close()
    # signing with a file key that does not match issuer.json is refused
    r = run(
        "card",
        "issue",
        "079201000003",
        "--csv",
        files["csv"],
        "--db",
        db,
        "--issuer",
        out,
        "--card-keys",
        files["keys"],
        "--agency-code",
        "x",
        "--encoder",
        "virtual",
        "--passphrase-file",
        files["pass"],
    )
    assert r.exit_code == 1


def test_pending_names_its_start_in_the_operators_language(tmp_path: Path) -> None:
    """The start of an unfinished issuance (stored UTC; SQLite gives it back naive) reads as a UTC
    moment: ``06/12/2026 01:02:03 UTC`` in Vietnamese, ISO in English."""
    from datetime import UTC, datetime

    from gateway.models import CardIssuance

    engine = database(tmp_path)
    with Session(engine) as s:
        s.add(CardIssuance(serial=1000007, staff_code="079201000001", issuer="H40", uid="045a10000001",
                           state="pending", operator="op", station="quay-1",
                           started_at=datetime(2026, 12, 6, 1, 2, 3, tzinfo=UTC)))  # fmt: skip
        s.commit()
    url = str(engine.url)
    vi = run("card", "pending", "--db", url, env={"CBCC_LANG": "vi"})
    assert vi.exit_code == 0, vi.output
    assert "số thẻ 1000007" in vi.output and "từ 06/12/2026 01:02:03 UTC" in vi.output
    en = run("card", "pending", "--db", url)
    assert en.exit_code == 0, en.output
    assert "serial 1000007" in en.output and "since 2026-12-06 01:02:03+00:00" in en.output
