"""Applying validated punch and leave files in one transaction each (all or nothing)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path

from sqlalchemy.engine import Engine

from gateway.attendance import store
from gateway.attendance.errors import AttendanceError, bad_rows, cause, row_error
from gateway.attendance.punchfile import read_leaves, read_punches
from messages import _


@dataclass
class PunchImport:
    rows: int = 0
    new: int = 0  # punches not stored before
    unknown: list[str] = field(default_factory=list)  # "row N: staff: ..." kept aside

    def summary(self) -> str:
        """The line the CLI and console print after an import."""
        return _(
            "imported {rows} row(s): {new} new punch(es), {present} already present; "
            "{unknown} of unknown staff kept aside",
            rows=self.rows, new=self.new, present=self.rows - self.new, unknown=len(self.unknown),
        )  # fmt: skip


def import_punches(
    engine: Engine, path: Path, actor: str = "cli", assume: timezone | None = None
) -> PunchImport:
    """Rows of unknown staff codes are stored too (held aside: the engine lists only known staff)
    and count as soon as the staff record arrives."""
    parsed = read_punches(path, assume)
    out = PunchImport(rows=len(parsed.punches))
    with engine.begin() as conn:
        known = store.staff_known(conn, (p.staff for p in parsed.punches))
        out.unknown = [
            row_error(
                p.row,
                "staff",
                _("unknown staff code {code!r}, kept aside until the record arrives", code=p.staff),
            )
            for p in parsed.punches
            if p.staff not in known
        ]
        rows = [
            store.PunchRow(p.staff, p.at, "import", f"file:{parsed.digest}:{p.row}", p.terminal)
            for p in parsed.punches
        ]
        for i in range(0, len(rows), 5000):
            out.new += store.add_punches(conn, rows[i : i + 5000])
        store.audit(
            conn,
            actor,
            "attendance.import_punches",
            path.name,
            file=parsed.digest,
            rows=out.rows,
            new=out.new,
            unknown=len(out.unknown),
        )
    return out


def import_leaves(engine: Engine, path: Path, actor: str = "cli") -> int:
    parsed = read_leaves(path)
    errors: list[str] = []
    with engine.begin() as conn:
        known = store.staff_known(conn, (lv.staff for lv in parsed.leaves))
        for lv in parsed.leaves:
            if lv.staff not in known:
                errors.append(row_error(lv.row, "staff", _("unknown staff code {code!r}", code=lv.staff)))
        by_staff: dict[str, list[tuple[int, object, object]]] = {}
        for lv in parsed.leaves:
            for row, s, e in by_staff.get(lv.staff, []):
                if lv.start <= e and lv.end >= s:  # type: ignore[operator]
                    errors.append(
                        row_error(lv.row, "from/to", _("overlaps row {row} of the same staff", row=row))
                    )
            by_staff.setdefault(lv.staff, []).append((lv.row, lv.start, lv.end))
        if errors:
            raise AttendanceError(bad_rows(path.name, len(errors)), errors)
        for lv in parsed.leaves:
            try:
                store.add_leave(conn, lv.staff, lv.kind, lv.start, lv.end, lv.half, lv.reason)
            except AttendanceError as exc:
                errors.append(_("row {row}: {reason}", row=lv.row, reason=cause(exc)))
        if errors:  # raising rolls the whole transaction back
            raise AttendanceError(bad_rows(path.name, len(errors)), errors)
        store.audit(
            conn, actor, "attendance.import_leave", path.name, file=parsed.digest, rows=len(parsed.leaves)
        )
    return len(parsed.leaves)
