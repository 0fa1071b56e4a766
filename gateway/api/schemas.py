"""Request and response bodies. Times are ISO 8601 in UTC (``…Z``); descriptions in Vietnamese
with the English term, for the agencies' IT staff who read the OpenAPI page."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from messages import _
from trustcore import ids

MAX_PAGE = 1000
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

READER_ID_PATTERN = ids.READER_ID_PATTERN  # the one rule: trustcore/ids.py
DOOR_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
CODE_PATTERN = r"^[A-Za-z0-9._/-]{0,64}$"  # unit codes, sites, unit scopes
WORD_PATTERN = r"^[a-z0-9_:-]{1,32}$"  # kinds, decisions, reasons, actions
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"  # one line, no control characters
CURSOR_PATTERN = r"^[0-9]{1,18}$"


def _encodable(value: str) -> str:
    """Refuse lone surrogates (they cannot be stored as UTF-8)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(_("text must be valid Unicode")) from None
    return value


ReaderId = Annotated[str, StringConstraints(pattern=READER_ID_PATTERN, max_length=63)]
DoorId = Annotated[str, StringConstraints(pattern=DOOR_ID_PATTERN, max_length=64)]
Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN, max_length=64)]


_Clean = AfterValidator(_encodable)
Name = Annotated[str, StringConstraints(pattern=TEXT_PATTERN, max_length=200), _Clean]
RequiredName = Annotated[str, StringConstraints(pattern=TEXT_PATTERN, min_length=1, max_length=200), _Clean]
Description = Annotated[str, StringConstraints(pattern=TEXT_PATTERN, max_length=500), _Clean]
TokenName = Annotated[str, StringConstraints(pattern=TEXT_PATTERN, min_length=1, max_length=100), _Clean]
SiteCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._/-]{1,64}$", max_length=64)]
ReaderRole = Literal["door", "attendance", "both"]
TokenRole = Literal["admin", "facility", "hr", "auditor"]
Action = Literal["open", "lockdown", "release", "reboot", "resync"]


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class Out(BaseModel):
    """Built from table rows; SQLite's naive times become UTC again."""

    model_config = ConfigDict(from_attributes=True)

    @field_validator("*", mode="before")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        return _aware(value)


# ---- readers ----------------------------------------------------------------------------------


class ReaderOut(Out):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "hn-a-cong-chinh",
                    "name": "Cổng chính tòa A",
                    "site": "hn-a",
                    "unit": "H01.05",
                    "door_id": "a-main",
                    "role": "door",
                    "enabled": True,
                    "registered_at": "2025-03-01T02:00:00Z",
                    "online": True,
                    "status_at": "2025-03-02T01:00:00Z",
                    "last_seen": "2025-03-02T01:59:00Z",
                    "firmware": "1.4.2",
                    "trust_seq": 12,
                    "crl_seq": 340,
                    "config_seq": 7,
                    "boot": 31,
                    "health_at": "2025-03-02T01:59:00Z",
                    "uptime_s": 86400,
                    "free_heap": 61000,
                    "reset_cause": 1,
                    "rf_errors": 0,
                    "journal_depth": 0,
                    "journal_fill": 1,
                    "time_quality": 2,
                    "pushed_config_seq": 7,
                    "pushed_config_at": "2025-03-01T03:00:00Z",
                }
            ]
        },
    )

    id: str = Field(description="Mã đầu đọc, cũng là tên người dùng MQTT (reader id)")
    name: str = Field(description="Tên hiển thị (display name)")
    site: str = Field(description="Địa điểm / tòa nhà (site)")
    unit: str = Field(description="Mã đơn vị quản lý (agency/unit code)")
    door_id: str | None = Field(description="Cửa gắn với đầu đọc (door)")
    role: str = Field(description="Vai trò: door (cửa), attendance (chấm công), both (cả hai)")
    enabled: bool = Field(description="Đang được dùng (enabled)")
    registered_at: datetime = Field(description="Thời điểm đăng ký, UTC")
    online: bool = Field(description="Trực tuyến theo trạng thái gần nhất (online)")
    status_at: datetime | None = Field(description="Lúc nhận trạng thái gần nhất (last status), UTC")
    last_seen: datetime | None = Field(description="Lần cuối nhận tin từ đầu đọc (last seen), UTC")
    firmware: str | None = Field(description="Phiên bản firmware")
    trust_seq: int | None = Field(description="Số thứ tự danh sách tin cậy đang dùng (trust-list seq)")
    crl_seq: int | None = Field(description="Số thứ tự danh sách thu hồi đang dùng (revocation-list seq)")
    config_seq: int | None = Field(description="Số thứ tự cấu hình đang dùng (applied configuration seq)")
    boot: int | None = Field(description="Bộ đếm khởi động (boot counter)")
    health_at: datetime | None = Field(description="Lúc nhận nhịp tim gần nhất (last heartbeat), UTC")
    uptime_s: int | None = Field(description="Thời gian chạy, giây (uptime)")
    free_heap: int | None = Field(description="Bộ nhớ trống, byte (free heap)")
    reset_cause: int | None = Field(description="Nguyên nhân khởi động lại (reset cause)")
    rf_errors: int | None = Field(description="Lỗi đọc RF từ lần khởi động (RF read failures)")
    journal_depth: int | None = Field(description="Sự kiện chưa gửi (undelivered journal records)")
    journal_fill: int | None = Field(description="Mức đầy nhật ký, % (journal fill)")
    time_quality: int | None = Field(description="Chất lượng đồng hồ: 0 chưa đặt, 1 RTC, 2 đồng bộ")
    pushed_config_seq: int | None = Field(description="Số thứ tự cấu hình đã gửi (pushed configuration seq)")
    pushed_config_at: datetime | None = Field(description="Lúc gửi cấu hình (configuration pushed at), UTC")


