"""Shared set-up for the card issuance tests: a migrated gateway database, an RSA issuer with a
small serial range, DESFire master keys, blank simulated cards."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from cbcc.issuance.service import Issuer, Staff, Station
from gateway.db import make_engine, migrate
from provisioning import card_keys
from provisioning.encoders.rfstack import blank_card
from trustcore import keys
from trustcore.trust_list import IssuerEntry

_KEY: list[keys.PrivateKey] = []
CARD_KEYS = card_keys.CardMasterKeys(bytes(range(0x10, 0x20)), bytes(range(0x20, 0x30)),
                                     bytes(range(0x30, 0x40)), bytes(range(0x40, 0x50)))  # fmt: skip
STATION = Station(operator="nguyen.van.a", station="hn-snv-quay1")
STAFF = [
    Staff("079201000001", "Nguyễn Văn An", "Sở Nội vụ Hà Nội", "Phòng Tổ chức", "Chuyên viên"),
    Staff("079201000002", "Trần Thị Bình", "Sở Nội vụ Hà Nội", "Văn phòng", "Trưởng phòng"),
    Staff("079201000003", "Lê Hoàng Cường", "Sở Nội vụ Hà Nội", "", ""),
]


def issuer_key() -> keys.PrivateKey:
    if not _KEY:
        _KEY.append(keys.generate_rsa(2048))
    return _KEY[0]


def make_issuer(lo: int = 1000000, hi: int = 1000100, key: keys.PrivateKey | None = None) -> Issuer:
    k = key or issuer_key()
    now = int(time.time())
    entry = IssuerEntry(k.public_key(), now - 86400, now + 10 * 365 * 86400, lo, hi, "Sở Nội vụ Hà Nội")
    return Issuer(k, entry, "000.00.01.H26", CARD_KEYS)


def database(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    migrate(url)
    return make_engine(url)


def uid_for(i: int) -> bytes:
    return bytes([0x04, 0x5A, 0x10, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF, 0x80])


def new_card(i: int = 1, **kw: Any) -> Any:
    return blank_card(uid_for(i), **kw)
