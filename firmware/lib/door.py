# Door I/O logic: lock relay, door contact, request-to-exit, emergency release, tamper.
#
# Pure logic, no pins: the hardware layer samples the inputs and calls step() every few ms with
# the raw levels (True = the named condition: door open, button pressed, fire alarm active,
# enclosure opened), then drives the relay from `relay`. Keeping it free of I/O lets the safety
# rules below be tested exhaustively on a PC.
#
# Relay semantics (hardware/pinmap.json): relay energised = door released, for both lock types
# (a fail-safe maglock is wired through the NC contact, a fail-secure strike through NO), so
# "off" is always the locked state, which is also what boot, reset and crash leave.
#
# Safety rules:
# - the relay is energised only while an unlock cause is active: a granted tap or REX within its
#   unlock time, scheduled-unlocked mode, or the emergency input;
# - the emergency (fire) input releases the door whatever the mode, and is reported;
# - REX (egress) works in lockdown: lockdown stops entry, never exit;
# - inputs count only after being stable for debounce_ms (a bouncing contact or a noisy cable is
#   not an alarm);
# - the door relocks as soon as it closes after an opening (no tailgating on the rest of the
#   unlock time).

NORMAL = "normal"
UNLOCKED = "scheduled_unlocked"
LOCKDOWN = "locked_down"

FORCED_OPEN = "forced_open"
HELD_OPEN = "held_open"
TAMPER = "tamper"
FIRE = "fire"


class Debounced:
    """A raw input that changes state only after being stable for `ms`."""

    def __init__(self, ms, initial=False):
        self.ms = ms
        self.state = initial
        self._raw = initial
        self._since = None

    def update(self, now_ms, raw):
        """Feed one sample; returns True when the debounced state just changed."""
        if raw != self._raw:
            self._raw = raw
            self._since = now_ms
            return False
        if raw != self.state and self._since is not None and now_ms - self._since >= self.ms:
            self.state = raw
            return True
        return False


class Door:
    def __init__(self, unlock_ms=5000, held_open_ms=30000, debounce_ms=50, rex_unlock_ms=5000,
                 relock_on_close=True):
        self.unlock_ms = unlock_ms
        self.held_open_ms = held_open_ms
        self.rex_unlock_ms = rex_unlock_ms
        self.relock_on_close = relock_on_close
        self.mode = NORMAL
        self.relay = False
        self.contact = Debounced(debounce_ms)
        self.rex = Debounced(debounce_ms)
        self.emergency = Debounced(debounce_ms)
        self.tamper = Debounced(debounce_ms)
        self.alarms = {}  # name -> True while active
        self._unlock_until = None
        self._opened_at = None
        self._authorised_open = False

    # ---- commands from the decision pipeline ---------------------------------------------

    def grant(self, now_ms):
        """A granted tap: release for unlock_ms (or until the door closes again)."""
        self._unlock_until = now_ms + self.unlock_ms
        self._authorised_open = True
        self._drive()

    def set_mode(self, mode):
        if mode not in (NORMAL, UNLOCKED, LOCKDOWN):
            raise ValueError("door mode")
        self.mode = mode
        if mode == LOCKDOWN:
            self._unlock_until = None
        self._drive()

    def is_unlocked(self):
        return self.relay

    # ---- periodic step -------------------------------------------------------------------

    def step(self, now_ms, door_open, rex_pressed, emergency, tamper):
        """Sample the inputs; returns a list of (kind, name, active) events to journal.

        now_ms is a non-wrapping millisecond count (the hardware layer accumulates ticks_diff;
        raw ticks_ms wraps after ~12 days on an ESP32)."""
        events = []
        if self.emergency.update(now_ms, emergency):
            events.append(self._alarm(FIRE, self.emergency.state))
        if self.tamper.update(now_ms, tamper):
            events.append(self._alarm(TAMPER, self.tamper.state))
        if self.rex.update(now_ms, rex_pressed) and self.rex.state:
            self._unlock_until = now_ms + self.rex_unlock_ms
            self._authorised_open = True
            events.append(("door", "rex", True))
        if self._unlock_until is not None and now_ms >= self._unlock_until:
            self._unlock_until = None
        if self.contact.update(now_ms, door_open):
            if self.contact.state:
                self._opened_at = now_ms
                allowed = self.relay or self._authorised_open or self.mode == UNLOCKED
                events.append(("door", "opened", True))
                if not allowed:
                    events.append(self._alarm(FORCED_OPEN, True))
            else:
                self._opened_at = None
                self._authorised_open = False
                events.append(("door", "closed", True))
                if self.alarms.get(FORCED_OPEN):
                    events.append(self._alarm(FORCED_OPEN, False))
                if self.alarms.get(HELD_OPEN):
                    events.append(self._alarm(HELD_OPEN, False))
                if self.relock_on_close and self.mode != UNLOCKED:
                    self._unlock_until = None
        if (self._opened_at is not None and self.mode != UNLOCKED and not self.alarms.get(HELD_OPEN)
                and not self.emergency.state and now_ms - self._opened_at >= self.held_open_ms):
            events.append(self._alarm(HELD_OPEN, True))
        if self._unlock_until is None and not self.contact.state:
            self._authorised_open = False
        self._drive()
        return events

    def _alarm(self, name, active):
        if active:
            self.alarms[name] = True
        else:
            self.alarms.pop(name, None)
        return ("alarm", name, active)

    def _drive(self):
        if self.emergency.state:
            self.relay = True
        elif self.mode == UNLOCKED:
            self.relay = True
        else:
            # Lockdown still honours REX (egress), whose unlock is the only one left running.
            self.relay = self._unlock_until is not None
