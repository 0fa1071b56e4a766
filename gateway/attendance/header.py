"""The timesheet header: who the sheet is for (Mẫu C01-HD "Đơn vị", "Bộ phận", "Mã đơn vị").

Shared by the attendance engine (which fills it from the staff records) and the renderers in
``gateway.attendance.render`` (which print it). Names and per-day data are in the report dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ReportHeader:
    """Header of one monthly timesheet.

    ``positions`` maps a staff code to its "Ngạch bậc lương hoặc cấp bậc chức vụ" text (column C);
    a code absent from it prints an empty cell.
    """

    agency_name: str  # Đơn vị (e.g. "Sở Nội vụ tỉnh Nam Định")
    agency_code: str  # Mã đơn vị SDNS / QHNS
    unit_code: str  # the unit the sheet covers ("" = every unit in scope)
    unit_name: str  # Bộ phận
    month: str  # "YYYY-MM"
    positions: dict[str, str] = field(default_factory=dict)
