"""Batch issuance from a list of staff with a resumable journal.

The journal (JSON lines, appended and fsync'ed after every card) says which staff codes are done,
so a batch interrupted by a crash, Ctrl-C or an unplugged encoder is started again with the same
command and carries on with the next staff member. It is a convenience, not the source of truth:
the gateway database is (an issuance left ``pending`` is completed when its card is presented
again, whatever the journal says; a staff member already holding a live card is refused).

Journal line: ``{"staff": code, "state": "done"|"failed", "serial": n, "uid": hex, "at": iso,
"error": text}`` (``serial``/``uid`` for done, ``error`` for failed).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from cbcc.errors import CbccError
from cbcc.issuance.service import Issued, Issuer, Staff, Station, issue_card
from messages import _
from provisioning.encoders.base import Encoder, LinkLost, NoCard
from trustcore import timeutil


@dataclass
class BatchReport:
    done: list[Issued] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already done per the journal
    failed: dict[str, str] = field(default_factory=dict)
    resumed: list[Issued] = field(default_factory=list)  # unfinished issuances found on cards


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: set[str] = set()
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                if n == len(lines):  # torn by a crash mid-write (the card is in the database anyway)
                    tmp = path.with_suffix(path.suffix + ".tmp")
                    tmp.write_text("".join(x + "\n" for x in lines[:-1]), encoding="utf-8")
                    os.replace(tmp, path)
                    break
                raise CbccError(_("{path}:{line}: not a journal line", path=path, line=n)) from None
            if isinstance(entry, dict) and entry.get("state") == "done":
                self.done.add(str(entry.get("staff")))

    def append(self, entry: dict[str, object]) -> None:
        entry = {**entry, "at": timeutil.to_iso(int(time.time()))}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())


def run_batch(
    engine: Engine,
    encoder: Encoder,
    issuer: Issuer,
    staff: Iterable[Staff],
    station: Station,
    journal: Journal,
    *,
    next_card: Callable[[Staff], None],
    on_progress: Callable[[Staff, str, str], None] | None = None,
    retries: int = 3,
) -> BatchReport:
    """Issue a card to every staff member the journal does not list as done.

    ``next_card(staff)`` returns once a card is on the encoder (it prompts the operator, or feeds
    the virtual encoder). A broken link is retried on the same card (``retries`` times): the
    issuance resumes where the card stopped. Refusals (staff holding a live card, card not blank)
    are journaled as failed and the batch goes on.
    """
    report = BatchReport()
    say = on_progress or (lambda _s, _m, _d: None)
    for st in staff:
        if st.staff_code in journal.done:
            report.skipped.append(st.staff_code)
            say(st, "skipped", "")
            continue
        next_card(st)
        attempt = 0
        while True:
            try:
                got = issue_card(engine, encoder, issuer, st, station)
            except (LinkLost, NoCard) as exc:
                attempt += 1
                if attempt > retries:
                    report.failed[st.staff_code] = str(exc)
                    journal.append({"staff": st.staff_code, "state": "failed", "error": str(exc)})
                    say(st, "failed", str(exc))
                    break
                say(st, "retry", "")
                next_card(st)
                continue
            except CbccError as exc:
                report.failed[st.staff_code] = str(exc)
                journal.append({"staff": st.staff_code, "state": "failed", "error": str(exc)})
                say(st, "failed", str(exc))
                break
            if got.resumed and got.staff_code != st.staff_code:
                # the card carried someone else's unfinished issuance: completed; ask for a blank one
                report.resumed.append(got)
                journal.append(
                    {"staff": got.staff_code, "state": "done", "serial": got.serial, "uid": got.uid.hex()}
                )
                next_card(st)
                continue
            report.done.append(got)
            journal.append(
                {"staff": st.staff_code, "state": "done", "serial": got.serial, "uid": got.uid.hex()}
            )
            journal.done.add(st.staff_code)
            say(st, "done", "")
            break
    return report
