"""Benchmark: the national compact revocation list, size on the wire and lookup on the reader.

    uv run python tests/bench/crl.py [--seed 1] [--probes 6000] [--bucket-entries 64]

Fixture: 2.07 M cards issued by 96 issuers (ministries and central agencies smaller, provinces
larger; sizes log-normal, each issuer's serials a dense range starting in its own allocation),
100 k of them revoked at random (≈ 5 %), and the same with 20 % revoked. For each: the signed
object (header + body) is built by ``trustcore.crl_national``, checked by the host parser,
measured in bits per revoked serial against the entropy floor log2 C(issued, revoked); a delta
of 1,000 new revocations (and one with 1,000 new and 100 unrevoked) is measured in bytes per
entry including its signature. Then ``firmware/tools/bench_crl.py`` runs under the real
MicroPython unix port with a 256 KiB heap: it offers the objects from files (verify, SHA-256,
full structural check), loads them again as at boot, and times lookups of revoked, issued and
never-issued serials read from the flash file; every answer is compared with the fixture.
The final line is one JSON object; ``goals_met`` says whether every goal holds.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.micropython_runner import run_micropython

from trustcore import crl_national, keys

HEAP = "256K"
ISSUED = 2_070_000
ISSUERS = 96
GOAL_BITS = 6.5
GOAL_MS = 3.0
GOAL_DELTA_BYTES = 3.0


def fixture(rng: random.Random) -> tuple[list[crl_national.Range], list[crl_national.Range]]:
    """(issued ranges, allocated ranges): 30 ministries/agencies, 3 large central bodies and
    63 provinces with log-normal sizes scaled to 2.07 M; allocations of whole 100 k blocks with
    headroom, in order, from serial 1,000,000."""
    weights = [rng.lognormvariate(0.0, 0.6) for _ in range(30)]
    weights += [rng.lognormvariate(1.6, 0.3) for _ in range(3)]
    weights += [rng.lognormvariate(1.0, 0.7) for _ in range(ISSUERS - 33)]
    rng.shuffle(weights)
    sizes = [max(500, int(ISSUED * w / sum(weights))) for w in weights]
    sizes[-1] += ISSUED - sum(sizes)
    issued, allocated = [], []
    lo = 1_000_000
    for n in sizes:
        block = -(-(2 * n) // 100_000) * 100_000
        issued.append(crl_national.Range(lo, lo + n))
        allocated.append(crl_national.Range(lo, lo + block))
        lo += block
    return issued, allocated


def pick_revoked(rng: random.Random, issued: list[crl_national.Range], count: int) -> list[int]:
    total = sum(r.hi - r.lo for r in issued)
    offsets = sorted(rng.sample(range(total), count))
    out, base, i = [], 0, 0
    for r in issued:
        n = r.hi - r.lo
        while i < len(offsets) and offsets[i] < base + n:
            out.append(r.lo + offsets[i] - base)
            i += 1
        base += n
    return out


def probes(
    rng: random.Random,
    issued: list[crl_national.Range],
    allocated: list[crl_national.Range],
    revoked: set[int],
    after: set[int],
    n: int,
) -> bytes:
    """9-byte records for firmware/tools/bench_crl.py: a third revoked, a third issued, a third
    never issued (the unissued tail of allocations, between allocations, around ranges)."""
    rev = sorted(revoked | (after - revoked))
    out = bytearray()
    for i in range(n):
        cls = i % 3
        if cls == 0:
            s = rng.choice(rev)
        elif cls == 1:
            r = rng.choice(issued)
            s = rng.randrange(r.lo, r.hi)
        else:
            j = rng.randrange(len(allocated))
            choice = rng.randrange(4)
            if choice == 0:
                s = rng.randrange(issued[j].hi, allocated[j].hi)
            elif choice == 1:
                s = rng.randrange(0, allocated[0].lo)
            elif choice == 2:
                s = issued[j].lo - 1 if issued[j].lo else 0
            else:
                s = issued[j].hi
        flags = int(s in revoked) | (int(s in after) << 1) | (cls << 2)
        out += s.to_bytes(8, "big") + bytes([flags])
    return bytes(out)


def breakdown(blob: bytes) -> dict[str, int]:
    end = crl_national.header_end(blob)
    body = blob[end:]
    nranges = int.from_bytes(body[7:9], "big")
    nbuckets = int.from_bytes(body[13:17], "big")
    w = body[6]
    return {
        "object_bytes": len(blob),
        "header_bytes": end,
        "body_bytes": len(body),
        "ranges": nranges,
        "range_table_bytes": crl_national.RANGE_ENTRY * nranges,
        "buckets": nbuckets,
        "index_bytes": w * (nbuckets + 1),
        "data_bytes": len(body)
        - crl_national.FULL_HEAD
        - crl_national.RANGE_ENTRY * nranges
        - w * (nbuckets + 1),
    }


def run_reader(
    tmp: Path, root: Path, full: bytes, delta: bytes | None, probe_bytes: bytes, tag: str
) -> dict[str, object]:
    (tmp / f"{tag}.full").write_bytes(full)
    (tmp / f"{tag}.probes").write_bytes(probe_bytes)
    args = ["firmware/tools/bench_crl.py", str(root), str(tmp / f"{tag}.full"), str(tmp / f"{tag}.probes"),
            "--dir", str(tmp / f"state-{tag}")]  # fmt: skip
    if delta is not None:
        (tmp / f"{tag}.delta").write_bytes(delta)
        args += ["--delta", str(tmp / f"{tag}.delta")]
    proc = run_micropython(args, heap=HEAP, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"bench_crl.py failed:\n{proc.stdout}\n{proc.stderr}")
    lines = proc.stdout.strip().splitlines()
    print(f"[{tag}] {lines[0]}")
    return dict(json.loads(lines[-1]))


def case(
    tag: str,
    rate_count: int,
    rng: random.Random,
    issued: list[crl_national.Range],
    allocated: list[crl_national.Range],
    root_key: keys.PrivateKey,
    tmp: Path,
    root_file: Path,
    n_probes: int,
    bucket_entries: int,
) -> dict[str, object]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    assert isinstance(root_key, rsa.RSAPrivateKey)
    revoked = pick_revoked(rng, issued, rate_count)
    t0 = time.perf_counter()
    full = crl_national.build_full(
        root_key, 10, int(time.time()), revoked, allocated, bucket_entries=bucket_entries
    )
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    held = crl_national.load(full, root_key.public_key())
    check_s = time.perf_counter() - t0
    assert held.seq == 10 and held.count() == len(revoked), held.detail
    floor = crl_national.entropy_bits(len(revoked), ISSUED)
    res: dict[str, object] = {f"{tag}_revoked": len(revoked), f"{tag}_build_s": round(build_s, 2),
                              f"{tag}_host_check_s": round(check_s, 2)}  # fmt: skip
    for k, v in breakdown(full).items():
        res[f"{tag}_{k}"] = v
    res[f"{tag}_bits_per_revoked"] = round(8 * len(full) / len(revoked), 3)
    res[f"{tag}_data_bits_per_revoked"] = round(8 * int(str(res[f"{tag}_data_bytes"])) / len(revoked), 3)
    res[f"{tag}_index_bits_per_revoked"] = round(8 * int(str(res[f"{tag}_index_bytes"])) / len(revoked), 3)
    res[f"{tag}_entropy_bits_per_revoked"] = round(floor / len(revoked), 3)

    # deltas: 1,000 new revocations; 1,000 new and 100 unrevoked
    revoked_set = set(revoked)
    candidates: set[int] = set()
    while len(candidates) < 1000:
        r = rng.choice(issued)
        s = rng.randrange(r.lo, r.hi)
        if s not in revoked_set:
            candidates.add(s)
    after = revoked_set | candidates
    delta = crl_national.build_delta(root_key, 11, int(time.time()), held, after)
    res[f"{tag}_delta1000_bytes"] = len(delta)
    res[f"{tag}_delta1000_bytes_per_entry"] = round(len(delta) / 1000, 3)
    unrevoked = set(rng.sample(revoked, 100))
    mixed = crl_national.build_delta(root_key, 12, int(time.time()), held, after - unrevoked)
    res[f"{tag}_delta1000_100_bytes"] = len(mixed)
    res[f"{tag}_delta1000_100_bytes_per_entry"] = round(len(mixed) / 1100, 3)
    check = crl_national.load(full, root_key.public_key())
    assert check.offer(mixed) == "ok" and check.count() == len(after - unrevoked), check.detail

    probe_bytes = probes(rng, issued, allocated, revoked_set, after - unrevoked, n_probes)
    reader = run_reader(tmp, root_file, full, mixed, probe_bytes, tag)
    for name, val in reader.items():
        if name not in ("bench", "esp32_factor"):
            res[f"{tag}_reader_{name}"] = val
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--probes", type=int, default=6000)
    ap.add_argument("--bucket-entries", type=int, default=crl_national.DEFAULT_BUCKET_ENTRIES)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    issued, allocated = fixture(rng)
    root_key = keys.generate_rsa(3072)
    result: dict[str, object] = {
        "bench": "crl_national",
        "issued": sum(r.hi - r.lo for r in issued),
        "issuers": len(issued),
        "issuer_sizes_min_max": f"{min(r.hi - r.lo for r in issued)}-{max(r.hi - r.lo for r in issued)}",
        "bucket_entries": args.bucket_entries,
        "micropython_heap": HEAP,
        "esp32_factor": 70,
    }
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        root_file = tmp / "root.cose_key"
        root_file.write_bytes(keys.cose_key_bytes(root_key.public_key()))
        for tag, count in (("p5", 100_000), ("p20", round(ISSUED * 0.2))):
            result.update(
                case(
                    tag,
                    count,
                    rng,
                    issued,
                    allocated,
                    root_key,
                    tmp,
                    root_file,
                    args.probes,
                    args.bucket_entries,
                )
            )

    def fig(key: str) -> float:
        return float(str(result[key]))

    lookups = [
        f"p5_reader_{p}_lookup_ms_projected_{m}" for p in ("full", "delta") for m in ("mean", "worst_bucket")
    ]
    goals = {
        "goal_bits_per_revoked_p5": fig("p5_bits_per_revoked") <= GOAL_BITS,
        "goal_lookup_ms_projected_p5": all(fig(k) <= GOAL_MS for k in lookups),
        "goal_delta_bytes_per_entry": fig("p5_delta1000_bytes_per_entry") <= GOAL_DELTA_BYTES,
        "goal_exact": all(
            fig(f"{t}_reader_{p}_wrong_answers") == 0 for t in ("p5", "p20") for p in ("full", "delta")
        ),
    }
    result.update(goals)
    result["goals_met"] = all(goals.values())
    print(
        f"5 %: {fig('p5_bits_per_revoked'):.3f} bits/revoked "
        f"(floor {fig('p5_entropy_bits_per_revoked'):.3f}); "
        f"lookup projected {fig('p5_reader_full_lookup_ms_projected_mean'):.2f} ms mean, "
        f"{fig('p5_reader_full_lookup_ms_projected_worst_bucket'):.2f} ms longest bucket, "
        f"with a delta {fig('p5_reader_delta_lookup_ms_projected_mean'):.2f} / "
        f"{fig('p5_reader_delta_lookup_ms_projected_worst_bucket'):.2f} ms; "
        f"delta {fig('p5_delta1000_bytes_per_entry'):.2f} B/entry; "
        f"20 %: {fig('p20_bits_per_revoked'):.3f} bits/revoked "
        f"(floor {fig('p20_entropy_bits_per_revoked'):.3f})"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