class ReaderPage(BaseModel):
    items: list[ReaderOut]
    next: str | None = Field(description="Con trỏ trang sau (cursor for the next page); null: hết")


class ReaderRegister(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "hn-a-cong-chinh",
                    "name": "Cổng chính tòa A",
                    "site": "hn-a",
                    "unit": "H01.05",
                    "door_id": "a-main",
                    "role": "door",
                }
            ]
        },
    )

    id: ReaderId = Field(description="Mã đầu đọc: chữ thường, số, '-' (reader id, also its MQTT username)")
    name: Name = Field(default="", description="Tên hiển thị")
    site: Code = Field(default="", description="Địa điểm (site)")
    unit: Code = Field(default="", description="Mã đơn vị (unit code); phải nằm trong phạm vi của token")
    door_id: DoorId | None = Field(default=None, description="Cửa (door id), nếu có")
    role: ReaderRole = Field(default="door", description="door | attendance | both")


class RegisteredReader(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reader": ReaderOut.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
                    "mac_key_hex": "00" * 32,
                    "mqtt_password": "Zr3…",
                }
            ]
        }
    )

    reader: ReaderOut
    mac_key_hex: str = Field(description="Khóa HMAC của đầu đọc (hex) — CHỈ HIỂN THỊ MỘT LẦN (shown once)")
    mqtt_password: str = Field(description="Mật khẩu MQTT — CHỈ HIỂN THỊ MỘT LẦN (shown once)")


class ReaderUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "Cổng phụ", "enabled": False}]}
    )

    name: Name | None = None
    site: Code | None = None
    unit: Code | None = None
    door_id: DoorId | None = Field(default=None, description='Cửa mới; dùng "" qua `clear_door` để bỏ gắn')
    clear_door: bool = Field(default=False, description="Bỏ gắn cửa (detach the door)")
    role: ReaderRole | None = None
    enabled: bool | None = None


class ConfigPushIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "config": {
                        "site": "Sở Nội vụ Hà Nội",
                        "timezone": "UTC+07:00",
                        "group": [{"id": "so-noi-vu", "agency": ["000.00.31"]}],
                        "schedule": [{"id": "gio-hanh-chinh", "weekly": ["Mon-Fri 07:00-18:00"]}],
                        "door": [{"id": "cong-chinh", "name": "Cổng chính", "requires_anti_clone": True}],
                        "rule": [
                            {"groups": ["so-noi-vu"], "doors": ["cong-chinh"], "schedule": "gio-hanh-chinh"}
                        ],
                    }
                }
            ]
        },
    )

    config: dict[str, Any] = Field(description="Cấu hình đầu đọc (docs/reader-config.md), tối đa 64 KiB")

    @field_validator("config")
    @classmethod
    def _size(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
        except (TypeError, ValueError, UnicodeEncodeError):
            raise ValueError(_("configuration must be plain JSON text")) from None
        if size > 65536:
            raise ValueError(_("configuration larger than 64 KiB"))
        return value


class ConfigPushOut(Out):
    id: int | None
    reader_id: str
    seq: int = Field(description="Số thứ tự cấu hình (configuration seq)")
    sha256: str
    pushed_by: str
    pushed_at: datetime
    applied_at: datetime | None = Field(description="Lúc đầu đọc báo đã áp dụng (applied at), UTC")
    outcome: str | None = Field(description="Kết quả đầu đọc báo (ok, rollback, bad_signature, …)")


class ConfigPushPage(BaseModel):
    items: list[ConfigPushOut]
    next: str | None


# ---- doors ------------------------------------------------------------------------------------


BUILDING_DOC = (
    "Tòa nhà trong địa điểm (building within the site): the same rule as a site code — letters, digits, "
    "`. _ / -`, at most 64; empty = none. The console groups doors site → building → door by it."
)


class DoorOut(Out):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "a-main",
                    "name": "Cửa chính tòa A",
                    "site": "hn-a",
                    "building": "A",
                    "unit": "H01.05",
                    "description": "Tầng 1, lối vào từ đường Trần Phú",
                }
            ]
        },
    )

    id: str = Field(description="Mã cửa (door id)")
    name: str = Field(description="Tên cửa")
    site: str = Field(description="Địa điểm (site)")
    building: str = Field(description="Tòa nhà trong địa điểm (building within the site)")
    unit: str = Field(description="Mã đơn vị (unit code)")
    description: str = Field(description="Ghi chú (description)")


class DoorPage(BaseModel):
    items: list[DoorOut]
    next: str | None


class DoorCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"id": "a-main", "name": "Cửa chính tòa A", "site": "hn-a", "building": "A", "unit": "H01.05"}
            ]
        },
    )

    id: DoorId = Field(description="Mã cửa: chữ, số, . _ -")
    name: RequiredName = Field(description="Tên cửa")
    site: Code = ""
    building: Code = Field(default="", description=BUILDING_DOC)
    unit: Code = Field(default="", description="Mã đơn vị; phải nằm trong phạm vi của token")
    description: Description = ""


class DoorUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "Cửa sau"}]})

    name: RequiredName | None = None
    site: Code | None = None
    building: Code | None = Field(default=None, description=BUILDING_DOC)
    unit: Code | None = None
    description: Description | None = None


# ---- events -----------------------------------------------------------------------------------


class EventOut(Out):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 1201,
                    "reader_id": "hn-a-cong-chinh",
                    "seq": 88,
                    "kind": "tap",
                    "occurred_at": "2025-03-03T01:02:03Z",
                    "reader_time": "2025-03-03T01:02:03Z",
                    "time_quality": 2,
                    "time_corrected": False,
                    "received_at": "2025-03-03T01:02:04Z",
                    "boot": 31,
                    "uptime_ms": 5000,
                    "decision": "grant",
                    "reason": None,
                    "serial": 123456,
                    "staff_code": "CB0001234",
                    "technology": "desfire",
                    "anti_clone": True,
                    "door": "a-main",
                    "direction": "in",
                    "punch": None,
                    "alarm": None,
                    "active": None,
                    "detail": None,
                }
            ]
        },
    )

    id: int = Field(description="Mã sự kiện; tăng dần (event id, the pagination key)")
    reader_id: str = Field(description="Đầu đọc (reader id)")
    seq: int = Field(description="Số thứ tự trong nhật ký đầu đọc (journal seq)")
    kind: str = Field(description="Loại: tap (quẹt thẻ), alarm (báo động), notice (thông báo), …")
    occurred_at: datetime = Field(description="Thời điểm xảy ra (đã hiệu chỉnh nếu cần), UTC")
    reader_time: datetime | None = Field(description="Giờ đầu đọc ghi, giữ nguyên (as stamped), UTC")
    time_quality: int = Field(description="Chất lượng đồng hồ: 0 chưa đặt, 1 RTC, 2 đồng bộ")
    time_corrected: bool = Field(description="Thời điểm đã được gateway hiệu chỉnh (corrected)")
    received_at: datetime = Field(description="Lúc gateway nhận (received), UTC")
    boot: int | None
    uptime_ms: int | None
    decision: str | None = Field(description="grant (cho qua) | deny (từ chối) | punch (chấm công)")
    reason: str | None = Field(description="Lý do từ chối (refusal reason)")
    serial: int | None = Field(description="Số serial thẻ (card serial)")
    staff_code: str | None = Field(description="Mã cán bộ (staff code)")
    technology: str | None = Field(description="desfire | classic | ntag")
    anti_clone: bool | None = Field(description="Thẻ đã chứng minh chống sao chép (anti-clone proof)")
    door: str | None = Field(description="Cửa (door)")
    direction: str | None = Field(description="Hướng: in (vào) / out (ra)")
    punch: bool | None = Field(description="Cũng tính là chấm công (also counts for attendance)")
    alarm: str | None = Field(description="Loại báo động (alarm kind)")
    active: bool | None = Field(description="Báo động đang bật (alarm active)")
    detail: str | None = Field(description="Chi tiết (detail)")


