"""Amendment 1 (a national-size trust list) on both sides.

The vectors in tests/vectors/national were made by pycose and python-cwt (192 RSA-2048 issuers,
256 at exactly 128 KiB, the refusals); the host loader and the reader's on-flash store
(firmware/lib/trust_store.py, under MicroPython and CPython) must give each case's status, keep
the held list on a refusal, and find issuers by kid. The store also replays every trust-list and
credential case of the first vector set, and is compared with the host on mutated lists.
"""

from __future__ import annotations

import ast
import json
import random
import runpy
import sys
from pathlib import Path
from typing import Any

import pytest
from support.micropython_runner import ROOT, run_micropython
from typer.testing import CliRunner

from trustcore import keys, trust_list

VECTORS = ROOT / "tests" / "vectors"
NATIONAL = VECTORS / "national"
NM: dict[str, Any] = json.loads((NATIONAL / "manifest.json").read_text())
M: dict[str, Any] = json.loads((VECTORS / "manifest.json").read_text())
CHECK = ROOT / "tests" / "mpy" / "check_trust_store.py"


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI texts matched here are the English ids (tests/messages checks the Vietnamese)."""
    monkeypatch.setenv("CBCC_LANG", "en")


def _root() -> keys.PublicKey:
    import cbor2

    return keys.public_key_from_cose(cbor2.loads((NATIONAL / "root.cose_key").read_bytes()))


@pytest.mark.parametrize("case", NM["trust_cases"], ids=lambda c: c["name"])
def test_host_loader(case: dict[str, Any]) -> None:
    root = _root()
    held_seq = None
    if case["held"]:
        held = trust_list.load((NATIONAL / case["held"]).read_bytes(), root)
        assert held.trust_list is not None
        held_seq = held.trust_list.seq
    got = trust_list.load((NATIONAL / case["file"]).read_bytes(), root, held_seq)
    assert got.status == case["expect"], got.detail
    if got.status != "ok":
        assert got.trust_list is None or got.status == "noop"
        if got.status in ("malformed", "too_large"):
            assert got.detail  # a reason for the operator
        return
    assert got.trust_list is not None and len(got.trust_list.entries) == case["count"]
    for kid, want in zip(case["lookup"], case["ranges"], strict=True):
        e = got.trust_list.get(bytes.fromhex(kid))
        assert (None if e is None else [e.serial_lo, e.serial_hi]) == want


def _expected() -> dict[str, Any]:
    return {
        "trust_cases": {c["name"]: c["expect"] for c in M["trust_cases"]},
        "cases": {c["name"]: [c["expect"], c["serial"], c["staff"]] for c in M["cases"]},
        "national": {
            c["name"]: [c["expect"], c["count"], c["expect"] != "ok" or None, c["ranges"]]
            for c in NM["trust_cases"]
        },
    }


def _compare(got: dict[str, Any]) -> None:
    exp = _expected()
    for section in ("trust_cases", "cases"):
        for name, want in exp[section].items():
            assert got[section][name] == want, f"{section}/{name}"
    for name, want in exp["national"].items():
        status, count, kept, looked = got["national"][name]
        assert [status, count, looked] == [want[0], want[1], want[3]], name
        if status != "ok":
            assert kept is True, f"{name}: the held list was not kept"


@pytest.mark.micropython
def test_reader_store_under_micropython(tmp_path: Path) -> None:
    # The harness holds both manifests (~55 KB of JSON; 2 MiB heap as in test_firmware_vectors);
    # the store's own RAM is measured by firmware/tools/bench_trust.py.
    proc = run_micropython([str(CHECK), str(VECTORS), str(tmp_path), str(NATIONAL)], heap="2M")
    assert proc.returncode == 0, proc.stderr
    _compare(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_reader_store_under_cpython(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = sys.argv
    sys.argv = [str(CHECK), str(VECTORS), str(tmp_path), str(NATIONAL)]
    try:
        runpy.run_path(str(CHECK), run_name="__main__")
    finally:
        sys.argv = saved
    _compare(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))


def _store_status(tmp_path: Path, blob: bytes) -> tuple[str, Any]:
    import cose_key
    import trust_store

    root = cose_key.load((NATIONAL / "root.cose_key").read_bytes())
    for p in tmp_path.iterdir():
        p.unlink()
    st = trust_store.TrustStore(root, str(tmp_path))
    status = st.update(blob)
    kids = st._kids
    st.close()
    return status, kids


def test_store_agrees_with_host_on_mutations(tmp_path: Path) -> None:
    """Random byte changes, truncations and insertions in small lists: the reader's streamed
    check and the host loader name the same status, and the store never raises."""
    rng = random.Random(1326)
    root = _root()
    originals = [
        (NATIONAL / c["file"]).read_bytes()
        for c in NM["trust_cases"]
        if (NATIONAL / c["file"]).stat().st_size < 4096
    ]
    for i in range(300):
        blob = bytearray(rng.choice(originals))
        op = i % 3
        at = rng.randrange(len(blob))
        if op == 0:
            blob[at] ^= 1 << rng.randrange(8)
        elif op == 1:
            del blob[at:]
        else:
            blob[at:at] = bytes([rng.randrange(256)])
        host = trust_list.load(bytes(blob), root).status
        reader, _ = _store_status(tmp_path, bytes(blob))
        assert reader == host, (i, op, at)


def test_failed_offer_keeps_held_list_and_files(tmp_path: Path) -> None:
    import cose_key
    import trust_store

    root = cose_key.load((NATIONAL / "root.cose_key").read_bytes())
    st = trust_store.TrustStore(root, str(tmp_path))
    assert st.update((NATIONAL / "trust_ok_192_pycose.cbor").read_bytes()) == "ok"
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(before) == {"trust.cbor", "trust.idx"}
    for bad in (
        "trust_malformed_truncated_mid_stream.cbor",
        "trust_too_large_257_entries.cbor",
        "trust_bad_signature_byte_in_stream.cbor",
        "trust_malformed_overlapping_ranges.cbor",
    ):
        assert st.update((NATIONAL / bad).read_bytes()) != "ok"
        assert st.detail or bad.startswith("trust_bad_signature")
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
        assert st.count == 192 and st.seq == 10
    st.close()
    # After a reboot: the held list and its index come back; a damaged index is rebuilt.
    st2 = trust_store.TrustStore(root, str(tmp_path))
    assert st2.load_held() == "ok" and st2.count == 192
    kid = bytes.fromhex(NM["trust_cases"][0]["lookup"][1])
    iss = st2.get(kid)
    assert iss is not None and iss.key.k == 256
    st2.close()
    idx = tmp_path / "trust.idx"
    idx.write_bytes(idx.read_bytes()[:-1] + b"\x00")
    st3 = trust_store.TrustStore(root, str(tmp_path))
    assert st3.load_held() == "ok" and st3.get(kid) is not None
    assert idx.read_bytes() == before["trust.idx"]
    st3.close()
    # A list file changed on flash is refused at boot (its signature no longer holds).
    lst = tmp_path / "trust.cbor"
    raw = bytearray(lst.read_bytes())
    raw[len(raw) // 2] ^= 1
    lst.write_bytes(bytes(raw))
    st4 = trust_store.TrustStore(root, str(tmp_path))
    assert st4.load_held() != "ok" and st4.get(kid) is None and st4.count == 0


def test_show_trust_list_gives_the_reason(tmp_path: Path) -> None:
    from cbcc.app import app

    runner = CliRunner()
    ok = runner.invoke(
        app,
        [
            "keys",
            "show-trust-list",
            str(NATIONAL / "trust_ok_192_pycose.cbor"),
            "--root",
            str(NATIONAL / "root.cose_key"),
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert "status: ok" in ok.output
    for file, words in (
        ("trust_too_large_257_entries.cbor", "257 entries"),
        ("trust_too_large_128k_plus_1.cbor", "131073 bytes"),
        ("trust_malformed_duplicate_kid.cbor", "duplicate kid"),
        ("trust_malformed_overlapping_ranges.cbor", "overlapping serial ranges"),
    ):
        res = runner.invoke(
            app, ["keys", "show-trust-list", str(NATIONAL / file), "--root", str(NATIONAL / "root.cose_key")]
        )
        assert res.exit_code == 1, res.output
        assert words in " ".join(res.output.split()), res.output


@pytest.mark.parametrize("case", NM["credential_cases"], ids=lambda c: c["name"])
@pytest.mark.parametrize("tool", ["cbcc", "micropython"])
def test_verify_tools_with_the_192_issuer_list(case: dict[str, Any], tool: str) -> None:
    """Spec §5: both verify commands with the list made by pycose (the reader's tool keeps it in
    the on-flash store, in a scratch folder it removes)."""
    files = [str(NATIONAL / case["file"]), str(NATIONAL / case["trust"]), str(NATIONAL / "root.cose_key")]
    opts = ["--uid", case["uid"], "--now", str(case["now"])]
    if tool == "cbcc":
        from cbcc.app import app

        res = CliRunner().invoke(
            app, ["card", "verify", files[0], "--trust-list", files[1], "--root", files[2], *opts]
        )
        out, code = res.output, res.exit_code
    else:
        proc = run_micropython(["firmware/tools/verify_credential.py", *files, *opts], heap="256K")
        out, code = proc.stdout, proc.returncode
    got = json.loads(out.strip().splitlines()[-1])
    assert (got["reason"], got["serial"], got["staff"]) == (case["expect"], case["serial"], case["staff"])
    assert code == (0 if case["expect"] == "ok" else 1)


@pytest.mark.micropython
def test_store_never_raises_on_hostile_lists_under_micropython(tmp_path: Path) -> None:
    """Mutated lists (bit flips, cuts, inserted bytes, a byte in the middle of the 192 list) offered
    to the store under MicroPython at a reader-sized heap: a status every time, never an exception,
    and the held list still answers afterwards."""
    files = [
        str(NATIONAL / c["file"]) for c in NM["trust_cases"] if (NATIONAL / c["file"]).stat().st_size < 4096
    ]
    code = f"""
