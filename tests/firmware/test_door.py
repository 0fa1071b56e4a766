"""Door I/O logic: the relay is energised only for a reason, alarms are real, the fire input
always wins. Deterministic scenarios plus a property test over random input histories, and
the same scenario under MicroPython."""

from __future__ import annotations

import json

import door
from hypothesis import given, settings
from hypothesis import strategies as st
from support.micropython_runner import run_snippet


def run(d: door.Door, t0: int, t1: int, **inputs: bool) -> list[tuple[str, str, bool]]:
    """Step every 10 ms from t0 to t1 with constant inputs; collect events."""
    ev = []
    args = {"door_open": False, "rex_pressed": False, "emergency": False, "tamper": False, **inputs}
    for t in range(t0, t1, 10):
        ev += d.step(t, **args)
    return ev


def test_boot_state_is_locked() -> None:
    d = door.Door()
    assert d.relay is False
    run(d, 0, 1000)
    assert d.relay is False and d.alarms == {}


def test_grant_unlocks_for_the_unlock_time_only() -> None:
    d = door.Door(unlock_ms=3000)
    d.grant(1000)
    assert d.relay
    run(d, 1000, 3990)
    assert d.relay
    run(d, 3990, 4100)
    assert not d.relay


def test_relocks_as_soon_as_the_door_closes_after_entry() -> None:
    d = door.Door(unlock_ms=5000)
    d.grant(0)
    ev = run(d, 0, 1000, door_open=True)
    assert ("door", "opened", True) in ev and ("alarm", "forced_open", True) not in ev
    ev = run(d, 1000, 1200, door_open=False)
    assert ("door", "closed", True) in ev
    assert not d.relay


def test_forced_open_raises_and_clears() -> None:
    d = door.Door()
    ev = run(d, 0, 500, door_open=True)
    assert ("alarm", "forced_open", True) in ev
    ev = run(d, 500, 800, door_open=False)
    assert ("alarm", "forced_open", False) in ev
    assert d.alarms == {}


def test_held_open_after_entry() -> None:
    d = door.Door(unlock_ms=2000, held_open_ms=10000)
    d.grant(0)
    ev = run(d, 0, 9000, door_open=True)
    assert ("alarm", "held_open", True) not in ev
    ev = run(d, 9000, 11000, door_open=True)
    assert ("alarm", "held_open", True) in ev
    assert ("alarm", "forced_open", True) not in ev
    ev = run(d, 11000, 11200)
    assert ("alarm", "held_open", False) in ev


def test_fire_releases_in_every_mode_and_is_reported() -> None:
    for mode in (door.NORMAL, door.LOCKDOWN, door.UNLOCKED):
        d = door.Door()
        d.set_mode(mode)
        ev = run(d, 0, 200, emergency=True)
        assert ("alarm", "fire", True) in ev and d.relay
        ev = run(d, 200, 60_000, emergency=True, door_open=True)
        assert ("alarm", "held_open", True) not in ev  # an evacuation is not a held-open door
        assert ("alarm", "forced_open", True) not in ev
        run(d, 60_000, 60_200, door_open=False, emergency=True)
        ev = run(d, 60_200, 60_400, emergency=False)
        assert ("alarm", "fire", False) in ev
        assert d.relay is (mode == door.UNLOCKED)


def test_exit_button_works_in_lockdown() -> None:
    d = door.Door(rex_unlock_ms=4000)
    d.set_mode(door.LOCKDOWN)
    ev = run(d, 0, 200, rex_pressed=True)
    assert ("door", "rex", True) in ev and d.relay
    run(d, 200, 5000)
    assert not d.relay


def test_bouncing_contact_is_not_an_alarm() -> None:
    d = door.Door(debounce_ms=50)
    ev = []
    for i, t in enumerate(range(0, 2000, 10)):
        ev += d.step(t, door_open=(i // 2) % 2 == 0, rex_pressed=False, emergency=False, tamper=False)
    assert ev == [] and d.alarms == {}


def test_scheduled_unlocked_mode() -> None:
    d = door.Door()
    d.set_mode(door.UNLOCKED)
    assert d.relay
    ev = run(d, 0, 120_000, door_open=True)
    assert not [e for e in ev if e[0] == "alarm"]
    d.set_mode(door.NORMAL)
    assert not d.relay


actions = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=400),  # ms until the next sample
        st.booleans(), st.booleans(), st.booleans(), st.booleans(),
        st.sampled_from(["", "", "", "grant", door.NORMAL, door.UNLOCKED, door.LOCKDOWN]),
    ),
    max_size=300,
)  # fmt: skip


@given(actions)
@settings(max_examples=300, deadline=None)
def test_relay_only_for_a_reason(steps: list[tuple[int, bool, bool, bool, bool, str]]) -> None:
    d = door.Door(unlock_ms=3000, rex_unlock_ms=3000, held_open_ms=5000, debounce_ms=30)
    t = 0
    last_cause = None
    for dt, opened, rex, fire, tamper, cmd in steps:
        t += dt
        if cmd == "grant":
            d.grant(t)
            last_cause = t
        elif cmd:
            d.set_mode(cmd)
        d.step(t, opened, rex, fire, tamper)
        if d.rex.state:
            last_cause = t
        recent = last_cause is not None and t - last_cause < 3000 + 400
        if d.relay:
            assert d.emergency.state or d.mode == door.UNLOCKED or recent
        if d.emergency.state or d.mode == door.UNLOCKED:
            assert d.relay


def test_same_behaviour_under_micropython() -> None:
    code = (
        "import door, json\n"
        "d = door.Door(unlock_ms=3000, held_open_ms=10000)\n"
        "out = []\n"
        "def run(t0, t1, o=False, r=False, e=False, x=False):\n"
        "    for t in range(t0, t1, 10):\n"
        "        out.extend([list(v) for v in d.step(t, o, r, e, x)])\n"
        "run(0, 500, o=True)\n"
        "run(500, 700)\n"
        "d.grant(700)\n"
        "run(700, 12000, o=True)\n"
        "run(12000, 12200)\n"
        "run(12200, 12400, e=True)\n"
        "out.append(['relay', d.relay, True])\n"
        "print(json.dumps(out))\n"
    )
    proc = run_snippet(code)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    d = door.Door(unlock_ms=3000, held_open_ms=10000)
    want = run(d, 0, 500, door_open=True) + run(d, 500, 700)
    d.grant(700)
    want += run(d, 700, 12000, door_open=True) + run(d, 12000, 12200) + run(d, 12200, 12400, emergency=True)
    assert [tuple(e) for e in got[:-1]] == want
    assert got[-1] == ["relay", True, True]