class EventDetail(EventOut):
    record_hex: str = Field(description="Bản ghi gốc đã niêm phong, hex (sealed record, for re-verification)")
    mac_hex: str = Field(description="HMAC-SHA256 của bản ghi, hex")


class EventPage(BaseModel):
    items: list[EventOut]
    next: str | None = Field(description="Con trỏ trang sau (pass as `cursor`); null: hết dữ liệu")


# ---- alarms -----------------------------------------------------------------------------------


class AlarmOut(Out):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "reader_id": "hn-a-cong-chinh",
                    "kind": "held_open",
                    "active": True,
                    "raised_at": "2025-03-03T01:02:03Z",
                    "cleared_at": None,
                    "detail": "cửa mở quá 30 giây",
                    "event_seq": 90,
                    "acknowledged_by": None,
                    "acknowledged_at": None,
                }
            ]
        },
    )

    id: int
    reader_id: str
    kind: str = Field(
        description="forced_open | held_open | tamper | journal_full | clock_unset | fire | offline"
    )
    active: bool = Field(description="Đang bật (active)")
    raised_at: datetime
    cleared_at: datetime | None
    detail: str
    event_seq: int | None
    acknowledged_by: str | None = Field(description="Người xác nhận (acknowledged by)")
    acknowledged_at: datetime | None


class AlarmPage(BaseModel):
    items: list[AlarmOut]
    next: str | None


class AlarmAck(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"note": "đã kiểm tra tại chỗ"}]}
    )

    note: Description = Field(default="", description="Ghi chú (note), lưu vào nhật ký kiểm toán")


# ---- commands ---------------------------------------------------------------------------------


class CommandIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"reader_id": "hn-a-cong-chinh", "action": "open"},
                {"site": "hn-a", "action": "lockdown"},
            ]
        },
    )

    reader_id: ReaderId | None = Field(default=None, description="Gửi tới một đầu đọc (one reader)")
    site: SiteCode | None = Field(
        default=None, description="Hoặc tới mọi đầu đọc của một địa điểm (every reader of a site)"
    )
    action: Action = Field(
        description="open (mở tạm) | lockdown (khóa) | release (mở khóa) | reboot | resync"
    )
    args: dict[str, int | str | bool] | None = Field(
        default=None, max_length=16, description="Tham số của lệnh (command arguments), nếu có"
    )
    ttl_s: int = Field(default=300, ge=10, le=7 * 86400, description="Hết hạn sau (seconds until it expires)")


class CommandOut(Out):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 3,
                    "seq": 1042,
                    "target": "hn-a-cong-chinh",
                    "action": "open",
                    "args": "null",
                    "issued_by": "token:ab12cd34ef56",
                    "issued_at": "2025-03-03T01:02:03Z",
                    "expires_at": "2025-03-03T01:07:03Z",
                    "outcome": "ok",
                    "outcome_at": "2025-03-03T01:02:04Z",
                }
            ]
        },
    )

    id: int | None
    seq: int = Field(description="Số thứ tự lệnh (command seq, one counter for all readers)")
    target: str = Field(description='Đầu đọc nhận lệnh, hoặc "*" (every reader)')
    action: str
    args: str = Field(description="Tham số (JSON)")
    issued_by: str
    issued_at: datetime
    expires_at: datetime
    outcome: str | None = Field(description="Kết quả đầu đọc báo: ok, expired, replayed, … (null: chưa có)")
    outcome_at: datetime | None


