"""Shared pytest fixtures and the markers that say what a test needs.

Layout: one folder per area mirroring the code (``trustcore/``, ``provisioning/``, ``cbcc/``,
``gateway/``, ``firmware/``, ``rf/``, ``sim/``, ``hardware/``, ``e2e/``); helpers are the
``support`` package. The fast loop skips what needs outside services or takes minutes::

    uv run pytest -m "not pg and not mosquitto and not e2e"

Markers are applied here, at collection, so a test file need not repeat them:

- ``pg``: the test uses ``pg_url``, or the PostgreSQL case of ``db_url``.
- ``mosquitto``: the test uses the shared ``broker`` fixture, or the test or a fixture of its module
  starts a Mosquitto of its own (its source says ``Broker(`` or runs the ``mosquitto`` binary).
- ``micropython``: the test runs firmware under the MicroPython unix port (its name says
  ``micropython``, or its body calls one of the runners of ``support.micropython_runner``).
- ``e2e``: everything under ``tests/e2e`` (the README demo, firmware against the real gateway).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
# Firmware modules import each other by flat name (as they do from /lib on the reader); CPython
# tests of portable firmware logic put that folder on the path the same way. ``tests/rf`` holds
# test_rf_support.py, the RF rig the terminal, virtual reader and list publisher tests share: it
# stays beside the RF tests because they also run, unchanged, under MicroPython from that folder.
for extra in (ROOT / "firmware" / "lib", ROOT / "firmware" / "tools", ROOT / "firmware", TESTS, TESTS / "rf"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))


import pytest  # noqa: E402
from support.broker import Broker  # noqa: E402

# What a module's broker users default to; a module sets BROKER_USERS / BROKER_PERSISTENCE to change it.
DEFAULT_BROKER_USERS = {"gateway": "pw-gateway"}
MICROPYTHON_CALLS = ("run_snippet(", "run_micropython(", "run_under_micropython(", "micropython_binary(")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (dropped afterwards)."""
    from support import pg

    url = pg.create_database()
    yield url
    pg.drop_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database URL a test runs against: once on SQLite (a file in tmp_path), once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'g.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A real Mosquitto on free ports (plain on loopback, TLS with a fresh CA) and the contract's ACL.

    Users come from the test module's ``BROKER_USERS`` (name → password); ``BROKER_PERSISTENCE =
    True`` turns on the durable set-up production brokers use (docs/mqtt.md).
    """
    users: dict[str, str] = dict(getattr(request.module, "BROKER_USERS", DEFAULT_BROKER_USERS))
    persistence = bool(getattr(request.module, "BROKER_PERSISTENCE", False))
    b = Broker(tmp_path_factory.mktemp("mosquitto"), users, persistence=persistence)
    b.start()
    yield b
    b.stop()


def _uses_micropython(item: pytest.Function) -> bool:
    if "micropython" in item.name:
        return True
    source = _source(item.function)
    return any(call in source for call in MICROPYTHON_CALLS)


MOSQUITTO_SIGNS = ("Broker(", "mosquitto")


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""


def _needs_mosquitto(item: pytest.Function) -> bool:
    """The shared broker fixture, or a test / module fixture that starts Mosquitto itself."""
    module = vars(item.module)
    if "broker" in item.fixturenames and "broker" not in module:
        return True
    bodies = [_source(item.function)] + [_source(module[n]) for n in item.fixturenames if n in module]
    return any(sign in body for body in bodies for sign in MOSQUITTO_SIGNS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    e2e = TESTS / "e2e"
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        names = item.fixturenames
        if "pg_url" in names:
            item.add_marker(pytest.mark.pg)
        if _needs_mosquitto(item):
            item.add_marker(pytest.mark.mosquitto)
        if _uses_micropython(item):
            item.add_marker(pytest.mark.micropython)
        if e2e in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)
