# Card credential v1 verification (credential-v1 §2): the nine ordered checks a reader runs
# alone, offline. The first failing check names the reason.
import cbor
import cose
import cose_key
import rs256

MAX_SIZE = 1024
SKEW = 300  # seconds of clock skew tolerated on iat (reader clocks drift between syncs)
MAX_SERIAL = 1 << 53

OK = "ok"
MALFORMED = "malformed"
UNSUPPORTED_ALG = "unsupported_alg"
UNKNOWN_ISSUER = "unknown_issuer"
BAD_SIGNATURE = "bad_signature"
ISSUER_NOT_VALID = "issuer_not_valid"
SERIAL_OUT_OF_RANGE = "serial_out_of_range"
NOT_YET_VALID = "not_yet_valid"
EXPIRED = "expired"
UID_MISMATCH = "uid_mismatch"
REVOKED = "revoked"

REASONS = (OK, MALFORMED, UNSUPPORTED_ALG, UNKNOWN_ISSUER, BAD_SIGNATURE, ISSUER_NOT_VALID,
           SERIAL_OUT_OF_RANGE, NOT_YET_VALID, EXPIRED, UID_MISMATCH, REVOKED)

# Claim keys
VER = 1
SERIAL = 2
STAFF = 3
NAME = 4
AGENCY = 5
UNIT = 6
POSITION = 7
TITLE = 8
IAT = 9
EXP = 10
UID = 11
GEN = 12
GROUPS = 13

_UINT_KEYS = (SERIAL, IAT, EXP, GEN)
_TEXT_KEYS = (STAFF, NAME, AGENCY, UNIT, POSITION, TITLE)


def _claims_ok(c):
    # Shape check of the payload map: required keys 1..12 with the contract's types.
    if not isinstance(c, dict):
        return False
    v = c.get(VER)
    if v != 1 or isinstance(v, bool):  # CBOR true would compare equal to 1
        return False
    for k in _UINT_KEYS:
        v = c.get(k)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            return False
    for k in _TEXT_KEYS:
        if not isinstance(c.get(k), str):
            return False
    u = c.get(UID)
    if not isinstance(u, bytes) or len(u) not in (4, 7, 10):
        return False
    if c[SERIAL] >= MAX_SERIAL:
        return False
    g = c.get(GROUPS)
    if g is not None:
        if not isinstance(g, list):
            return False
        for x in g:
            if not isinstance(x, str):
                return False
    elif GROUPS in c:
        return False  # present but null
    return True


def parse(cred):
    """Check 1: parse within the limits. Returns (Sign1, claims) or (None, None)."""
    try:
        s1 = cose.parse_sign1(cred, MAX_SIZE)
        claims = cbor.decode(cred, s1.payload_start, s1.payload_end)
    except (cose.CoseError, cbor.CborError):
        return None, None
    if not _claims_ok(claims):
        return None, None
    return s1, claims


def verify(cred, uid, now, trust, revocation=None, skew=SKEW):
    """Run the nine checks; return (reason, claims_or_None).

    trust: a trust.TrustList (or anything with get(kid) -> Issuer); revocation: anything with
    is_revoked(serial), or None when the reader holds no list. claims are returned whenever the
    credential parsed, so a refusal can still be journalled with its serial and staff code.
    """
    s1, c = parse(cred)
    if s1 is None:
        return MALFORMED, None
    if s1.alg != cose.ALG_RS256:
        return UNSUPPORTED_ALG, c
    iss = trust.get(s1.kid)
    if iss is None:
        return UNKNOWN_ISSUER, c
    key = iss.key
    if key.kty != cose_key.KTY_RSA or not rs256.verify(key.n, key.k, s1.digest(), s1.signature):
        return BAD_SIGNATURE, c
    if not (iss.nbf <= c[IAT] < iss.exp):
        return ISSUER_NOT_VALID, c
    if not (iss.lo <= c[SERIAL] < iss.hi):
        return SERIAL_OUT_OF_RANGE, c
    return recheck(c, uid, now, revocation, skew), c


def recheck(c, uid, now, revocation=None, skew=SKEW):
    """Checks 7–9 alone, for claims whose checks 1–6 already passed (a repeat tap of a credential
    in the reader's verified cache): validity period, chip binding, revocation."""
    if c[IAT] > now + skew:
        return NOT_YET_VALID
    if now >= c[EXP]:
        return EXPIRED
    if c[UID] != bytes(uid):
        return UID_MISMATCH
    if revocation is not None and revocation.is_revoked(c[SERIAL]):
        return REVOKED
    return OK
