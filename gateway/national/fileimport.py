"""Import staff and cards from a CSV or XLSX file (agencies that exchange files, not the feed).

One row = one staff record, with its card when ``serial`` is filled. Headers (first row) are the
English column names or their Vietnamese labels (see ``ALIASES``), in any order and case. Names are
normalised to NFC (files saved on macOS often hold NFD). Dates are ``YYYY-MM-DD``, ``DD/MM/YYYY`` or
spreadsheet dates.

The file is read twice, streaming: first every row is validated and the bad ones reported with
their row numbers (row 1 is the header); unless ``allow_partial``, a file with any bad row applies
nothing. Then rows are applied in chunks, each one transaction; every row is a change
``file:<sha256 prefix>:<row>``, so importing the same file again (or again after a crash) applies
nothing twice.
"""

from __future__ import annotations

import csv
import hashlib
import io
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Engine

from gateway.errors import GatewayError
from gateway.models import now_utc
from gateway.national.feed import CARD, STAFF, CardState, StaffState
from gateway.national.sync import Item, OnChange, apply_items
from messages import Joined, _
from messages.api import validation_reason

ALIASES: dict[str, str] = {
    "mã cán bộ": "staff_code", "mã cbccvc": "staff_code", "họ và tên": "full_name", "họ tên": "full_name",
    "mã cơ quan": "agency_code", "mã định danh cơ quan": "agency_code", "đơn vị": "unit",
    "chức vụ": "position", "đang công tác": "active", "số thẻ": "serial", "số serial": "serial",
    "cơ quan cấp": "issuer", "lần cấp": "gen", "trạng thái": "status", "ngày cấp": "issued_at",
    "ngày hết hạn": "expires_at",
}  # fmt: skip
COLUMNS = ("staff_code", "full_name", "agency_code", "unit", "position", "active", "serial", "issuer", "gen",
           "status", "issued_at", "expires_at")  # fmt: skip
REQUIRED = ("staff_code", "full_name", "agency_code")
STATUS_VI = {"đã cấp": "issued", "hoạt động": "issued", "khóa": "locked", "khoá": "locked",
             "thu hồi": "revoked", "hết hạn": "expired", "đã thay": "replaced"}  # fmt: skip
TRUE = {"1", "true", "yes", "x", "có", "co", "y"}
FALSE = {"0", "false", "no", "không", "khong", "n"}
MAX_ERRORS = 1000


class FileImportError(GatewayError):
    pass


@dataclass
class ImportReport:
    rows: int = 0
    bad: int = 0
    errors: list[str] = field(default_factory=list)  # "row 7: full_name: ..."
    applied: int = 0
    duplicates: int = 0
    revocation_changed: int = 0
    digest: str = ""

    @property
    def ok(self) -> bool:
        return self.bad == 0


def _header(cells: list[Any]) -> list[str | None]:
    out: list[str | None] = []
    for c in cells:
        name = unicodedata.normalize("NFC", str(c or "")).strip().lower()
        name = ALIASES.get(name, name.replace(" ", "_"))
        out.append(name if name in COLUMNS else None)
    missing = [c for c in REQUIRED if c not in out]
    if missing:
        raise FileImportError(_("row 1: missing column(s) {columns}", columns=", ".join(missing)))
    return out


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, {column: raw value}) for every non-empty data row."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        import openpyxl  # type: ignore[import-untyped]

        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            it = wb.worksheets[0].iter_rows(values_only=True)
            head = _header(list(next(it, ())))
            for n, values in enumerate(it, start=2):
                row = {h: v for h, v in zip(head, values, strict=False) if h is not None}
                if any(v not in (None, "") for v in row.values()):
                    yield n, row
        finally:
            wb.close()
    elif suffix in (".csv", ".txt"):
        with path.open("r", encoding="utf-8-sig", newline="") as f:
            sample = f.read(4096)
            f.seek(0)
            try:
                dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            reader = csv.reader(f, dialect)
            head = _header(next(reader, []))
            for n, values in enumerate(reader, start=2):
                row = {h: v for h, v in zip(head, values, strict=False) if h is not None}
                if any(v.strip() for v in row.values()):
                    yield n, row
    else:
        raise FileImportError(_("{file}: expected .csv or .xlsx", file=path.name))


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


