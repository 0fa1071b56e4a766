"""Benchmark: one tap through the terminal (issue "door and attendance terminal firmware").

    uv run python tests/bench/tap.py [--bitrate 424] [--rounds 15] [--gc-after-tap 1|0] [--issuers 192]

With --issuers N (> 1) the trust list holds N RSA-2048 issuers (the bench's own and N - 1 public
keys of tests/vectors/national) and the reader keeps it in its on-flash store (trust_store.py,
credential-v1 amendment 1): every first tap looks its issuer up on flash.

Prepares signed material with the project's own provisioning code (root, issuer, trust list,
revocation list, a signed door configuration, a credential), runs firmware/tools/bench_read.py
(the DESFire read against the RF simulator) and firmware/tools/bench_tap.py (the decision
pipeline on the unix port; RAM is the pipeline's own high-water mark) and prints their
figures; the final line is one JSON object with first_tap_ms, repeat_tap_ms,
journal_append_ms and the RAM high-water mark.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.micropython_runner import run_micropython

from trustcore import credential, keys, revocation, trust_list
from trustcore import reader_config as host_config

UID = "04A1B2C3D4E5F6"
CONFIG = {
    "reader_id": "bench", "timezone": "UTC+07:00",
    "group": [{"id": "all", "everyone": True}],
    "schedule": [{"id": "always", "weekly": ["Mon-Sun 00:00-24:00"]}],
    "door": [{"id": "d", "name": "Cổng chính", "requires_anti_clone": True}],
    "rule": [{"groups": ["all"], "doors": ["d"], "schedule": "always"}],
}  # fmt: skip


def _last_json(out: str) -> dict[str, object]:
    return dict(json.loads(out.strip().splitlines()[-1]))


def _more_issuers(n: int) -> list[trust_list.IssuerEntry]:
    """n public keys from the 256-issuer vector list, with serial ranges above the bench's own."""
    if n <= 0:
        return []
    national = Path(__file__).resolve().parents[1] / "vectors" / "national"
    root = keys.load_cose_key((national / "root.cose_key").read_bytes())
    got = trust_list.load((national / "trust_ok_256_cwt_128k.cbor").read_bytes(), root)
    assert got.trust_list is not None
    out = []
    for i, e in enumerate(sorted(got.trust_list.entries.values(), key=lambda e: e.serial_lo)[:n]):
        lo = 10_000_000 * (i + 1)
        out.append(trust_list.IssuerEntry(e.public_key, e.nbf, e.exp, lo, lo + 10_000_000, e.name))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bitrate", default="424")
    ap.add_argument("--rounds", default="15")
    ap.add_argument("--gc-after-tap", default="1", help="0: no collection after a decision (the old tail)")
    ap.add_argument("--issuers", type=int, default=1)
    args = ap.parse_args()
    now = int(time.time())
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        root = keys.generate_rsa(keys.ROOT_BITS)
        issuer = keys.generate_rsa(keys.ISSUER_BITS)
        cfg_key = keys.generate_rsa(keys.ISSUER_BITS)
        entry = trust_list.IssuerEntry(issuer.public_key(), now - 86400 * 365, now + 86400 * 3650,
                                       1_000_000, 2_000_000, "Sở Nội vụ")  # fmt: skip
        claims = credential.claims_from_record({
            "serial": 1_000_001, "staff": "CB-01-0000001", "name": "Nguyễn Thị Hương",
            "agency": "000.00.31.H26", "unit": "Phòng Tổ chức cán bộ", "position": "Trưởng phòng",
            "title": "Chuyên viên chính",
            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 86400)),
            "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 86400 * 1800)),
            "uid": UID, "gen": 1,
        })  # fmt: skip
        files = {
            "root.cose_key": keys.cose_key_bytes(root.public_key()),
            "config.cose_key": keys.cose_key_bytes(cfg_key.public_key()),
            "trust.cbor": trust_list.build(root, 1, now, [entry, *_more_issuers(args.issuers - 1)]),
            "crl.cbor": revocation.build(root, 1, now, list(range(1_500_000, 1_502_000, 7))),
            "reader.cfg": host_config.build(CONFIG, cfg_key, 1, now),
            "cred.cbor": credential.mint(claims, issuer),
        }
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        store = tmp / "store"
        store.mkdir()
        read = run_micropython(
            ["firmware/tools/bench_read.py", "--card", "desfire-ev3", "--bitrate", args.bitrate],
            timeout=1800,
        )
        if read.returncode != 0:
            raise SystemExit(read.stderr or read.stdout)
        (tmp / "read.json").write_text(json.dumps(_last_json(read.stdout)))
        again = run_micropython(
            ["firmware/tools/bench_read.py", "--card", "desfire-ev3", "--bitrate", args.bitrate,
             "--cached", "1"],
            timeout=1800,
        )
        if again.returncode != 0:
            raise SystemExit(again.stderr or again.stdout)
        (tmp / "read2.json").write_text(json.dumps(_last_json(again.stdout)))
        tap = run_micropython(
            ["firmware/tools/bench_tap.py", str(tmp / "cred.cbor"), str(tmp / "trust.cbor"),
             str(tmp / "root.cose_key"), "--uid", UID, "--now", str(now), "--crl", str(tmp / "crl.cbor"),
             "--config", str(tmp / "reader.cfg"), "--config-key", str(tmp / "config.cose_key"),
             "--read-json", str(tmp / "read.json"), "--repeat-read-json", str(tmp / "read2.json"),
             "--rounds", args.rounds, "--gc-after-tap", args.gc_after_tap,
             *(["--trust-store", str(store)] if args.issuers > 1 else [])],
            heap="1M", timeout=1800,  # the simulator package (flash model) is loaded too
        )  # fmt: skip
        if tap.returncode != 0:
            raise SystemExit(tap.stderr or tap.stdout)
        print(tap.stdout.strip())


if __name__ == "__main__":
    main()
