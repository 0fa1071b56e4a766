"""The reader's boot counter persists across resets and survives a damaged file."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.micropython_runner import run_snippet


@pytest.mark.micropython
def test_boot_counter_counts_and_recovers(tmp_path: Path) -> None:
    proc = run_snippet(
        "import statefile\n"
        f"d = {str(tmp_path)!r}\n"
        "print(statefile.next_boot(d), statefile.next_boot(d), statefile.next_boot(d))\n"
        "open(d + '/boot', 'w').write('garbage')\n"
        "print(statefile.next_boot(d))\n"
        "open(d + '/boot', 'w').write('2147483647')\n"
        "print(statefile.next_boot(d), statefile.next_boot('/nonexistent/folder'))\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "2", "3", "1", "1", "1"]
