"""What the gateway's modules tell a person, in both languages from the one catalog: API refusals
per request (Accept-Language), national feed and staff-file refusals, broker administration,
the operator's log lines (CBCC_LANG), and quarantine reasons as words beside their codes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_gateway_api import API, Env, make_env

from gateway import service
from gateway.mqtt import dynsec_admin
from gateway.mqtt.broker_config import BrokerConfigError
from gateway.national import feed, fileimport
from gateway.settings import Settings
from messages import text_in, words


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = make_env(f"sqlite:///{tmp_path / 'g.db'}")
    yield e
    e.client.close()
    e.engine.dispose()


def _both(env: Env, who: str, method: str, path: str, **kw: object) -> tuple[str, str]:
    """``detail`` of the same refused request without Accept-Language (Vietnamese) and in English."""
    vi = env.client.request(method, API + path, headers=env.h(who), **kw)  # type: ignore[arg-type]
    en = env.client.request(method, API + path, headers=env.h(who) | {"Accept-Language": "en"}, **kw)  # type: ignore[arg-type]
    assert vi.status_code == en.status_code and vi.json()["code"] == en.json()["code"]
    return vi.json()["detail"], en.json()["detail"]


def test_api_scope_refusals_in_the_request_language(env: Env) -> None:
    door = {"id": "d-ngoai", "name": "Cửa ngoài", "unit": "H02.01"}
    vi, en = _both(env, "facility_h1", "POST", "/doors", json=door)
    assert (vi, en) == (
        "đơn vị của cửa nằm ngoài phạm vi của token này",
        "the door's unit is outside this token's scope",
    )
    vi, en = _both(env, "admin_h1", "GET", "/audit")
    assert en == "the audit log is readable only with a token without a unit scope"
    assert vi == "nhật ký kiểm toán chỉ đọc được bằng token không giới hạn đơn vị"


def test_api_validator_texts_in_the_request_language(env: Env) -> None:
    """A field validator of ours (a bare number is not a time) answers in the request's language."""
    vi, en = _both(env, "admin", "GET", "/events", params={"from": "1735689600"})
    assert en == "query.from: expected an ISO 8601 date-time such as 2025-03-01T00:00:00Z"
    assert vi == "query.from: cần ngày giờ ISO 8601, ví dụ 2025-03-01T00:00:00Z"


def test_national_feed_refusals_in_both_languages() -> None:
    with pytest.raises(feed.FeedError) as exc:
        feed.parse_cursor("abc")
    assert text_in(exc.value, "en") == "national feed rejected: bad cursor 'abc'"
    assert text_in(exc.value, "vi") == "luồng dữ liệu quốc gia bị từ chối: con trỏ sai 'abc'"
    page = feed.Page(changes=[], next_cursor="7", has_more=False)
    with pytest.raises(feed.FeedError) as exc:
        feed.check_page(page, "5")
    assert text_in(exc.value, "en").endswith("empty page moves the cursor from '5' to '7'")
    assert text_in(exc.value, "vi").endswith("trang rỗng lại dời con trỏ từ '5' sang '7'")


def test_staff_file_rows_in_both_languages() -> None:
    """The row's reasons, pydantic's included, in words from the one catalog (messages.api)."""
    row = {"staff_code": "", "full_name": "Nguyễn An", "agency_code": "H01", "unit": "H01"}
    with pytest.raises(ValueError) as exc:
        fileimport.parse_row(row)
    assert (
        text_in(exc.value, "en")
        == "staff_code: not in the required form; agency_code: not in the required form"
    )
    assert (
        text_in(exc.value, "vi")
        == "staff_code: không đúng dạng yêu cầu; agency_code: không đúng dạng yêu cầu"
    )
    with pytest.raises(ValueError) as exc:
        fileimport.parse_row(row | {"active": "có lẽ"})
    assert (text_in(exc.value, "en"), text_in(exc.value, "vi")) == (
        "active: not yes/no: 'có lẽ'",
        "active: không phải có/không: 'có lẽ'",
    )
    good = {"staff_code": "H010001", "agency_code": "000.00.01.H01", "unit": "000.00.01.H01"}
    with pytest.raises(ValueError) as exc:  # a validator of ours (value_error), not pydantic's words
        fileimport.parse_row(good | {"full_name": "Nguyễn 3 An"})
    assert text_in(exc.value, "en") == "full_name: a name holds letters separated by single spaces"
    assert text_in(exc.value, "vi") == "full_name: họ tên gồm các chữ cái cách nhau bởi một dấu cách"


def test_broker_admin_refusal_in_both_languages() -> None:
    with pytest.raises(BrokerConfigError) as exc:
        dynsec_admin.parse_hostport("localhost")
    assert (text_in(exc.value, "en"), text_in(exc.value, "vi")) == (
        "'localhost' is not HOST:PORT",
        "'localhost' không có dạng HOST:PORT",
    )


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("vi", "không có khóa ký tại {path}: việc gửi cấu hình và lệnh bị tắt"),
        ("en", "no signing key at {path}: configuration pushes and commands are disabled"),
    ],
)
def test_operator_log_line_in_the_chosen_language(
    lang: str, said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CBCC_LANG", lang)
    with caplog.at_level(logging.WARNING, logger="gateway.service"):
        assert service.load_signing_key(Settings(data_dir=tmp_path)) is None
    assert [r.getMessage() for r in caplog.records] == [said.format(path=tmp_path / "config.key.pem")]


def test_quarantine_reasons_as_words() -> None:
    assert words.quarantine("bad_mac", "en") == "seal does not verify (wrong key or altered)"
    assert words.quarantine("bad_mac", "vi") == "niêm phong không hợp lệ (sai khóa hoặc bị sửa)"
    assert words.quarantine("something_new", "vi") == "something_new"  # an unknown code shows as itself


def test_routing_refusals_in_the_request_language(env: Env) -> None:
    """No such path, or a method the path does not take: ours, not Starlette's English phrase."""
    vi, en = _both(env, "admin", "GET", "/no-such-thing")
    assert (vi, en) == ("không có đường dẫn API này", "no such API path")
    vi, en = _both(env, "admin", "DELETE", "/doors")
    assert (vi, en) == (
        "đường dẫn API này không nhận phương thức đó",
        "this API path does not take that method",
    )