class CommandPage(BaseModel):
    items: list[CommandOut]
    next: str | None


class CommandsSent(BaseModel):
    items: list[CommandOut] = Field(description="Lệnh đã gửi (one per reader, or the site broadcast)")


# ---- quarantine, audit ------------------------------------------------------------------------


class QuarantineOut(Out):
    id: int
    received_at: datetime
    topic: str
    reader_id: str | None
    reason: str = Field(description="Lý do cách ly: bad_mac, unknown_reader, garbage, conflict, …")
    detail: str
    payload_size: int


class QuarantineDetail(QuarantineOut):
    payload_hex: str = Field(description="Nội dung nhận được (tối đa 4 KiB đầu), hex")


class QuarantinePage(BaseModel):
    items: list[QuarantineOut]
    next: str | None


class AuditOut(Out):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 55,
                    "at": "2025-03-03T01:02:03Z",
                    "actor": "token:ab12cd34ef56",
                    "role": "facility",
                    "action": "door.create",
                    "target": "door:a-main",
                    "detail": {"name": "Cửa chính tòa A"},
                }
            ]
        },
    )

    id: int
    at: datetime
    actor: str = Field(description="Ai thực hiện (actor)")
    role: str
    action: str = Field(description="Hành động (action), ví dụ reader.register, token.revoke")
    target: str = Field(description="Đối tượng (target)")
    detail: Any = Field(description="Chi tiết (JSON)")

    @field_validator("detail", mode="before")
    @classmethod
    def _json(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value


class AuditPage(BaseModel):
    items: list[AuditOut]
    next: str | None


# ---- tokens -----------------------------------------------------------------------------------


class TokenOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "ab12cd34ef56",
                    "name": "Phòng TCCB — xuất chấm công",
                    "role": "hr",
                    "unit_scope": "H01.05",
                    "created_at": "2025-03-01T02:00:00Z",
                    "created_by": "token:000000000000",
                    "expires_at": None,
                    "revoked_at": None,
                    "last_used_at": "2025-03-03T01:00:00Z",
                    "state": "active",
                }
            ]
        }
    )

    id: str = Field(description="Mã token (phần công khai, public id)")
    name: str
    role: str
    unit_scope: str = Field(description='Tiền tố mã đơn vị được phép ("" = mọi đơn vị)')
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(description="Lần dùng gần nhất (cập nhật tối đa mỗi phút)")
    state: Literal["active", "expired", "revoked"]


class TokenCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Phòng TCCB — xuất chấm công",
                    "role": "hr",
                    "unit_scope": "H01.05",
                    "expires_at": "2030-01-01T00:00:00Z",
                }
            ]
        },
    )

    name: TokenName = Field(description="Tên gợi nhớ (who or what uses it)")
    role: TokenRole = Field(
        description="admin | facility (quản lý tòa nhà) | hr (nhân sự) | auditor (kiểm toán)"
    )
    unit_scope: Code = Field(default="", description='Tiền tố mã đơn vị ("" = mọi đơn vị)')
    expires_at: datetime | None = Field(default=None, description="Hết hạn (UTC); null: không hết hạn")


class TokenCreated(BaseModel):
    token: TokenOut
    secret: str = Field(description="Token đầy đủ `cbcc_<id>_<secret>` — CHỈ HIỂN THỊ MỘT LẦN (shown once)")


class TokenList(BaseModel):
    items: list[TokenOut]


class WhoAmI(BaseModel):
    token_id: str
    name: str
    role: str
    unit_scope: str
    permissions: list[str]


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok", "database": "ok"}]})

    status: Literal["ok", "error"]
    database: Literal["ok", "unreachable"]
    ingest: Literal["ok", "stuck"] = "ok"
    reason: str | None = None  # why ingest is stuck (the last error), when it is
