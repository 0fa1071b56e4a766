"""Vietnamese wording of the reader's verdicts, for people at the door, in consoles and reports."""

from __future__ import annotations

REASON_TEXT = {
    "ok": "Thẻ hợp lệ",
    "malformed": "Dữ liệu thẻ hỏng hoặc không đúng định dạng",
    "unsupported_alg": "Thuật toán chữ ký không được hỗ trợ",
    "unknown_issuer": "Cơ quan cấp thẻ không có trong danh sách tin cậy",
    "bad_signature": "Chữ ký số không hợp lệ (dữ liệu bị sửa hoặc giả mạo)",
    "issuer_not_valid": "Khóa của cơ quan cấp không còn hiệu lực khi thẻ được cấp",
    "serial_out_of_range": "Số thẻ nằm ngoài dải của cơ quan cấp",
    "not_yet_valid": "Thẻ chưa đến ngày có hiệu lực",
    "expired": "Thẻ đã hết hạn",
    "uid_mismatch": "Dữ liệu không khớp với chip (nghi thẻ sao chép)",
    "revoked": "Thẻ đã bị khóa hoặc thu hồi",
}


# The door policy's reasons (firmware/lib/policy.py TEXT_VI; a test keeps the two equal).
POLICY_TEXT = {
    "granted": "Mời vào",
    "first_card_unlock": "Mời vào – cửa mở theo lịch từ thẻ đầu tiên",
    "scheduled_unlocked": "Cửa đang mở theo lịch – đã ghi nhận",
    "emergency_unlock": "Mở khẩn cấp (báo cháy) – đã ghi nhận",
    "lockdown_override": "Đang phong tỏa – thẻ được phép vượt",
    "passback_soft": "Mời vào – vi phạm chống quay vòng thẻ đã ghi nhận",
    "duplicate": "Đã ghi nhận (chạm thẻ lặp lại)",
    "locked_down": "Cửa đang phong tỏa",
    "deny_listed": "Thẻ bị cấm qua cửa này",
    "no_access": "Không có quyền qua cửa này",
    "out_of_schedule": "Ngoài khung giờ được phép",
    "anti_clone_required": "Cửa yêu cầu thẻ chống sao chép",
    "passback": "Vi phạm chống quay vòng thẻ (chưa ra đã vào lại)",
    "clock_unset": "Đồng hồ chưa đặt giờ – không xét được lịch",
    "not_configured": "Đầu đọc chưa có cấu hình cửa",
    "internal_error": "Lỗi xử lý – từ chối",
}
PUNCHED = "Đã chấm công"


def reason_text(reason: str, decision: str | None = None) -> str:
    """What a verdict means, in Vietnamese (an attendance punch reads "Đã chấm công")."""
    if decision == "punch" and reason in ("ok", "duplicate"):
        return PUNCHED
    return REASON_TEXT.get(reason) or POLICY_TEXT.get(reason, reason)
