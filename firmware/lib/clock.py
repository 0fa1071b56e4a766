# The reader's sense of time: which source set it, how much to trust it, and what to use when
# nothing has set it since boot.
#
# Sources, best first: the gateway's time reply (MAC'd, answers our nonce), NTP, the DS3231
# battery-backed RTC. Every event carries the resulting quality (events.TQ_*). With no source
# since boot the clock falls back to the last known good time (persisted every few minutes and
# at every sync) plus the uptime since boot: credential expiry is then still checked against a
# time that can only be too early, never wound back by a power cut (a card that expired before
# the last sync stays expired).
import ticks
from events import TQ_RTC, TQ_SYNCED, TQ_UNSET

SYNC_VALID_MS = 24 * 3600 * 1000   # a sync is "fresh" for a day (an RTC drifts < 1 s a day)
PERSIST_EVERY_MS = 10 * 60 * 1000
EARLIEST = 1704067200               # 2024-01-01: anything before is a clock that was never set


class Clock:
    def __init__(self, store=None, rtc=None):
        """store: object with load() -> int|None and save(int) for the last known good Unix time
        (a small file on flash); rtc: object with read() -> Unix s | None and write(Unix s)
        (the DS3231), or None."""
        self._store = store
        self._rtc = rtc
        self._base_unix_ms = None   # Unix ms at _base_ticks
        self._base_ticks = ticks.ticks_ms()
        self._source = None
        self._synced_at = None
        self._persisted_at = None
        self._boot_ticks = ticks.ticks_ms()
        self._last_good = None
        if store is not None:
            try:
                v = store.load()
                if isinstance(v, int) and v >= EARLIEST:
                    self._last_good = v
            except Exception:  # noqa: BLE001 - a damaged file only costs the fallback
                self._last_good = None
        if rtc is not None:
            try:
                t = rtc.read()
            except Exception:  # noqa: BLE001 - a missing or dead RTC is not fatal
                t = None
            if t is not None and t >= EARLIEST and (self._last_good is None or t >= self._last_good):
                self._set(t * 1000, "rtc")

    # ---- setting -------------------------------------------------------------------------

    def _set(self, unix_ms, source):
        self._base_unix_ms = unix_ms
        self._base_ticks = ticks.ticks_ms()
        self._source = source

    def set_from_gateway(self, unix_ms):
        self._sync(unix_ms, "gateway")

    def set_from_ntp(self, unix_s):
        self._sync(unix_s * 1000, "ntp")

    def _sync(self, unix_ms, source):
        if unix_ms < EARLIEST * 1000:
            return
        self._set(unix_ms, source)
        self._synced_at = ticks.ticks_ms()
        if self._rtc is not None:
            try:
                self._rtc.write(unix_ms // 1000)
            except Exception:  # noqa: BLE001
                pass
        self.persist(force=True)

    # ---- reading -------------------------------------------------------------------------

    def quality(self):
        if self._source in ("gateway", "ntp") and self._synced_at is not None:
            if ticks.elapsed_ms(self._synced_at) < SYNC_VALID_MS:
                return TQ_SYNCED
            return TQ_RTC if self._rtc is not None else TQ_UNSET
        if self._source == "rtc":
            return TQ_RTC
        return TQ_UNSET

    def now(self):
        """Unix seconds from the best source, or the last-known-good fallback, or 0."""
        if self._base_unix_ms is not None:
            return (self._base_unix_ms + ticks.elapsed_ms(self._base_ticks)) // 1000
        if self._last_good is not None:
            return self._last_good + ticks.elapsed_ms(self._boot_ticks) // 1000
        return 0

    def now_for_schedules(self):
        """Time for door schedules, or None when it cannot be trusted (policy: clock_unset)."""
        if self.quality() == TQ_UNSET:
            return None
        return self.now()

    def persist(self, force=False):
        """Save the current time as last known good (called periodically by the app)."""
        if self._store is None or self.quality() == TQ_UNSET:
            return
        if not force and self._persisted_at is not None and \
                ticks.elapsed_ms(self._persisted_at) < PERSIST_EVERY_MS:
            return
        try:
            self._store.save(self.now())
            self._persisted_at = ticks.ticks_ms()
        except Exception:  # noqa: BLE001 - flash trouble is reported by health, not here
            pass


class FileStore:
    """Last known good time in a small file, replaced atomically (statefile.write)."""

    def __init__(self, path):
        self.path = path

    def load(self):
        try:
            with open(self.path) as f:
                return int(f.read(32))
        except (OSError, ValueError):
            return None

    def save(self, t):
        import statefile

        statefile.write(self.path, str(int(t)).encode())
