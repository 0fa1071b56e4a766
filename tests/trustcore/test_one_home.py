"""Rules with one home: the reader id (host trustcore/ids.py and firmware assembly.py agree) and
atomic file replacement (trustcore/files.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import assembly
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustcore import files, ids

GOOD = ["a", "0", "hn-snv-t3-p301", "r1", "a" * 63, "9-9"]
BAD = ["", "-a", "A", "a_b", "a.b", "a b", "a/b", "a+b", "a#", "é", "a" * 64, "rd\n", "hn-SNV"]


@pytest.mark.parametrize("rid", GOOD)
def test_reader_ids_that_follow_the_rule(rid: str) -> None:
    assert ids.is_reader_id(rid) and assembly.valid_reader_id(rid)


@pytest.mark.parametrize("rid", BAD)
def test_reader_ids_that_do_not(rid: str) -> None:
    assert not ids.is_reader_id(rid) and not assembly.valid_reader_id(rid)


@given(st.text(alphabet="abz09-_.A/ é\n", max_size=70))
def test_host_and_firmware_rules_agree(rid: str) -> None:
    assert ids.is_reader_id(rid) == assembly.valid_reader_id(rid)


def test_non_strings_are_not_reader_ids() -> None:
    assert not ids.is_reader_id(None) and not ids.is_reader_id(b"r1") and not assembly.valid_reader_id(None)


def test_write_atomic_replaces_and_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "state"
    target.write_bytes(b"old")
    files.write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]


def test_write_atomic_sets_the_mode_it_is_given(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    files.write_atomic(target, b"k", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_failed_replace_leaves_no_temporary_file(tmp_path: Path) -> None:
    """The rename fails (the target is a directory): OSError, the target untouched, no debris."""
    target = tmp_path / "busy"
    target.mkdir()
    (target / "inside").write_bytes(b"x")
    with pytest.raises(OSError):
        files.write_atomic(target, b"new")
    assert (target / "inside").read_bytes() == b"x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]
