# What the reader shows people, in Vietnamese: the verdict of the trust core (credential.py's
# reasons) and of the door policy (policy.TEXT_VI), in one place for displays and LEDs.
import policy

CREDENTIAL_TEXT = {
    "ok": "Thẻ hợp lệ",
    "malformed": "Thẻ hỏng hoặc sai định dạng",
    "unsupported_alg": "Thẻ dùng thuật toán không hỗ trợ",
    "unknown_issuer": "Nơi cấp thẻ không được tin cậy",
    "bad_signature": "Chữ ký số không hợp lệ",
    "issuer_not_valid": "Khóa nơi cấp hết hiệu lực",
    "serial_out_of_range": "Số thẻ ngoài dải được cấp",
    "not_yet_valid": "Thẻ chưa có hiệu lực",
    "expired": "Thẻ đã hết hạn",
    "uid_mismatch": "Thẻ không khớp chip (nghi sao chép)",
    "revoked": "Thẻ đã bị khóa hoặc thu hồi",
}
PUNCHED = "Đã chấm công"


def text(reason, decision=None):
    if decision == "punch" and reason in ("ok", "duplicate"):
        return PUNCHED
    t = CREDENTIAL_TEXT.get(reason)
    return t if t is not None else policy.text_vi(reason)
