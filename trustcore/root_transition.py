"""Root transitions: replacing the national root key pinned in every reader (docs/key-ceremony.md).

A transition is a COSE_Sign1 (RS256) made by the root it replaces, payload
``{0: "root", 1: 1, 2: seq, 3: iat, 4: new root COSE_Key, 5: kid of the replaced root}``; seq 1
replaces the root pinned at provisioning, seq 2 the root of transition 1, and so on. The gateway
publishes the whole chain (a CBOR array of the transitions as byte strings, seq 1..k in order) as a
list of kind ``root``: a reader that missed several transitions walks them in order from the root
it holds. Statuses are the reader's (firmware/lib/root_chain.py): ``ok``, ``noop``, ``rollback``,
``out_of_order``, ``malformed``, ``unsupported_alg``, ``unknown_root``, ``bad_signature``,
``too_large``; all links or none are taken.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from trustcore import cbor_det, cbor_strict, cose, keys, signed_object
from trustcore.errors import N_, TrustcoreError

TYPE = "root"
VERSION = 1
MAX_LINK = 2048
MAX_CHAIN = 16384
MAX_LINKS = 16
OUT_OF_ORDER = "out_of_order"
TOO_LARGE = "too_large"


def build_link(current: rsa.RSAPrivateKey, new_root: keys.PublicKey, seq: int, iat: int) -> bytes:
    """The transition to ``new_root``, signed by the root it replaces (``current``)."""
    if not isinstance(new_root, rsa.RSAPublicKey):
        raise TrustcoreError(N_("a root key must be RSA"))
    if keys.kid_of(new_root) == keys.kid_of(current.public_key()):
        raise TrustcoreError(N_("the new root is the current root"))
    if seq < 1:
        raise TrustcoreError(N_("transition seq starts at 1"))
    keys.public_key_from_cose(keys.cose_key_map(new_root))  # the reader's rules for a key
    payload = {0: TYPE, 1: VERSION, 2: seq, 3: iat, 4: keys.cose_key_map(new_root),
               5: keys.kid_of(current.public_key())}  # fmt: skip
    return cose.sign1(cbor_det.dumps(payload), current, alg=cose.ALG_RS256)


def build_chain(links: list[bytes]) -> bytes:
    if not links or len(links) > MAX_LINKS:
        raise TrustcoreError(N_("a root chain holds 1 to {max} transitions"), max=MAX_LINKS)
    blob = cbor_det.dumps(list(links))
    if len(blob) > MAX_CHAIN:
        raise TrustcoreError(
            N_("root chain would be {size} bytes; readers accept at most {max}"),
            size=len(blob),
            max=MAX_CHAIN,
        )
    return blob


def read_chain(blob: bytes) -> list[bytes]:
    """The transitions of a chain file (strict CBOR); TrustcoreError when it is not one."""
    try:
        links = cbor_strict.decode(blob)
    except cbor_strict.CborStrictError as exc:
        raise TrustcoreError(N_("not a root chain: {reason}"), reason=exc) from None
    if not isinstance(links, list) or not all(isinstance(x, bytes) for x in links):
        raise TrustcoreError(N_("not a root chain: an array of byte strings is expected"))
    return list(links)


@dataclass(frozen=True)
class LinkResult:
    status: str
    seq: int | None = None
    new_root: keys.PublicKey | None = None


def check_link(blob: bytes, key: keys.PublicKey) -> LinkResult:
    if len(blob) > MAX_LINK:
        return LinkResult(TOO_LARGE)
    status, p = signed_object.open_signed(blob, MAX_LINK, key)
    if p is None:
        return LinkResult(status)
    seq, m, prev = signed_object.as_uint(p.get(2)), p.get(4), p.get(5)
    if (p.get(0) != TYPE or signed_object.as_uint(p.get(1)) != VERSION or seq is None or seq < 1
            or signed_object.as_uint(p.get(3)) is None or prev != keys.kid_of(key)):  # fmt: skip
        return LinkResult(signed_object.MALFORMED)
    try:
        new = keys.public_key_from_cose(m)
    except keys.KeyFormatError:
        return LinkResult(signed_object.MALFORMED)
    if not isinstance(new, rsa.RSAPublicKey) or keys.kid_of(new) == keys.kid_of(key):
        return LinkResult(signed_object.MALFORMED)
    return LinkResult(signed_object.OK, seq, new)


@dataclass(frozen=True)
class ChainResult:
    status: str
    seq: int = 0
    root: keys.PublicKey | None = None


def verify_chain(blob: bytes, root: keys.PublicKey, held_seq: int = 0) -> ChainResult:
    """What a reader holding ``root`` at ``held_seq`` does with a chain (firmware/lib/root_chain.py)."""
    if len(blob) > MAX_CHAIN:
        return ChainResult(TOO_LARGE)
    try:
        links = cbor_strict.decode(blob)
    except cbor_strict.CborStrictError:
        return ChainResult(signed_object.MALFORMED)
    if (not isinstance(links, list) or not links or len(links) > MAX_LINKS
            or not all(isinstance(x, bytes) for x in links)):  # fmt: skip
        return ChainResult(signed_object.MALFORMED)
    k = len(links)
    if k < held_seq:
        return ChainResult(signed_object.ROLLBACK)
    if k == held_seq:
        return ChainResult(signed_object.NOOP, held_seq, root)
    key = root
    for i in range(held_seq, k):
        r = check_link(links[i], key)
        if r.status != signed_object.OK:
            return ChainResult(r.status)
        if r.seq != i + 1:
            return ChainResult(OUT_OF_ORDER)
        if r.new_root is None:
            return ChainResult(signed_object.MALFORMED)
        key = r.new_root
    return ChainResult(signed_object.OK, k, key)
