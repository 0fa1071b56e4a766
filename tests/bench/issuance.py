"""Card issuance speed (docs/card-issuance.md, "Speed").

    uv run python tests/bench/issuance.py [--cards 1000] [--encoder-rounds 5]

1. A batch of ``--cards`` blank simulated DESFire EV3 cards issued through the virtual encoder
   (the reader's MFRC522 driver on CPython + the RF simulator) into a SQLite gateway database,
   RSA-2048 issuer key: cards per minute of wall time on this machine, and per card the host's
   share (everything outside the encoder: probe logic, DESFire crypto, signing, database) and the
   encoder's (driver + simulator on this CPU), p50 / p99 / worst.
2. One card's personalisation on the ESP32 encoder, projected: the firmware's encoder side under
   the MicroPython unix port (firmware/tools/bench_encoder.py): modelled RF/SPI time + encoder CPU
   x 70 (an upper bound, see that tool) + the USB serial transfer of every frame at 921,600 baud.
3. Bare RSA-2048 signing (PKCS#1 v1.5, SHA-256) and SHA-256 of 1 KiB on this host, same run.

The final line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from support.issuance import STATION, database, make_issuer
from support.micropython_runner import run_micropython

from cbcc.issuance.service import Staff, issue_card
from provisioning.encoders.rfstack import VirtualEncoder, blank_card

BAUD = 921_600


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


class TimedEncoder(VirtualEncoder):
    """The virtual encoder, timing what runs inside it (driver + simulator)."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = 0.0

    def detect(self):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return super().detect()
        finally:
            self.inside += time.perf_counter() - t0

    def transceive(self, apdu: bytes) -> bytes:
        t0 = time.perf_counter()
        try:
            return super().transceive(apdu)
        finally:
            self.inside += time.perf_counter() - t0


def batch(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        engine = database(Path(d))
        issuer = make_issuer(lo=1, hi=n + 1)
        enc = TimedEncoder()
        host_ms: list[float] = []
        enc_ms: list[float] = []
        rf_ms: list[float] = []
        exchanges: list[int] = []
        start = time.perf_counter()
        for i in range(n):
            enc.place(blank_card(b"\x04" + os.urandom(6)))
            staff = Staff(f"CB-{i:08d}", "Nguyễn Văn Thử", "000.00.36.H40", "Phòng Tổ chức", "Chuyên viên")
            inside0, rf0, x0, t0 = enc.inside, enc.rf_us, enc.exchanges, time.perf_counter()
            issue_card(engine, enc, issuer, staff, STATION)
            wall = time.perf_counter() - t0
            inside = enc.inside - inside0
            enc_ms.append(inside * 1000)
            host_ms.append((wall - inside) * 1000)
            rf_ms.append((enc.rf_us - rf0) / 1000)
            exchanges.append(enc.exchanges - x0)
        total = time.perf_counter() - start
    return {
        "cards": n,
        "cards_per_min": n / total * 60,
        "host_share_ms_p50": statistics.median(host_ms),
        "host_share_ms_p99": pct(host_ms, 99),
        "host_share_ms_worst": max(host_ms),
        "virtual_encoder_cpu_ms_p50": statistics.median(enc_ms),
        "virtual_encoder_cpu_ms_worst": max(enc_ms),
        "virtual_modelled_rf_ms_p50": statistics.median(rf_ms),
        "virtual_modelled_rf_ms_worst": max(rf_ms),
        "apdus_per_card": statistics.median(exchanges),
    }


def encoder_projection(rounds: int, rf_ms: float, apdus: float) -> dict[str, float]:
    """The ESP32 encoder for a whole issuance: the virtual encoder's modelled RF time (same driver,
    same card model), the firmware's per-frame CPU and serial bytes scaled from bench_encoder's
    personalisation (fewer commands) to this issuance's APDU count."""
    p = run_micropython(["firmware/tools/bench_encoder.py", "--rounds", str(rounds)], heap="8M", timeout=900)
    if p.returncode != 0:
        raise SystemExit(p.stdout[-2000:] + p.stderr[-2000:])
    got = json.loads(p.stdout.strip().splitlines()[-1])
    scale = apdus / (got["frames"] / 2)
    serial_ms = got["serial_bytes"] * scale * 10 / BAUD * 1000  # 8N1: 10 bits a byte
    cpu = got["encoder_cpu_ms"] * scale
    return {
        "fw_personalise_modelled_rf_ms": got["modelled_rf_ms"],
        "fw_personalise_frames": got["frames"],
        "fw_personalise_encoder_cpu_ms_upper": got["encoder_cpu_ms"],
        "fw_personalise_encoder_cpu_ms_upper_worst": got["encoder_cpu_worst_ms"],
        "esp32_issue_encoder_cpu_ms_upper": cpu,
        "esp32_issue_serial_ms": serial_ms,
        "esp32_issue_card_ms_upper": rf_ms + cpu + serial_ms,
    }


def bare_crypto() -> dict[str, float]:
    issuer = make_issuer()
    key = issuer.signing_key
    data = os.urandom(400)
    n = 50
    t0 = time.perf_counter()
    for _ in range(n):
        key.sign(data, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[call-arg,union-attr]
    sign_ms = (time.perf_counter() - t0) / n * 1000
    blob = os.urandom(1024)
    t0 = time.perf_counter()
    for _ in range(2000):
        h = hashes.Hash(hashes.SHA256())
        h.update(blob)
        h.finalize()
    sha_us = (time.perf_counter() - t0) / 2000 * 1e6
    return {"host_rsa2048_sign_ms": sign_ms, "host_sha256_1k_us": sha_us}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cards", type=int, default=1000)
    ap.add_argument("--encoder-rounds", type=int, default=5)
    args = ap.parse_args()
    out: dict[str, float] = {}
    out.update(bare_crypto())
    out.update(batch(args.cards))
    out.update(encoder_projection(args.encoder_rounds, out["virtual_modelled_rf_ms_p50"],
                                  out["apdus_per_card"]))
    # one encoder, one card at a time: the host's share does not overlap the encoder's
    per_card = out["esp32_issue_card_ms_upper"] + out["host_share_ms_p50"]
    out["esp32_cards_per_min_at_upper_bound"] = 60000 / per_card
    for k, v in out.items():
        print(f"{k:40s} {v:10.3f}")
    print(json.dumps({k: round(v, 3) for k, v in out.items()}))


if __name__ == "__main__":
    main()
