"""Root replacement: signed root transitions (trustcore/root_transition.py, firmware/lib/root_chain.py).

A chain of three transitions (root 0 → 1 → 2 → 3); readers at every seq catch up in order; a
rollback, a replay, links out of order, a link signed by the wrong key, a tampered link and a
malformed chain are refused with the held root kept. The reader (MicroPython and CPython) and the
host give the same status for every case. After a transition the trust store takes lists signed
by the new root only, and a list accepted under the old root still loads at boot. The CLI makes
and checks chains; a reader offline through two transitions catches up through Mosquitto.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from support.host import NOW, T2024, T2044, rsa_key
from support.micropython_runner import run_micropython
from test_uplink import Env, Reader, clean_lists, env, readers, start  # noqa: F401 - fixtures
from typer.testing import CliRunner

from trustcore import cbor_det, cose, keys, root_transition, trust_list


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI texts matched here are the English ids (tests/messages checks the Vietnamese)."""
    monkeypatch.setenv("CBCC_LANG", "en")


@functools.cache
def roots() -> list[Any]:
    return [rsa_key(f"root-{i}", 3072) for i in range(4)]


def link(i: int, seq: int | None = None, signer: Any = None, new: Any = None) -> bytes:
    """Transition i → i+1 (seq i+1), optionally with another seq, signer or new key."""
    r = roots()
    return root_transition.build_link(signer or r[i], (new or r[i + 1]).public_key(),
                                      i + 1 if seq is None else seq, NOW)  # fmt: skip


def cases() -> list[tuple[str, bytes, int, str]]:
    """(name, chain, held seq, expected status); the reader at held seq holds roots()[held]."""
    good = [link(0), link(1), link(2)]
    tampered = bytearray(good[1])
    tampered[-5] ^= 1
    other = rsa_key("not-a-root", 3072)
    kid0 = keys.kid_of(roots()[0].public_key())
    bad = {0: "root", 1: 1, 2: 1, 3: NOW, 4: "not a key", 5: kid0}
    bad_payload = cose.sign1(cbor_det.dumps(bad), roots()[0])
    wrong_prev = cose.sign1(cbor_det.dumps({0: "root", 1: 1, 2: 1, 3: NOW,
                                            4: keys.cose_key_map(roots()[1].public_key()),
                                            5: b"\x00" * 8}), roots()[0])  # fmt: skip
    chain = root_transition.build_chain
    return [
        ("ok_from_pinned", chain(good), 0, "ok"),
        ("ok_one_behind", chain(good), 2, "ok"),
        ("ok_two_behind", chain(good), 1, "ok"),
        ("ok_first_only", chain(good[:1]), 0, "ok"),
        ("noop_replay", chain(good), 3, "noop"),
        ("rollback_shorter_chain", chain(good[:2]), 3, "rollback"),
        ("out_of_order_swapped", chain([good[0], good[2], good[1]]), 0, "unknown_root"),
        ("out_of_order_seq", chain([good[0], link(1, seq=3)]), 0, "out_of_order"),
        ("out_of_order_gap", chain([good[0], good[2]]), 0, "unknown_root"),
        ("unknown_root_forged", chain([link(0, signer=other)]), 0, "unknown_root"),
        ("bad_signature_tampered", chain([good[0], bytes(tampered)]), 0, "bad_signature"),
        ("bad_signature_tampered_behind", chain([good[0], bytes(tampered), good[2]]), 1, "bad_signature"),
        ("malformed_key", chain([bad_payload]), 0, "malformed"),
        ("malformed_prev_kid", chain([wrong_prev]), 0, "malformed"),
        ("malformed_not_array", cbor_det.dumps({1: good[0]}), 0, "malformed"),
        ("malformed_empty", cbor_det.dumps([]), 0, "malformed"),
        ("malformed_truncated", chain(good)[:-7], 0, "malformed"),
        ("too_large", b"\x00" * 16385, 0, "too_large"),
    ]


def _reader_status(blob: bytes, held: int, folder: Path) -> tuple[str, int, bytes]:
    import cose_key
    import root_chain
    import statefile

    r = roots()
    pinned = cose_key.load(keys.cose_key_bytes(r[0].public_key()))
    for p in folder.iterdir():
        p.unlink()
    rc = root_chain.RootChain(pinned, str(folder))
    if held:
        # a reader that took the first `held` transitions earlier
        statefile.write(
            str(folder / "root.state"),
            cbor_det.dumps([held, [keys.cose_key_bytes(r[i].public_key()) for i in range(1, held + 1)]]),
        )
        assert rc.load_held() == "ok" and rc.seq == held
    st = rc.update(blob)
    return st, rc.seq, rc.key.kid


