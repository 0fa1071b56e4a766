"""Every printed word of the attendance reports, Vietnamese first, English available.

One table per language with the same keys; the symbols of Mẫu C01-HD (``+``, ``P``, ``KL``, ...)
are never translated: they are the form's, and an English reader gets the legend instead.
"""

from __future__ import annotations

import unicodedata

LANGS = ("vi", "en")

_VI: dict[str, str] = {
    "agency": "Đơn vị",
    "unit": "Bộ phận",
    "agency_code": "Mã đơn vị QHNS",
    "form": "Mẫu số C01-HD",
    "form_basis": "(Ban hành kèm theo Thông tư số 107/2017/TT-BTC ngày 10/10/2017 của Bộ Tài chính)",
    "title": "BẢNG CHẤM CÔNG",
    "month_line": "Tháng {m} năm {y}",
    "stt": "STT",
    "name": "Họ và tên",
    "position": "Ngạch bậc lương hoặc cấp bậc chức vụ",
    "days": "Ngày trong tháng",
    "quy_ra_cong": "Quy ra công",
    "time_paid": "Số công hưởng lương thời gian",
    "unpaid": "Số công nghỉ không lương",
    "insurance": "Số công hưởng BHXH",
    "total": "Cộng",
    "legend": "Ký hiệu chấm công",
    "signer_timekeeper": "Người chấm công",
    "signer_head": "Phụ trách bộ phận",
    "signer_approver": "Người duyệt",
    "sign_hint": "(Ký, họ tên)",
    "place_date": "……, ngày … tháng … năm …",
    "page": "Trang {n}/{total}",
    "details": "Chi tiết theo ngày",
    "staff": "Mã CBCC",
    "date": "Ngày",
    "weekday": "Thứ",
    "symbol": "Ký hiệu",
    "in": "Vào",
    "out": "Ra",
    "worked_min": "Phút làm việc",
    "late_min": "Phút đi muộn",
    "early_min": "Phút về sớm",
    "value": "Công",
    "leave": "Nghỉ",
    "flags": "Ghi chú",
    "unit_code": "Mã bộ phận",
    "summary_title": "TỔNG HỢP CHUYÊN CẦN THEO BỘ PHẬN",
    "daily_title": "BÁO CÁO CHẤM CÔNG NGÀY {d}",
    "history_title": "LỊCH SỬ CHẤM CÔNG",
    "people": "Số người",
    "scheduled_days": "Số ngày phải làm",
    "work_days": "Số công làm việc",
    "late_count": "Số lần đi muộn",
    "early_count": "Số lần về sớm",
    "absent_days": "Số ngày vắng không lý do",
    "leave_days": "Số công nghỉ có lý do",
    "absence_rate": "Tỷ lệ vắng (%)",
    "missing_punch": "Thiếu lượt chấm",
    "present": "Có mặt",
    "chart_title": "Đi muộn / về sớm theo bộ phận (phút)",
    "late": "Đi muộn",
    "early": "Về sớm",
    "month": "Tháng",
    "overtime_title": "LÀM THÊM GIỜ ĐÃ DUYỆT (giờ:phút)",
    "ot_weekday": "Ngày thường",
    "ot_weekend": "Ngày nghỉ hằng tuần",
    "ot_holiday": "Ngày lễ, Tết",
    "ot_night": "Trong đó làm đêm",
    "ot_total": "Tổng cộng",
}

