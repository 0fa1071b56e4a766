"""A national-size trust list delivered to a reader through a real Mosquitto (amendment 1).

The reader (tests/mpy/uplink_probe.py with ``trust_store``: the on-flash store, checked between
taps by ``background_step``) receives the 192-issuer list made by pycose in retained chunks,
survives a power cut half-way, resumes, verifies the list as a stream and installs it with its
index; then every bad list is refused with its reason and the held list stays.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.micropython_runner import ROOT
from test_uplink import Env, Reader, clean_lists, env, readers, start  # noqa: F401 - fixtures

NATIONAL = ROOT / "tests" / "vectors" / "national"
NM: dict[str, Any] = json.loads((NATIONAL / "manifest.json").read_text())


def _v(name: str) -> bytes:
    return (NATIONAL / name).read_bytes()


@pytest.mark.micropython
def test_192_issuer_list_through_the_broker(
    env: Env,  # noqa: F811
    tmp_path: Path,
    readers: list[Reader],  # noqa: F811
    clean_lists: None,  # noqa: F811
) -> None:
    rid, gw = "rdr-list", env.gw
    state = tmp_path / "state"
    opts = {"report_every": 0, "trust_store": True, "root": str(NATIONAL / "root.cose_key")}
    big = _v("trust_ok_192_pycose.cbor")
    chunk = 2048
    n = (len(big) + chunk - 1) // chunk
    first = n // 2
    r = start(readers, env, rid, tmp_path, **opts)
    assert r.ready["held"]["trust"] is None
    r.wait("connected")
    gw.send_chunks(big, chunk, range(first))
    gw.send_manifest("trust", gw.manifest_blob("trust", big, 10, chunk))
    r.wait("chunk", lambda x: x["have"] == first)
    r.kill()  # power cut during the download

    gw.send_chunks(big, chunk, range(first, n))
    r2 = start(readers, env, rid, tmp_path, **opts)
    assert r2.wait("resume")["have"] == first
    r2.applied("trust", "ok", timeout=60)
    s = r2.stats()
    assert s["trust"] == 10 and s["transfers"] == {}
    assert (state / "trust.cbor").read_bytes() == big
    assert (state / "trust.idx").exists() and not (state / "trust.part").exists()
    assert gw.wait(lambda: gw.last_status(rid).get(3) == 10)

    cases = [
        ("trust_too_large_257_entries.cbor", 12, "too_large", "257"),
        ("trust_malformed_truncated_mid_stream.cbor", 12, "malformed", "truncated"),
        ("trust_malformed_duplicate_kid.cbor", 13, "malformed", "duplicate kid"),
        ("trust_malformed_overlapping_ranges.cbor", 14, "malformed", "overlapping"),
        ("trust_bad_signature_byte_in_stream.cbor", 15, "bad_signature", None),
        ("trust_unknown_root_192.cbor", 16, "unknown_root", None),
        ("trust_rollback_seq_9.cbor", 17, "rollback", None),  # the manifest lies about the seq
    ]
    for name, seq, status, detail in cases:
        m = r2.mark()
        gw.offer_list("trust", _v(name), seq, chunk=chunk)
        got = r2.applied("trust", status, start=m, timeout=60)
        if detail is not None:
            assert detail in got["info"]["detail"], got
        s = r2.stats()
        assert s["trust"] == 10 and s["transfers"] == {}
        assert (state / "trust.cbor").read_bytes() == big
        assert not (state / "trust.part").exists() and not (state / "trust.rec").exists()
    # over 128 KiB: refused from its manifest, nothing downloaded
    m = r2.mark()
    over = _v("trust_too_large_128k_plus_1.cbor")
    gw.send_manifest("trust", gw.manifest_blob("trust", over, 18, chunk))
    r2.applied("trust_manifest", "too_large", start=m)
    # the 256-entry list at exactly 128 KiB is taken
    m = r2.mark()
    gw.offer_list("trust", _v("trust_ok_256_cwt_128k.cbor"), 11, chunk=chunk)
    r2.applied("trust", "ok", start=m, timeout=60)
    assert r2.stats()["trust"] == 11
    r2.kill()
    r3 = start(readers, env, rid, tmp_path, **opts)
    assert r3.ready["held"]["trust"] == "ok"
    assert r3.stats()["trust"] == 11


@pytest.mark.micropython
def test_gateway_publish_list_reaches_a_reader(
    env: Env,  # noqa: F811
    tmp_path: Path,
    readers: list[Reader],  # noqa: F811
    clean_lists: None,  # noqa: F811
) -> None:
    """gateway/list_publish.py (what `cbcc gateway publish-list` runs) publishes the 192-issuer
    list: checked first, retained chunks, signed manifest; the reader installs it."""
    from support.host import rsa_key

    from gateway.errors import GatewayError as CbccError
    from gateway.list_publish import checked_seq, publish_list
    from trustcore import keys

    root = keys.load_cose_key((NATIONAL / "root.cose_key").read_bytes())
    big = _v("trust_ok_192_pycose.cbor")
    assert checked_seq("trust", big, root) == 10
    for bad in (
        "trust_malformed_duplicate_kid.cbor",
        "trust_too_large_257_entries.cbor",
        "trust_unknown_root_192.cbor",
    ):
        with pytest.raises(CbccError, match=r"(does not verify|không kiểm tra được)"):  # either language
            checked_seq("trust", _v(bad), root)
    r = start(readers, env, "rdr-list", tmp_path, report_every=0, trust_store=True,
              root=str(NATIONAL / "root.cose_key"))  # fmt: skip
    r.wait("connected")
    m = r.mark()
    publish_list(
        lambda t, p, q, retain: env.gw.publish(t, p, retain=retain), rsa_key("config"), "trust", big, 10
    )
    r.applied("trust", "ok", start=m, timeout=60)
    assert r.stats()["trust"] == 10


def test_publish_list_command_is_well_formed() -> None:
    from typer.testing import CliRunner

    from cbcc.app import app

    out = CliRunner().invoke(app, ["gateway", "publish-list", "--help"])
    assert out.exit_code == 0 and "--root" in out.output
