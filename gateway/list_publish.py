"""Publishing a root-signed trust list or root chain to every reader (docs/mqtt.md: retained
chunks, then the manifest signed with the configuration key; docs/key-ceremony.md).

The object is checked first as a reader would check it, so nothing a reader will refuse goes out:
a trust list under the root readers hold (``--root``), a root chain from the pinned root. Its
manifest ``seq`` is the object's own (the list's seq, the chain's number of transitions).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from messages import _, words

if TYPE_CHECKING:  # the crypto stack is imported inside the functions: `cbcc --help` stays fast
    from cryptography.hazmat.primitives.asymmetric import rsa

    from trustcore import keys

KINDS = ("trust", "root")


def checked_seq(kind: str, blob: bytes, root: keys.PublicKey) -> int:
    """The seq the manifest announces; GatewayError when a reader holding ``root`` would refuse it."""
    from gateway.errors import GatewayError
    from trustcore import root_transition, trust_list

    if kind == "trust":
        got = trust_list.load(blob, root)
        if got.status != "ok" or got.trust_list is None:
            raise GatewayError(
                _(
                    "the trust list does not verify: {status} ({words}) {detail}",
                    status=got.status,
                    words=words.status(got.status),
                    detail=got.detail or "",
                )
            )
        return got.trust_list.seq
    if kind == "root":
        chain = root_transition.verify_chain(blob, root)
        if chain.status != "ok":
            raise GatewayError(
                _(
                    "the root chain does not verify from the pinned root: {status} ({words})",
                    status=chain.status,
                    words=words.status(chain.status),
                )
            )
        return chain.seq
    raise GatewayError(_("kind must be one of {kinds}", kinds=", ".join(KINDS)))


def publish_list(
    publish: Callable[[str, bytes, int, bool], None], manifest_key: rsa.RSAPrivateKey, kind: str, blob: bytes,
    seq: int,
) -> None:  # fmt: skip
    """Retained chunks first, then the retained manifest (a reader never sees a manifest whose
    chunks are not there yet)."""
    from gateway.crl_publisher import ROOT, chunk_topic, chunks, manifest

    sha = hashlib.sha256(blob).hexdigest()
    for i, part in enumerate(chunks(blob)):
        publish(chunk_topic(sha, i), part, 1, True)
    publish(f"{ROOT}all/{kind}", manifest(manifest_key, seq, int(time.time()), kind, blob), 1, True)