_EN: dict[str, str] = {
    "agency": "Agency",
    "unit": "Department",
    "agency_code": "Budget relation code (QHNS)",
    "form": "Form C01-HD",
    "form_basis": "(Circular 107/2017/TT-BTC of 10 October 2017, Ministry of Finance)",
    "title": "ATTENDANCE TIMESHEET",
    "month_line": "Month {m} year {y}",
    "stt": "No.",
    "name": "Full name",
    "position": "Salary grade or rank / position",
    "days": "Days of the month",
    "quy_ra_cong": "Converted to workdays",
    "time_paid": "Days paid on time wage",
    "unpaid": "Unpaid leave days",
    "insurance": "Days paid by social insurance",
    "total": "Total",
    "legend": "Timekeeping symbols",
    "signer_timekeeper": "Timekeeper",
    "signer_head": "Head of department",
    "signer_approver": "Approved by",
    "sign_hint": "(Signature, full name)",
    "place_date": "……, date … / … / …",
    "page": "Page {n}/{total}",
    "details": "Daily details",
    "staff": "Staff code",
    "date": "Date",
    "weekday": "Day",
    "symbol": "Symbol",
    "in": "In",
    "out": "Out",
    "worked_min": "Worked min",
    "late_min": "Late min",
    "early_min": "Early min",
    "value": "Workday",
    "leave": "Leave",
    "flags": "Notes",
    "unit_code": "Unit",
    "summary_title": "ATTENDANCE SUMMARY BY UNIT",
    "daily_title": "DAILY ATTENDANCE {d}",
    "history_title": "ATTENDANCE HISTORY",
    "people": "People",
    "scheduled_days": "Scheduled days",
    "work_days": "Workdays worked",
    "late_count": "Late arrivals",
    "early_count": "Early departures",
    "absent_days": "Unexplained absences",
    "leave_days": "Leave days",
    "absence_rate": "Absence rate (%)",
    "missing_punch": "Missing punch",
    "present": "Present",
    "chart_title": "Late / early by unit (minutes)",
    "late": "Late",
    "early": "Early",
    "month": "Month",
    "overtime_title": "APPROVED OVERTIME (h:mm)",
    "ot_weekday": "Weekdays",
    "ot_weekend": "Weekly rest days",
    "ot_holiday": "Public holidays",
    "ot_night": "Of which at night",
    "ot_total": "Total",
}

# Mẫu C01-HD's symbols (plus L and CT, which agencies commonly add), in the form's order.
SYMBOLS: tuple[tuple[str, str, str], ...] = (
    ("+", "Lương thời gian (làm việc)", "Time-paid work"),
    ("Ô", "Ốm, điều dưỡng", "Sick, convalescence"),
    ("Cô", "Con ốm", "Child sick"),
    ("TS", "Thai sản", "Maternity"),
    ("T", "Tai nạn", "Accident"),
    ("P", "Nghỉ phép", "Annual leave"),
    ("H", "Hội nghị, học tập", "Conference, training"),
    ("NB", "Nghỉ bù", "Compensatory rest"),
    ("KL", "Nghỉ không lương", "Unpaid leave"),
    ("N", "Ngừng việc", "Work stoppage"),
    ("LĐ", "Lao động nghĩa vụ", "Compulsory labour"),
    ("L", "Nghỉ lễ", "Public holiday"),
    ("CT", "Công tác", "Business trip"),
)

WEEKDAYS = {
    "vi": ("T2", "T3", "T4", "T5", "T6", "T7", "CN"),
    "en": ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"),
}

FLAGS = {
    "vi": {
        "missing_punch": "thiếu lượt chấm",
        "absent": "vắng",
        "late": "muộn",
        "early": "sớm",
        "corrected": "đã sửa",
        "outside_shift": "ngoài ca",
    },
    "en": {
        "missing_punch": "missing punch",
        "absent": "absent",
        "late": "late",
        "early": "early",
        "corrected": "corrected",
        "outside_shift": "outside shift",
    },
}


def labels(lang: str) -> dict[str, str]:
    """The label table of ``lang`` (NFC), or ValueError naming the languages there are."""
    if lang not in LANGS:
        raise ValueError(f"lang: {lang!r} is not one of {', '.join(LANGS)}")
    table = _VI if lang == "vi" else _EN
    return {k: nfc(v) for k, v in table.items()}


def legend(lang: str) -> list[tuple[str, str]]:
    """(symbol, meaning) pairs for the symbol legend."""
    col = 1 if lang == "vi" else 2
    return [(nfc(s[0]), nfc(s[col])) for s in SYMBOLS]


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)