import os, cose_key, trust_store, toolkit
root = cose_key.load(open({str(NATIONAL / "root.cose_key")!r}, 'rb').read())
d = {str(tmp_path)!r}
st = trust_store.TrustStore(root, d)
big = {str(NATIONAL / "trust_ok_192_pycose.cbor")!r}
with open(big, 'rb') as f, open(d + '/big.cbor', 'wb') as g:
    g.write(f.read())
assert st.offer(d + '/big.cbor') == 'ok'
kid = st._kids[0:8]
srcs = [open(p, 'rb').read() for p in {files!r}]
rng = toolkit.Rng(2026)
seen = {{}}
for i in range(400):
    b = bytearray(srcs[rng.below(len(srcs))])
    at = rng.below(len(b))
    op = i % 4
    if op == 0:
        b[at] ^= 1 << rng.below(8)
    elif op == 1:
        b = b[:at]
    elif op == 2:
        b = b[:at] + bytes([rng.below(256)]) + b[at:]
    else:
        b[at] = rng.below(256)
        b[rng.below(len(b))] = rng.below(256)
    r = st.update(bytes(b))
    seen[r] = seen.get(r, 0) + 1
    if r == 'ok':  # a harmless change (the list still verifies): start again from the big list
        st.close()
        for n in os.listdir(d):
            os.remove(d + '/' + n)
        with open(big, 'rb') as f, open(d + '/big.cbor', 'wb') as g:
            g.write(f.read())
        st = trust_store.TrustStore(root, d)
        assert st.offer(d + '/big.cbor') == 'ok'
    assert st.get(kid) is not None
