"""COSE_Sign1 (RFC 9052 §4.2) as credential-v1 uses it: tag 18, protected {1: alg, 4: kid}.

Producing: the protected header is exactly ``{1: alg, 4: kid}``, the unprotected header is ``{}``
and everything is core deterministic CBOR. Parsing: strict (see ``cbor_strict``), and the signature
is checked over the protected and payload bytes exactly as received; nothing is re-encoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cbor2 import CBORTag
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from trustcore import cbor_det, cbor_strict, keys
from trustcore.errors import N_, TemplatedError

ALG_RS256 = -257
ALG_ES256 = -7
ALG_NAMES = {ALG_RS256: "RS256", ALG_ES256: "ES256"}
HDR_ALG = 1
HDR_CRIT = 2
HDR_KID = 4


class CoseFormatError(TemplatedError, ValueError):
    """The bytes are not a COSE_Sign1 within the contract's limits (reason/status ``malformed``)."""


@dataclass(frozen=True)
class Sign1:
    """A parsed COSE_Sign1: the raw protected and payload bytes as received, plus alg and kid."""

    protected: bytes
    alg: int
    kid: bytes
    unprotected: dict[int | str, Any]
    payload: bytes
    signature: bytes

    def to_be_signed(self) -> bytes:
        return sig_structure(self.protected, self.payload)


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """CBOR of ``["Signature1", protected, h'', payload]`` (external_aad is always empty)."""
    return cbor_det.dumps(["Signature1", protected, b"", payload])


def alg_for(private_key: keys.PrivateKey) -> int:
    """RS256 for RSA keys, ES256 for P-256 keys."""
    return ALG_RS256 if isinstance(private_key, rsa.RSAPrivateKey) else ALG_ES256


def _sign_raw(private_key: keys.PrivateKey, alg: int, data: bytes) -> bytes:
    if alg == ALG_RS256 and isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if alg == ALG_ES256 and isinstance(private_key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    raise ValueError(f"cannot sign alg {alg} with {type(private_key).__name__}")


def sign1(
    payload: bytes, private_key: keys.PrivateKey, *, kid: bytes | None = None, alg: int | None = None
) -> bytes:
    """Produce a tagged COSE_Sign1 over ``payload``; kid defaults to the key's own kid."""
    alg = alg_for(private_key) if alg is None else alg
    kid = keys.kid_of(private_key.public_key()) if kid is None else kid
    protected = cbor_det.dumps({HDR_ALG: alg, HDR_KID: kid})
    signature = _sign_raw(private_key, alg, sig_structure(protected, payload))
    return cbor_det.dumps(CBORTag(cbor_strict.COSE_SIGN1_TAG, [protected, {}, payload, signature]))


def parse_sign1(data: bytes, max_size: int) -> Sign1:
    """Strictly parse a tagged COSE_Sign1 of at most ``max_size`` bytes (no signature check).

    Rules: outer item is tag 18 (shortest form) over a 4-element array; protected is a bstr whose
    content decodes (depth counted afresh) to a map with int alg (1) and an 8-byte bstr kid (4) and
    no ``crit`` (2); other labels are ignored. Unprotected is a map (ignored); payload and signature
    are bstr. Raises ``CoseFormatError``.
    """
    if len(data) > max_size:
        raise CoseFormatError(N_("larger than {max} bytes"), max=max_size)
    try:
        outer = cbor_strict.decode(data, allow_cose_tag=True)
    except cbor_strict.CborStrictError as exc:
        raise CoseFormatError(exc.template, **exc.fields) from None
    if not isinstance(outer, CBORTag):
        raise CoseFormatError(N_("not a tagged COSE_Sign1 (tag 18)"))
    body = outer.value
    if not isinstance(body, list) or len(body) != 4:
        raise CoseFormatError(N_("COSE_Sign1 must be an array of 4 elements"))
    protected, unprotected, payload, signature = body
    if not isinstance(protected, bytes):
        raise CoseFormatError(N_("protected header must be a byte string"))
    if not isinstance(unprotected, dict):
        raise CoseFormatError(N_("unprotected header must be a map"))
    if not isinstance(payload, bytes):
        raise CoseFormatError(N_("payload must be a byte string"))
    if not isinstance(signature, bytes):
        raise CoseFormatError(N_("signature must be a byte string"))
    try:
        header = cbor_strict.decode(protected)
    except cbor_strict.CborStrictError as exc:
        raise CoseFormatError(N_("protected header: {reason}"), reason=exc) from None
    if not isinstance(header, dict):
        raise CoseFormatError(N_("protected header must be a map"))
    if HDR_CRIT in header:
        raise CoseFormatError(N_("critical headers are not understood"))
    alg, kid = header.get(HDR_ALG), header.get(HDR_KID)
    if not isinstance(alg, int) or isinstance(alg, bool):
        raise CoseFormatError(N_("protected alg (1) must be an integer"))
    if not isinstance(kid, bytes) or len(kid) != keys.KID_LEN:
        raise CoseFormatError(N_("protected kid (4) must be an 8-byte byte string"))
    return Sign1(protected, alg, kid, unprotected, payload, signature)


def verify_signature(msg: Sign1, public_key: keys.PublicKey) -> bool:
    """Check ``msg``'s signature under ``public_key`` for its alg (RS256 strict, or ES256).

    RS256: the signature must be exactly modulus-length and below n; OpenSSL then compares the whole
    EMSA-PKCS1-v1_5 block (padding and DigestInfo re-encoded, not parsed leniently).
    """
    data = msg.to_be_signed()
    try:
        if msg.alg == ALG_RS256 and isinstance(public_key, rsa.RSAPublicKey):
            k = (public_key.key_size + 7) // 8
            if len(msg.signature) != k:
                return False
            if int.from_bytes(msg.signature, "big") >= public_key.public_numbers().n:
                return False
            public_key.verify(msg.signature, data, padding.PKCS1v15(), hashes.SHA256())
            return True
        if msg.alg == ALG_ES256 and isinstance(public_key, ec.EllipticCurvePublicKey):
            if len(msg.signature) != 64 or not isinstance(public_key.curve, ec.SECP256R1):
                return False
            r = int.from_bytes(msg.signature[:32], "big")
            s = int.from_bytes(msg.signature[32:], "big")
            public_key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
            return True
    except (InvalidSignature, ValueError):
        return False
    return False


def verify_sign1(data: bytes, public_key: keys.PublicKey, max_size: int) -> Sign1:
    """Parse and verify in one step; returns the parsed pieces or raises.

    Raises ``CoseFormatError`` for malformed input and ``InvalidSignature`` when the kid is not the
    key's or the signature does not verify.
    """
    msg = parse_sign1(data, max_size)
    if msg.kid != keys.kid_of(public_key) or not verify_signature(msg, public_key):
        raise InvalidSignature("COSE_Sign1 signature does not verify under the given key")
    return msg
