"""These tests match the English refusals; tests/messages checks the Vietnamese ones (the default)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CBCC_LANG", "en")