def test_reader_and_host_agree(tmp_path: Path) -> None:
    r = roots()
    for name, blob, held, want in cases():
        host = root_transition.verify_chain(blob, r[held].public_key(), held)
        assert host.status == want, name
        st, seq, kid = _reader_status(blob, held, tmp_path)
        assert st == want, name
        if want == "ok":
            n = len(root_transition.read_chain(blob))
            assert (seq, kid) == (n, keys.kid_of(r[n].public_key())), name
            assert host.root is not None and keys.kid_of(host.root) == kid
        else:
            assert (seq, kid) == (held, keys.kid_of(r[held].public_key())), f"{name}: root not kept"


@pytest.mark.micropython
def test_reader_under_micropython(tmp_path: Path) -> None:
    r = roots()
    (tmp_path / "root0.cose_key").write_bytes(keys.cose_key_bytes(r[0].public_key()))
    keyfiles = []
    for i in range(1, 4):
        (tmp_path / f"root{i}.cose_key").write_bytes(keys.cose_key_bytes(r[i].public_key()))
        keyfiles.append(str(tmp_path / f"root{i}.cose_key"))
    plan = []
    for name, blob, held, want in cases():
        (tmp_path / f"{name}.cbor").write_bytes(blob)
        plan.append([name, str(tmp_path / f"{name}.cbor"), held, want])
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    state = tmp_path / "state"
    state.mkdir()
    code = f"""
import json, cbor, cose_key, root_chain, statefile, os
def rd(p):
    with open(p, 'rb') as f:
        return f.read()
pinned = cose_key.load(rd({str(tmp_path / "root0.cose_key")!r}))
later = [rd(p) for p in {keyfiles!r}]
out = {{}}
for name, path, held, want in json.load(open({str(tmp_path / "plan.json")!r})):
    for n in os.listdir({str(state)!r}):
        os.remove({str(state)!r} + '/' + n)
    if held:
        statefile.write({str(state)!r} + '/root.state', cbor.encode([held, later[:held]]))
    rc = root_chain.RootChain(pinned, {str(state)!r})
    rc.load_held()
    out[name] = [rc.update(rd(path)), rc.seq]
print(json.dumps(out))
"""
    proc = run_micropython(["-c", code], heap="1M")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, blob, held, want in cases():
        n = len(root_transition.read_chain(blob)) if want == "ok" else held
        assert got[name] == [want, n], name


def test_trust_store_follows_the_root(tmp_path: Path) -> None:
    import cose_key
    import root_chain
    import trust_store

    r = roots()
    issuer = rsa_key("issuer-root-test")
    entry = trust_list.IssuerEntry(issuer.public_key(), T2024, T2044, 1000, 2000, "Sở Nội vụ")
    pinned = cose_key.load(keys.cose_key_bytes(r[0].public_key()))
    st = trust_store.TrustStore(pinned, str(tmp_path))
    rc = root_chain.RootChain(pinned, str(tmp_path), (st,))
    assert st.update(trust_list.build(r[0], 5, NOW, [entry])) == "ok"
    assert rc.update(root_transition.build_chain([link(0), link(1)])) == "ok"
    assert st.root.kid == keys.kid_of(r[2].public_key())
    # a list signed by a root the reader has left behind is not taken
    assert st.update(trust_list.build(r[0], 6, NOW, [entry])) == "unknown_root"
    assert st.update(trust_list.build(r[1], 6, NOW, [entry])) == "unknown_root"
    assert st.seq == 5
    # after a reboot the list accepted under root 0 still loads (old_roots), the root is root 2
    st.close()
    st2 = trust_store.TrustStore(pinned, str(tmp_path))
    rc2 = root_chain.RootChain(pinned, str(tmp_path), (st2,))
    assert rc2.load_held() == "ok" and rc2.seq == 2
    assert st2.load_held() == "ok" and st2.seq == 5 and st2.get(entry.kid) is not None
    assert st2.update(trust_list.build(r[2], 6, NOW, [entry])) == "ok"
    st2.close()