print(sorted(seen.items()))
"""
    proc = run_micropython(["-c", code], heap="256K")
    assert proc.returncode == 0, proc.stderr
    got = dict(ast.literal_eval(proc.stdout.strip().splitlines()[-1]))
    known = {
        "ok",
        "noop",
        "rollback",
        "malformed",
        "unsupported_alg",
        "unknown_root",
        "bad_signature",
        "too_large",
    }
    assert set(got) <= known and sum(got.values()) == 400
    assert got.get("malformed", 0) > 50 and got.get("bad_signature", 0) > 50


@pytest.mark.parametrize(
    "name", ["trust_ok_192_pycose.cbor", "trust_ok_256_cwt_128k.cbor", "trust_ok_256_p256_entries.cbor"]
)
def test_store_records_match_the_list(tmp_path: Path, name: str) -> None:
    """Every issuer read back from the index (one record, its key inside) equals what the whole
    list parses to, and no record straddles a LittleFS block (a read that crosses one walks the
    file's skip-list again: the lookup's flash time rests on this)."""
    import cose_key
    import trust
    import trust_store
    from sim import lfs_timing

    root = cose_key.load((NATIONAL / "root.cose_key").read_bytes())
    blob = (NATIONAL / name).read_bytes()
    status, _seq, _iat, want = trust.parse(blob, root)
    assert status == "ok"
    st = trust_store.TrustStore(root, str(tmp_path))
    assert st.update(blob) == "ok" and st.count == len(want)
    for i in range(st.count):
        kid = st._kids[i * 8 : i * 8 + 8]
        w, got = want[kid], st.get(kid)
        assert got is not None
        assert (got.nbf, got.exp, got.lo, got.hi) == (w.nbf, w.exp, trust.clamp(w.lo), trust.clamp(w.hi))
        g, k = got.key, w.key
        assert (g.kid, g.kty, g.n, g.k, g.x, g.y) == (k.kid, k.kty, k.n, k.k, k.x, k.y)
        off = int.from_bytes(st._loc[i * 4 : i * 4 + 3], "big")
        end = off + 2 * st._loc[i * 4 + 3] - 1
        assert lfs_timing.ctz_index(off)[0] == lfs_timing.ctz_index(end)[0], (i, off, end)
    assert st.name(st._kids[0:8]) == want[st._kids[0:8]].name
    size = (tmp_path / "trust.idx").stat().st_size  # skip-list walks do not start 1 block a time
    assert lfs_timing.ctz_index(size - 1)[0] % 4 != 3
    for kid in want:  # unknown kids beside known ones (the same first byte), and odd lengths
        near = kid[:7] + bytes([kid[7] ^ 1])
        assert near in want or st.get(near) is None
    assert st.get(b"") is None and st.get(kid + b"\x00") is None and st.errors == 0
    st.close()


def test_index_upgrade_and_power_cut(tmp_path: Path) -> None:
    """An index of another version (version 1 kept moduli in trust.cbor) is rebuilt from the
    held list at boot; an install cut off by a power loss (new list renamed in, the old index
    still there, a half-written index and scratch file beside) comes back as the new list."""
    import cose_key
    import trust_store

    root = cose_key.load((NATIONAL / "root.cose_key").read_bytes())
    blob = (NATIONAL / "trust_ok_192_pycose.cbor").read_bytes()
    st = trust_store.TrustStore(root, str(tmp_path))
    assert st.update(blob) == "ok"
    st.close()
    idx = tmp_path / "trust.idx"
    good = idx.read_bytes()
    idx.write_bytes(good[:4] + b"\x01" + good[5:])
    kid = bytes.fromhex(NM["trust_cases"][0]["lookup"][1])
    st = trust_store.TrustStore(root, str(tmp_path))
    assert st.load_held() == "ok" and st.get(kid) is not None
    st.close()
    assert idx.read_bytes() == good
    # the power cut: an index that belongs to another list, leftovers of the interrupted install
    idx.write_bytes(good.replace(good[23:55], bytes(32)))
    (tmp_path / "trust.idx.new").write_bytes(good[:1000])
    (tmp_path / "trust.rec").write_bytes(b"\x00" * 52)
    st = trust_store.TrustStore(root, str(tmp_path))
    assert st.load_held() == "ok" and st.count == 192 and st.get(kid) is not None
    st.close()
    assert idx.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trust.cbor", "trust.idx"]


def test_abandoned_install_leaves_the_held_list(tmp_path: Path) -> None:
    """Closing offer_steps while the index is being written (a step at a time) installs nothing
    and leaves no scratch or half index behind; lookups on the held list work between steps."""
    import cose_key
    import trust_store

    root = cose_key.load((NATIONAL / "root.cose_key").read_bytes())
    st = trust_store.TrustStore(root, str(tmp_path))
    assert st.update((NATIONAL / "trust_ok_192_pycose.cbor").read_bytes()) == "ok"
    seq, held_kid = st.seq, st._kids[0:8]
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    offered = tmp_path / "offer.cbor"
    offered.write_bytes((NATIONAL / "trust_ok_256_cwt_128k.cbor").read_bytes())
    gen = st.offer_steps(str(offered))
    while not (tmp_path / "trust.idx.new").exists():
        assert next(gen) is None
    assert next(gen) is None  # one more bounded step of index records
    assert st.get(held_kid) is not None and st.seq == seq
    gen.close()
    names = {p.name for p in tmp_path.iterdir()}
    assert names == set(before) | {"offer.cbor"}, names
    assert {n: (tmp_path / n).read_bytes() for n in before} == before
    st.close()
