# COSE_Sign1 (RFC 9052 §4.2) parsing for credential-v1: tag 18, protected {1: alg, 4: kid}.
#
# The outer structure is walked by hand so the protected header and the payload are hashed
# exactly as received (no re-encoding, no copies of the payload for hashing).
import hashlib

import cbor

ALG_RS256 = -257
ALG_ES256 = -7

# CBOR prefix of Sig_structure = ["Signature1", protected, h'', payload]: array(4), tstr(10).
_SIG1_PREFIX = b"\x84\x6aSignature1"


class CoseError(ValueError):
    pass


class Sign1:
    """A parsed COSE_Sign1: alg, kid, payload span and signature; digest() hashes Sig_structure."""

    def __init__(self, buf, alg, kid, ps, pe, ys, ye, sig):
        self.buf = buf
        self.alg = alg
        self.kid = kid
        self._ps = ps
        self._pe = pe
        self.payload_start = ys
        self.payload_end = ye
        self.signature = sig

    def payload(self):
        return self.buf[self.payload_start:self.payload_end]

    def digest(self):
        ps = self._ps
        pe = self._pe
        ys = self.payload_start
        ye = self.payload_end
        buf = self.buf
        h = hashlib.sha256(_SIG1_PREFIX + cbor.head(2, pe - ps) + buf[ps:pe]
                           + b"\x40" + cbor.head(2, ye - ys))
        h.update(memoryview(buf)[ys:ye])
        return h.digest()


def parse_sign1(buf, max_size):
    """Parse a tagged COSE_Sign1 of at most max_size bytes; raise CoseError on anything else."""
    end = len(buf)
    if end > max_size:
        raise CoseError("oversize")
    if end < 1 or buf[0] != 0xD2:  # tag 18, shortest form
        raise CoseError("not a tagged COSE_Sign1")
    try:
        count, pos = cbor.array_head(buf, 1, end)
        if count != 4:
            raise CoseError("COSE_Sign1 must have 4 elements")
        ps, pe = cbor.span(buf, pos, end, 2)
        pos = pe
        if pos >= end or buf[pos] >> 5 != 5:
            raise CoseError("unprotected header must be a map")
        pos = cbor.skip(buf, pos, end, 1)
        ys, ye = cbor.span(buf, pos, end, 2)
        ss, se = cbor.span(buf, ye, end, 2)
        if se != end:
            raise CoseError("trailing bytes")
        hdr = cbor.decode(buf, ps, pe)
    except cbor.CborError as e:
        raise CoseError(str(e))
    alg, kid = protected_fields(hdr)
    return Sign1(buf, alg, kid, ps, pe, ys, ye, bytes(buf[ss:se]))


def protected_fields(hdr):
    """(alg, kid) of a decoded protected header; CoseError when it breaks the contract's rules."""
    if not isinstance(hdr, dict) or 2 in hdr:  # crit headers are never understood here
        raise CoseError("protected header")
    alg = hdr.get(1)
    kid = hdr.get(4)
    if not isinstance(alg, int) or isinstance(alg, bool):
        raise CoseError("alg")
    if not isinstance(kid, bytes) or len(kid) != 8:
        raise CoseError("kid")
    return alg, kid
