"""Applying validated punch and leave files in one transaction each (all or nothing)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path

from sqlalchemy.engine import Engine

from gateway.attendance import store
from gateway.attendance.errors import AttendanceError
from gateway.attendance.punchfile import read_leaves, read_punches


@dataclass
class PunchImport:
    rows: int = 0
    new: int = 0  # punches not stored before
    unknown: list[str] = field(default_factory=list)  # "row N: staff: ..." kept aside


def import_punches(engine: Engine, path: Path, actor: str = "cli", assume: timezone | None = None) -> PunchImport:
    """Rows of unknown staff codes are stored too (held aside: the engine lists only known staff)
    and count as soon as the staff record arrives."""
    parsed = read_punches(path, assume)
    out = PunchImport(rows=len(parsed.punches))
    with engine.begin() as conn:
        known = store.staff_known(conn, (p.staff for p in parsed.punches))
        out.unknown = [f"row {p.row}: staff: unknown staff code {p.staff!r}, kept aside until the record arrives"
                       for p in parsed.punches if p.staff not in known]  # fmt: skip
        rows = [store.PunchRow(p.staff, p.at, "import", f"file:{parsed.digest}:{p.row}", p.terminal)
                for p in parsed.punches]  # fmt: skip
        for i in range(0, len(rows), 5000):
            out.new += store.add_punches(conn, rows[i : i + 5000])
        store.audit(conn, actor, "attendance.import_punches", path.name, file=parsed.digest, rows=out.rows,
                    new=out.new, unknown=len(out.unknown))  # fmt: skip
    return out


def import_leaves(engine: Engine, path: Path, actor: str = "cli") -> int:
    parsed = read_leaves(path)
    errors: list[str] = []
    with engine.begin() as conn:
        known = store.staff_known(conn, (lv.staff for lv in parsed.leaves))
        for lv in parsed.leaves:
            if lv.staff not in known:
                errors.append(f"row {lv.row}: staff: unknown staff code {lv.staff!r}")
        by_staff: dict[str, list[tuple[int, object, object]]] = {}
        for lv in parsed.leaves:
            for row, s, e in by_staff.get(lv.staff, []):
                if lv.start <= e and lv.end >= s:  # type: ignore[operator]
                    errors.append(f"row {lv.row}: from/to: overlaps row {row} of the same staff")
            by_staff.setdefault(lv.staff, []).append((lv.row, lv.start, lv.end))
        if errors:
            raise AttendanceError(f"{path.name}: {len(errors)} bad row(s), nothing imported", errors)
        for lv in parsed.leaves:
            try:
                store.add_leave(conn, lv.staff, lv.kind, lv.start, lv.end, lv.half, lv.reason)
            except AttendanceError as exc:
                errors.append(f"row {lv.row}: {exc}")
        if errors:  # raising rolls the whole transaction back
            raise AttendanceError(f"{path.name}: {len(errors)} bad row(s), nothing imported", errors)
        store.audit(conn, actor, "attendance.import_leave", path.name, file=parsed.digest, rows=len(parsed.leaves))
    return len(parsed.leaves)
