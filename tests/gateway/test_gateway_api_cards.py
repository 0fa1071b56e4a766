"""Cards through the REST API: who may see them, scoping by the staff member's unit, and the
local lock of a lost card (applied at once, flagged for the national database, list published)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_gateway_api import Env, make_env

from gateway import crl_publisher
from gateway.crl_publisher import CrlPublisher, local_root_signer
from gateway.models import AuditEntry, Card, CardChange, StaffRecord
from trustcore import keys


@pytest.fixture
def cenv(db_url: str, tmp_path: Path) -> Iterator[Env]:
    url = db_url  # SQLite and PostgreSQL (tests/conftest.py)
    e = make_env(url)
    now = datetime.now(UTC)
    with e.engine.begin() as conn:
        conn.execute(
            sa.insert(StaffRecord.__table__),
            [  # type: ignore[attr-defined]
                {
                    "staff_code": "CB0001",
                    "full_name": "Nguyễn Thị Hương",
                    "agency_code": "H01.02",
                    "unit": "Phòng TCCB",
                    "position": "",
                    "active": True,
                    "updated_at": now,
                },
                {
                    "staff_code": "CB0002",
                    "full_name": "Trần Văn Đức",
                    "agency_code": "H02.01",
                    "unit": "",
                    "position": "",
                    "active": True,
                    "updated_at": now,
                },
            ],
        )
        conn.execute(
            sa.insert(Card.__table__),
            [  # type: ignore[attr-defined]
                {
                    "serial": 1001,
                    "staff_code": "CB0001",
                    "issuer": "H01",
                    "gen": 1,
                    "status": "issued",
                    "updated_at": now,
                    "pending_upstream": False,
                },
                {
                    "serial": 1002,
                    "staff_code": "CB0002",
                    "issuer": "H02",
                    "gen": 1,
                    "status": "issued",
                    "updated_at": now,
                    "pending_upstream": False,
                },
                {
                    "serial": 1003,
                    "staff_code": "CB0001",
                    "issuer": "H01",
                    "gen": 2,
                    "status": "issued",
                    "updated_at": now,
                    "pending_upstream": False,
                },
            ],
        )
    yield e
    crl_publisher.install(None)
    e.client.close()
    e.engine.dispose()


def _h(e: Env, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {e.tokens[who]}"}


def test_card_read_roles_and_scope(cenv: Env) -> None:
    c = cenv.client
    for who in ("admin", "facility", "hr", "auditor"):
        r = c.get("/api/v1/cards/1001", headers=_h(cenv, who))
        assert r.status_code == 200, (who, r.text)
        assert r.json()["full_name"] == "Nguyễn Thị Hương" and r.json()["status"] == "issued"
    assert c.get("/api/v1/cards/1001", headers=_h(cenv, "facility_h1")).status_code == 200
    assert c.get("/api/v1/cards/1002", headers=_h(cenv, "facility_h1")).status_code == 404  # other unit
    assert c.get("/api/v1/cards/9999", headers=_h(cenv, "admin")).status_code == 404
    r = c.get("/api/v1/cards", params={"staff_code": "CB0001"}, headers=_h(cenv, "hr"))
    assert [x["serial"] for x in r.json()["items"]] == [1001, 1003]
    r = c.get("/api/v1/cards", params={"staff_code": "CB0002"}, headers=_h(cenv, "hr_h1"))
    assert r.json()["items"] == []


def test_lock_a_lost_card(cenv: Env, tmp_path: Path) -> None:
    c = cenv.client
    root = keys.generate_rsa(3072)
    pub = CrlPublisher(
        cenv.engine,
        local_root_signer(root),
        root.public_key(),
        keys.generate_rsa(2048),
        lambda *_a: None,
        tmp_path / "ncrl",
    )
    pub.tick()
    crl_publisher.install(pub)
    assert c.post("/api/v1/cards/1001/lock", json={"reason": "x"}, headers=_h(cenv, "hr")).status_code == 403
    assert c.post("/api/v1/cards/1002/lock", json={}, headers=_h(cenv, "facility_h1")).status_code == 404
    r = c.post("/api/v1/cards/1001/lock", json={"reason": "Báo mất thẻ"}, headers=_h(cenv, "facility_h1"))
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["card"]["status"] == "locked" and body["card"]["pending_upstream"] is True
    # (on a three-card list a full list is smaller than a delta; the publisher picks the smaller)
    assert body["list_kind"] in ("delta", "full") and body["list_seq"] is not None
    again = c.post("/api/v1/cards/1001/lock", json={}, headers=_h(cenv, "facility"))
    assert again.status_code == 409 and again.json()["code"] == "not_issued"
    with cenv.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(CardChange)).scalar() == 1
        acts = [a for (a,) in conn.execute(sa.select(AuditEntry.action))]  # type: ignore[call-overload]
    assert "card.lock" in acts