def test_cli_makes_and_checks_the_chain(tmp_path: Path) -> None:
    from cbcc.app import app

    runner = CliRunner()
    pw = tmp_path / "pw"
    pw.write_text("a long enough passphrase for tests\n")
    for i in range(3):
        res = runner.invoke(
            app, ["keys", "init-root", "--out", str(tmp_path / f"r{i}"), "--passphrase-file", str(pw)]
        )
        assert res.exit_code == 0, res.output
    chain = tmp_path / "root.chain"

    def transition(cur: int, new: int) -> Any:
        args = ["keys", "root-transition", "--root-key", str(tmp_path / f"r{cur}" / "root.key.pem"),
                "--new-root", str(tmp_path / f"r{new}" / "root.cose_key"), "--chain", str(chain),
                "--pinned", str(tmp_path / "r0" / "root.cose_key"), "--passphrase-file", str(pw)]  # fmt: skip
        return runner.invoke(app, args)

    assert transition(0, 1).exit_code == 0
    wrong = transition(0, 2)  # root 0 is no longer the current root
    assert wrong.exit_code != 0 and "not the current root" in " ".join(wrong.output.split())
    res = transition(1, 2)
    assert res.exit_code == 0, res.output
    assert "root transition 2" in res.output
    show = runner.invoke(
        app, ["keys", "show-root-chain", str(chain), "--root", str(tmp_path / "r0" / "root.cose_key")]
    )
    assert show.exit_code == 0 and "status: ok" in show.output
    r2 = keys.load_cose_key((tmp_path / "r2" / "root.cose_key").read_bytes())
    assert keys.kid_of(r2).hex() in show.output
    r2_file = str(tmp_path / "r2" / "root.cose_key")
    again = runner.invoke(app, ["keys", "show-root-chain", str(chain), "--root", r2_file, "--held-seq", "2"])
    assert again.exit_code == 1 and "noop" in again.output


@pytest.mark.micropython
def test_offline_reader_catches_up_through_the_broker(
    env: Env,  # noqa: F811
    tmp_path: Path,
    readers: list[Reader],  # noqa: F811
    clean_lists: None,  # noqa: F811
) -> None:
    rid, gw = "rdr-list", env.gw
    r = roots()
    pinned = tmp_path / "root0.cose_key"
    pinned.write_bytes(keys.cose_key_bytes(r[0].public_key()))
    opts = {"report_every": 0, "trust_store": True, "root_chain": True, "root": str(pinned)}
    issuer = rsa_key("issuer-root-broker")
    entry = trust_list.IssuerEntry(issuer.public_key(), T2024, T2044, 5000, 6000, "Sở Nội vụ")
    reader = start(readers, env, rid, tmp_path, **opts)
    reader.wait("connected")
    m = reader.mark()
    gw.offer_list("trust", trust_list.build(r[0], 3, NOW, [entry]), 3)
    reader.applied("trust", "ok", start=m, timeout=60)
    reader.kill()  # offline while the root changes twice
    # the new root's list is published first (readers on root 0 refuse it: unknown_root) ...
    gw.offer_list("trust", trust_list.build(r[2], 4, NOW, [entry]), 4)
    reader2 = start(readers, env, rid, tmp_path, **opts)
    assert reader2.ready["held"]["trust"] == "ok"
    reader2.applied("trust", "unknown_root", timeout=60)
    # ... then the chain: the reader walks 0 → 1 → 2 and takes the list again
    m = reader2.mark()
    gw.offer_list("root", root_transition.build_chain([link(0), link(1)]), 2)
    reader2.applied("root", "ok", start=m, timeout=60)
    reader2.applied("trust", "ok", start=m, timeout=60)
    s = reader2.stats()
    assert (s["root"], s["trust"], s["root_kid"]) == (2, 4, keys.kid_of(r[2].public_key()).hex())
    # refused: the shorter chain (rollback, from its manifest), a forged third link
    m = reader2.mark()
    gw.offer_list("root", root_transition.build_chain([link(0)]), 1)
    reader2.applied("root_manifest", "rollback", start=m)
    forged = root_transition.build_chain([link(0), link(1), link(2, signer=rsa_key("not-a-root", 3072))])
    gw.offer_list("root", forged, 3)
    reader2.applied("root", "unknown_root", start=m, timeout=60)
    assert reader2.stats()["root"] == 2
    reader2.kill()
    reader3 = start(readers, env, rid, tmp_path, **opts)
    assert reader3.ready["held"]["root"] == "ok" and reader3.ready["held"]["trust"] == "ok"
    assert reader3.stats()["root"] == 2
    gw.clear_retained("cbcc/v1/all/root")