def _date(v: Any) -> date | None:
    if v is None or v == "":
        return None
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    text = str(v).strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            pass
    raise ValueError(_("not a date: {value!r} (YYYY-MM-DD or DD/MM/YYYY)", value=text))


def _bool(v: Any) -> bool:
    if v is None or v == "":
        return True
    if isinstance(v, bool):
        return v
    text = _text(v).lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(_("not yes/no: {value!r}", value=text))


def parse_row(raw: dict[str, Any]) -> tuple[StaffState, CardState | None]:
    """One file row → validated staff (and card); raises ValueError with the column named."""
    try:
        staff_in = {"code": _text(raw.get("staff_code")), "full_name": _text(raw.get("full_name")),
                    "agency_code": _text(raw.get("agency_code")), "unit": _text(raw.get("unit")),
                    "position": _text(raw.get("position")), "active": _bool(raw.get("active"))}  # fmt: skip
    except ValueError as exc:
        raise ValueError(_("{field}: {reason}", field="active", reason=exc.args[0])) from None
    staff = _validate(STAFF, staff_in, {"code": "staff_code"})
    serial = _text(raw.get("serial"))
    if not serial:
        return staff, None
    status = _text(raw.get("status")).lower() or "issued"
    try:
        card_in: dict[str, Any] = {
            "serial": int(serial) if serial.isdigit() else serial, "staff_code": staff["code"],
            "issuer": _text(raw.get("issuer")) or staff["agency_code"],
            "gen": int(_text(raw.get("gen")) or 1), "status": STATUS_VI.get(status, status),
            "issued_at": _date(raw.get("issued_at")), "expires_at": _date(raw.get("expires_at")),
        }  # fmt: skip
    except ValueError as exc:
        raise ValueError(_("{field}: {reason}", field="card", reason=exc.args[0])) from None
    card = _validate(CARD, card_in, {})
    if card["issued_at"] and card["expires_at"] and card["expires_at"] <= card["issued_at"]:
        raise ValueError(_("expires_at: not after issued_at"))
    return staff, card


def _validate(adapter: Any, value: dict[str, Any], rename: dict[str, str]) -> Any:
    try:
        return adapter.validate_python(value, strict=False)
    except ValidationError as exc:
        msgs = []
        for e in exc.errors():
            col = ".".join(str(p) for p in e["loc"])
            msgs.append(_("{field}: {reason}", field=rename.get(col, col), reason=validation_reason(e)))
        raise ValueError(Joined(msgs, "; ")) from None


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def import_file(engine: Engine, path: Path, *, allow_partial: bool = False, chunk: int = 10_000,
                on_change: OnChange | None = None) -> ImportReport:  # fmt: skip
    report = ImportReport(digest=_digest(path))
    for n, raw in _rows(path):
        report.rows += 1
        try:
            parse_row(raw)
        except ValueError as exc:
            report.bad += 1
            if len(report.errors) < MAX_ERRORS:
                report.errors.append(_("row {row}: {reason}", row=n, reason=exc.args[0]))
    if report.bad and not allow_partial:
        return report
    prefix = f"file:{report.digest[:16]}"
    batch: list[Item] = []

    def flush() -> None:
        applied, dup, changed = apply_items(engine, batch, source="file")
        report.applied += applied
        report.duplicates += dup
        report.revocation_changed += len(changed)
        if on_change is not None and changed:
            on_change(changed)
        batch.clear()

    at = now_utc()
    for n, raw in _rows(path):
        try:
            staff, card = parse_row(raw)
        except ValueError:
            continue
        detail = f'{{"file":"{report.digest[:16]}","row":{n}}}'
        batch.append(Item(f"{prefix}:{n}", "import.record", at, staff, card, detail))
        if len(batch) >= chunk:
            flush()
    if batch:
        flush()
    return report


def write_csv(rows: list[dict[str, Any]]) -> str:
    """A CSV in the import format (for tests and as a template)."""
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(COLUMNS), extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return out.getvalue()
