# The signed-object envelope shared by trust lists, revocation lists and (later) configuration
# and commands (credential-v1 §3–4): a COSE_Sign1 under one pinned key, RS256, whose payload
# carries a strictly increasing seq. Status codes are the reader's words for what happened.
import cbor
import cose
import cose_key
import rs256

OK = "ok"
NOOP = "noop"              # same seq as held: nothing to do
ROLLBACK = "rollback"      # lower seq than held: refused and reported
MALFORMED = "malformed"
UNSUPPORTED_ALG = "unsupported_alg"
UNKNOWN_ROOT = "unknown_root"  # kid is not the pinned key's
BAD_SIGNATURE = "bad_signature"


def open_signed(blob, max_size, key):
    """Verify blob under the pinned PublicKey; return (status, payload_map_or_None)."""
    try:
        s1 = cose.parse_sign1(blob, max_size)
    except cose.CoseError:
        return MALFORMED, None
    if s1.alg != cose.ALG_RS256 or key.kty != cose_key.KTY_RSA:
        return UNSUPPORTED_ALG, None
    if s1.kid != key.kid:
        return UNKNOWN_ROOT, None
    if not rs256.verify(key.n, key.k, s1.digest(), s1.signature):
        return BAD_SIGNATURE, None
    try:
        payload = cbor.decode(blob, s1.payload_start, s1.payload_end)
    except cbor.CborError:
        return MALFORMED, None
    if not isinstance(payload, dict):
        return MALFORMED, None
    return OK, payload


def is_uint(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def is_version(v, n):
    # An integer n, not a boolean (True == 1 in Python).
    return is_uint(v) and v == n


def seq_status(new_seq, held_seq):
    """Monotonic versions: greater is accepted, equal is a no-op, lower is a rollback."""
    if held_seq is None or new_seq > held_seq:
        return OK
    if new_seq == held_seq:
        return NOOP
    return ROLLBACK
