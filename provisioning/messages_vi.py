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


def reason_text(reason: str) -> str:
    return REASON_TEXT.get(reason, reason)
