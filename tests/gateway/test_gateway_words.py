"""What people read from the API: the events CSV shows words beside codes (decision, reason,
alarm raised or cleared, staff names, the registered door, punch rows marked), and error texts
are sentences in Vietnamese by default and in English on ``Accept-Language: en``."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlmodel import Session
from test_gateway_api import API, T0, Env, _event, make_env

from gateway.models import StaffRecord


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = make_env(f"sqlite:///{tmp_path / 'g.db'}")
    with Session(e.engine) as s:
        s.add(StaffRecord(staff_code="CB7001", full_name="Nguyễn Thị Hương", agency_code="000.00.31",
                          updated_at=datetime.now(T0.tzinfo)))  # fmt: skip
        s.add(_event("r-h1", 700, decision="grant", reason="granted", staff_code="CB7001", door="0"))
        s.add(_event("r-h1", 701, decision="deny", reason="revoked", staff_code="CB7002"))
        s.add(_event("r-h1b", 702, decision="punch", reason="ok", staff_code="CB7001"))
        s.add(_event("r-h1", 703, kind="alarm", alarm="forced_open", active=True))
        s.add(_event("r-h1", 704, kind="alarm", alarm="forced_open", active=False))
        s.commit()
    yield e
    e.client.close()
    e.engine.dispose()


def _rows(env: Env, lang: str | None = None) -> list[dict[str, str]]:
    headers = env.h("hr") | ({"Accept-Language": lang} if lang else {})
    text = env.client.get(API + "/events/export.csv", headers=headers).content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def test_events_csv_in_vietnamese_shows_words_names_and_doors(env: Env) -> None:
    rows = {r["Mã sự kiện"]: r for r in _rows(env)}
    by_seq = sorted(rows.values(), key=lambda r: r["Thời điểm (UTC)"])
    grant = next(r for r in by_seq if r["Mã cán bộ"] == "CB7001" and r["Quyết định"] == "Cho qua")
    assert grant["Họ tên"] == "Nguyễn Thị Hương"
    assert grant["Lý do"] == "Mời vào"
    assert grant["Cửa"] == "Cửa chính Sở Nội vụ (h1-main)"  # not the reader's door index 0
    deny = next(r for r in by_seq if r["Mã cán bộ"] == "CB7002")
    assert deny["Quyết định"] == "Từ chối" and deny["Lý do"] == "Thẻ đã bị khóa hoặc thu hồi"
    assert deny["Họ tên"] == ""  # no national record for this code
    punch = next(r for r in by_seq if r["Quyết định"] == "Chấm công" and r["Mã cán bộ"] == "CB7001")
    assert punch["Chấm công"] == "Có" and punch["Lý do"] == "Đã chấm công"
    alarms = [r["Báo động"] for r in by_seq if r["Loại sự kiện"] == "Báo động"][-2:]
    assert alarms == ["cửa bị mở cưỡng bức (bắt đầu)", "cửa bị mở cưỡng bức (đã hết)"]
    assert all(r["Chất lượng đồng hồ"] == "Giờ đã đồng bộ" for r in by_seq)


def test_events_csv_in_english(env: Env) -> None:
    rows = _rows(env, "en-GB,en;q=0.8")
    assert "Full name" in rows[0] and "Decision" in rows[0]
    deny = next(r for r in rows if r["Staff code"] == "CB7002")
    assert deny["Decision"] == "Denied" and deny["Reason"] == "Card blocked or revoked"
    alarms = [r["Alarm"] for r in rows if r["Alarm"]][-2:]
    assert alarms == ["door forced open (raised)", "door forced open (cleared)"]


def test_a_refused_role_reads_a_sentence(env: Env) -> None:
    r = env.get("hr", "/readers")
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert r.json()["detail"] == "Vai trò nhân sự không được phép xem danh sách đầu đọc."
    r = env.client.get(API + "/readers", headers=env.h("hr") | {"Accept-Language": "en"})
    assert r.json()["detail"] == "The HR role may not view readers."
    assert "may not readers read" not in r.text
    r = env.get("admin", "/readers/nope")
    assert r.status_code == 404 and r.json()["detail"] == "Không tìm thấy đầu đọc"
    r = env.client.get(
        API + "/readers", headers={"Authorization": "Bearer cbcc_x_y", "Accept-Language": "en"}
    )
    assert r.status_code == 401 and r.json()["detail"] == "The API token is invalid, expired or revoked."


def _both(env: Env, method: str, path: str, body: object) -> tuple[dict[str, str], dict[str, str]]:
    """The same refused request answered in Vietnamese (no Accept-Language) and in English."""
    vi = env.client.request(method, API + path, json=body, headers=env.h("admin"))
    en = env.client.request(method, API + path, json=body, headers=env.h("admin") | {"Accept-Language": "en"})
    assert vi.status_code == en.status_code and vi.json()["code"] == en.json()["code"]
    assert (vi.headers["content-language"], en.headers["content-language"]) == ("vi", "en")
    return vi.json(), en.json()


def test_conflicts_read_in_the_request_language(env: Env) -> None:
    door = {"id": "d-kho", "name": "Cửa kho", "unit": "H01.01"}
    assert env.post("admin", "/doors", door).status_code == 201
    vi, en = _both(env, "POST", "/doors", door)
    assert (vi["code"], vi["detail"]) == ("conflict", "cửa d-kho đã có")
    assert en["detail"] == "door d-kho already exists"


def test_validation_failures_read_in_the_request_language(env: Env) -> None:
    vi, en = _both(env, "POST", "/doors", {"id": "d-x"})
    assert vi["code"] == "invalid_request" and vi["detail"] == "body.name: cần có giá trị"
    assert en["detail"] == "body.name: a value is required"
    assert vi["errors"] == en["errors"]  # the details for programs stay pydantic's


def test_domain_refusals_are_rendered_again_per_request(env: Env) -> None:
    """The token rules live in gateway.auth (raised in the process's language); the API renders
    the same message id in the language of each request."""
    body = {"name": "cũ", "role": "hr", "expires_at": "2001-01-01T00:00:00Z"}
    vi, en = _both(env, "POST", "/tokens", body)
    assert (vi["code"], vi["detail"]) == ("invalid", "expires_at đã ở trong quá khứ")
    assert en["detail"] == "expires_at is in the past"
