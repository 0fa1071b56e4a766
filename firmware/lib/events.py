# Event records: what a reader journals and publishes (docs/mqtt.md, "Events").
#
# A record is a small CBOR map with integer keys (compact on flash and on air). The journal
# stores the record bytes and gives each a per-reader sequence number; the uplink seals a
# record with that number under the reader's HMAC-SHA256 key, so neither a broker nor anyone
# on the network can forge, alter or renumber attendance: only the reader and the gateway hold
# the key.
import cbor

# Record keys
TIME = 1          # Unix seconds by the reader's clock (0 when it has no idea)
TIME_QUALITY = 2  # TQ_* below
KIND = 3
BOOT = 4          # boot counter: with UPTIME, lets the gateway correct times stamped unset
UPTIME = 5        # ms since boot
# tap
DECISION = 10     # "grant", "deny", "punch" (attendance)
REASON = 11
SERIAL = 12
STAFF = 13
TECH = 14         # "desfire", "classic", "ntag"
ANTI_CLONE = 15
DOOR = 16
DIRECTION = 17    # "in", "out" or absent
PUNCH = 18        # True: this granted entry also counts as an attendance punch (role "both")
# alarms and notices
ALARM = 20
ACTIVE = 21
DETAIL = 22

TQ_UNSET = 0      # the clock was never set since boot: TIME is a guess (last known good)
TQ_RTC = 1        # from the battery-backed RTC
TQ_SYNCED = 2     # NTP or the gateway's time within the last sync interval

KIND_TAP = "tap"
KIND_ALARM = "alarm"
KIND_DOOR = "door"
KIND_BOOT = "boot"
KIND_NOTICE = "notice"

WIRE_VERSION = 1
_DOMAIN = b"cbcc-ev1"


def record(kind, t, tq, boot, uptime_ms, fields):
    """Build and encode one record; fields maps the kind-specific keys above to values."""
    m = {KIND: kind, TIME: t, TIME_QUALITY: tq, BOOT: boot, UPTIME: uptime_ms}
    for k in fields:
        v = fields[k]
        if v is not None:
            m[k] = v
    return cbor.encode(m)


def _mac_input(reader_id, seq):
    rid = reader_id.encode()
    return _DOMAIN + bytes((len(rid),)) + rid + seq.to_bytes(8, "big")


def seal(mac, reader_id, seq, rec):
    """Wire payload for one journal record: CBOR [1, seq, record, HMAC-SHA256]."""
    tag = mac.digest(_mac_input(reader_id, seq), rec)
    return cbor.encode([WIRE_VERSION, seq, rec, tag])


def open_sealed(mac, reader_id, payload):
    """The gateway's check, also usable on a reader for tests: returns (seq, record_map) or
    raises ValueError. The MAC is checked before the record is decoded."""
    import hmac_sha256

    try:
        w = cbor.decode(payload)
    except cbor.CborError as e:
        raise ValueError("not CBOR: " + str(e))
    if not isinstance(w, list) or len(w) != 4:
        raise ValueError("not a sealed event")
    ver, seq, rec, tag = w[0], w[1], w[2], w[3]
    if (not isinstance(ver, int) or isinstance(ver, bool) or ver != WIRE_VERSION
            or not isinstance(seq, int) or isinstance(seq, bool) or seq < 0
            or not isinstance(rec, bytes) or not isinstance(tag, bytes)):
        raise ValueError("not a sealed event")
    if not hmac_sha256.equal(tag, mac.digest(_mac_input(reader_id, seq), rec)):
        raise ValueError("bad MAC")
    try:
        m = cbor.decode(rec)
    except cbor.CborError as e:
        raise ValueError("record not CBOR: " + str(e))
    if not isinstance(m, dict):
        raise ValueError("record not a map")
    return seq, m
