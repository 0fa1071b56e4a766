"""Benchmark: the reader's full credential verification vs the bare RSA math, under MicroPython.

    uv run python tests/bench/verify.py [--rounds R] [--per-round N] [--fuzz-cases N]

Runs ``firmware/tools/bench_verify.py`` on the committed test vectors (an RS256-2048
credential that passes all nine checks, with a revocation list loaded) under the real
MicroPython unix port with a 256 KiB heap (an ESP32 application has about that much), then the
mutation fuzzer. The final line is one JSON object with the figures and the ESP32 projection.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.micropython_runner import ROOT, run_micropython

VECTORS = ROOT / "tests" / "vectors"
HEAP = "256K"


def _valid_case(manifest: dict[str, object]) -> dict[str, object]:
    cases = manifest["cases"]
    assert isinstance(cases, list)
    for case in cases:
        if case["expect"] == "ok" and case["crl"] and not case.get("trust"):
            return dict(case)
    raise SystemExit("no valid credential with a revocation list in tests/vectors/manifest.json")


def _last_json(stdout: str) -> dict[str, object]:
    return dict(json.loads(stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--per-round", type=int, default=40)
    ap.add_argument("--fuzz-cases", type=int, default=100_000)
    args = ap.parse_args()

    manifest = json.loads((VECTORS / "manifest.json").read_text())
    case = _valid_case(manifest)
    common = [
        str(VECTORS / str(case["file"])),
        str(VECTORS / manifest["trust"]),
        str(VECTORS / manifest["root"]),
        "--uid", str(case["uid"]),
        "--now", str(case["now"]),
        "--crl", str(VECTORS / manifest["crl"]),
    ]
    bench = run_micropython(
        ["firmware/tools/bench_verify.py", *common,
         "--rounds", str(args.rounds), "--per-round", str(args.per_round)],
        heap=HEAP,
        timeout=1800,
    )
    if bench.returncode != 0:
        raise SystemExit(bench.stderr or bench.stdout)
    print(bench.stdout.strip().splitlines()[0])
    figures = _last_json(bench.stdout)

    fuzz = run_micropython(
        ["firmware/tools/fuzz_verify.py", *common, "--cases", str(args.fuzz_cases)],
        heap=HEAP,
        timeout=3600,
    )
    fuzz_figures = _last_json(fuzz.stdout)
    print("fuzz: {cases} cases, {crashes} crashes, {seconds} s".format(**fuzz_figures))

    result = {
        "bench": "trust_core",
        "micropython_heap": HEAP,
        **{k: v for k, v in figures.items() if k != "bench"},
        "goal_ratio": 1.10,
        "meets_goal": float(figures["ratio"]) <= 1.10,  # type: ignore[arg-type]
        "fuzz_cases": fuzz_figures["cases"],
        "fuzz_crashes": fuzz_figures["crashes"],
        "fuzz_us_per_case": fuzz_figures["us_per_case"],
    }
    print(json.dumps(result))
    if fuzz.returncode != 0:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
