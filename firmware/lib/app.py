# The reader application's tasks: the same asyncio composition on the ESP32 (main.py) and under
# the unix port (tools/virtual_reader.py); only the board and the network differ.
#
#   rf_loop       poll the field, run the tap pipeline (terminal.on_read), release the card
#   door_loop     sample door inputs every 20 ms, drive the relay, journal alarms
#   housekeeping  persist the clock, pre-erase journal space, collect garbage, feed the watchdog;
#                 between taps, check a downloaded national list in bounded steps
#   uplink.run()  deliver the journal, receive configuration, lists, commands and time
import asyncio
import gc

import rferror
from ticks import elapsed_ms, ticks_ms

DOOR_PERIOD_MS = 20
IDLE_POLL_MS = 120       # between polls of an empty field (a tap is noticed within ~0.15 s)
HOUSEKEEPING_S = 5
BACKGROUND_IDLE_MS = 100  # how soon a completed list download starts being checked


async def rf_loop(term, reader, on_decision=None, idle_ms=IDLE_POLL_MS):
    """Poll forever. A card is read once per presentation: after the decision it is halted and
    only a new presentation (leaving and re-entering the field) is read again."""
    while True:
        try:
            result = reader.read()
        except Exception as e:  # noqa: BLE001 - the driver promises not to raise; belt and braces
            result = None
            term.stats["read_failed"] += 1
            term.board.feedback("error", repr(e))
        if result is not None and (result.ok or result.reason != rferror.NO_CARD):
            fields = term.on_read(result)
            if on_decision is not None:
                on_decision(result, fields)
            # The decision is out (relay, feedback, journal): collect now, so the next tap starts
            # with a clean heap and no collection lands inside it (one did: 143 ms projected).
            gc.collect()
            await asyncio.sleep_ms(0)
        else:
            await asyncio.sleep_ms(idle_ms)


async def door_loop(term, period_ms=DOOR_PERIOD_MS):
    tick = getattr(term.board, "tick", None)  # LED/buzzer pattern timing on boards that have it
    while True:
        term.door_step()
        if tick is not None:
            tick()
        await asyncio.sleep_ms(period_ms)


async def housekeeping(term, watchdog=None, period_s=HOUSEKEEPING_S, background=None,
                       idle_ms=BACKGROUND_IDLE_MS):
    """Every period_s: persist the clock, prepare the journal, collect garbage, feed the
    watchdog. In between, background() (uplink.background_step: checking a downloaded national
    list) runs one bounded step at a time, yielding to the RF and door loops after each, so a
    tap waits for at most one step; it is polled every idle_ms while it has nothing to do."""
    while True:
        term.housekeeping()
        if watchdog is not None:
            watchdog.feed()
        t0 = ticks_ms()
        period_ms = int(period_s * 1000)
        while elapsed_ms(t0) < period_ms:
            busy = False
            if background is not None:
                try:
                    busy = background()
                except Exception:  # noqa: BLE001 - background work never ends housekeeping
                    busy = False
            if busy:
                await asyncio.sleep_ms(0)
            elif background is None:
                await asyncio.sleep_ms(period_ms)
            else:
                await asyncio.sleep_ms(idle_ms)


def on_command(term, action, args):
    """Commands from the gateway (already verified and de-duplicated by the uplink)."""
    import door

    if action == "open":
        term.door.grant(term.board.ms())
        term.board.relay(term.door.relay)
    elif action == "lockdown":
        term.policy_state.set_lockdown(True)
        term.set_mode(door.LOCKDOWN)
    elif action == "release":
        term.policy_state.set_lockdown(False)
        term.set_mode(door.NORMAL)
    elif action == "reboot":
        term.reboot_requested = True
    elif action == "resync":
        term.lists_changed()  # the uplink re-fetches every retained object itself
    else:
        return "unknown_action"
    return "ok"
