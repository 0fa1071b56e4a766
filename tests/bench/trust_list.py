"""Benchmark: the reader's on-flash trust list (credential-v1 amendment 1).

    uv run python tests/bench/trust_list.py [--rounds 5]

Runs firmware/tools/bench_trust.py under the MicroPython unix port (256 KiB heap, close to an
ESP32 application's) on the 192-issuer list made by pycose (tests/vectors/national, ≈ 66 KB) and
on the 256-issuer list at exactly 128 KiB: install CPU in bounded steps (what runs between taps),
cold per-tap issuer lookup (CPU, and the LittleFS flash read modelled by
firmware/sim/lfs_timing.py; lookup_kid_*: per issuer, the fastest of the rounds plus its flash
time), the bytes one install writes to flash, RAM, the bare RSA-2048 pow + SHA-256 of the same
run. Then finds the smallest MicroPython heap in which each list still installs (bisection,
4 KiB steps): an upper bound of everything the install needs, interpreter and modules included.
Final line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.micropython_runner import ROOT, run_micropython

NATIONAL = ROOT / "tests" / "vectors" / "national"
LISTS = {"192": "trust_ok_192_pycose.cbor", "256": "trust_ok_256_cwt_128k.cbor"}


def bench(name: str, rounds: str, heap: str = "256K") -> dict[str, object] | None:
    with tempfile.TemporaryDirectory() as d:
        proc = run_micropython(
            ["firmware/tools/bench_trust.py", str(NATIONAL / name), str(NATIONAL / "root.cose_key"), d,
             "--rounds", rounds], heap=heap, timeout=1800,
        )  # fmt: skip
    if proc.returncode != 0:
        return None
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def smallest_heap(name: str) -> int:
    lo, hi = 16, 256  # KiB: fails at lo (or below), works at hi
    while hi - lo > 4:
        mid = (lo + hi) // 2 // 4 * 4
        if bench(name, "1", f"{mid}K") is None:
            lo = mid
        else:
            hi = mid
    return hi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", default="5")
    args = ap.parse_args()
    out: dict[str, object] = {"bench": "trust_list"}
    for label, name in LISTS.items():
        r = bench(name, args.rounds)
        if r is None:
            raise SystemExit(f"bench_trust failed on {name}")
        print(f"{label} issuers: " + json.dumps(r, sort_keys=True))
        for k in (
            "list_bytes",
            "install_total_ms_esp32",
            "install_total_min_of_rounds_ms_esp32",
            "install_step_worst_ms_esp32",
            "install_step_worst_min_of_rounds_ms_esp32",
            "install_step_p99_ms_esp32",
            "install_peak_ram_bytes",
            "held_ram_bytes",
            "lookup_cold_p50_us_unix",
            "lookup_cold_p99_us_unix",
            "lookup_cold_p99_ms_esp32",
            "lookup_cold_worst_ms_esp32",
            "lookup_flash_p50_ms_esp32",
            "lookup_flash_worst_ms_esp32",
            "lookup_cold_p99_with_flash_ms_esp32",
            "lookup_cold_p50_with_flash_host_normalised_ms_esp32",
            "lookup_cold_p99_with_flash_host_normalised_ms_esp32",
            "lookup_kid_cpu_p50_us_unix",
            "lookup_kid_cpu_p99_us_unix",
            "lookup_kid_p50_ms_esp32",
            "lookup_kid_p99_ms_esp32",
            "lookup_kid_worst_ms_esp32",
            "lookup_kid_p50_host_normalised_ms_esp32",
            "lookup_kid_p99_host_normalised_ms_esp32",
            "lookup_kid_worst_host_normalised_ms_esp32",
            "index_bytes",
            "flash_written_bytes",
            "bare_rsa2048_sha256_us_unix",
            "boot_load_held_us_unix",
        ):
            out[f"n{label}_{k}"] = r[k]
        out[f"n{label}_smallest_heap_kib"] = smallest_heap(name)
    out["esp32_factor"] = 70
    out["goals"] = {"lookup_ms": 2, "install": "bounded steps between taps"}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
