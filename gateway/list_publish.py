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
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # the crypto stack is imported inside the functions: `cbcc --help` stays fast
    from cryptography.hazmat.primitives.asymmetric import rsa

    from provisioning import keys

KINDS = ("trust", "root")


def checked_seq(kind: str, blob: bytes, root: keys.PublicKey) -> int:
    """The seq the manifest announces; CbccError when a reader holding ``root`` would refuse it."""
    from provisioning import root_transition, trust_list
    from provisioning.errors import CbccError

    if kind == "trust":
        got = trust_list.load(blob, root)
        if got.status != "ok" or got.trust_list is None:
            raise CbccError(f"the trust list does not verify: {got.status} {got.detail}".strip())
        return got.trust_list.seq
    if kind == "root":
        chain = root_transition.verify_chain(blob, root)
        if chain.status != "ok":
            raise CbccError(f"the root chain does not verify from the pinned root: {chain.status}")
        return chain.seq
    raise CbccError(f"kind must be one of {', '.join(KINDS)}")


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


def publish_list_command(
    kind: Annotated[str, typer.Argument(help="trust | root")],
    file: Annotated[Path, typer.Argument(help="The signed trust list, or the root chain.")],
    root: Annotated[
        Path, typer.Option("--root", help="The root readers hold (trust) / were pinned with (root).")
    ],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Gateway settings file (TOML).")
    ] = None,
) -> None:
    """Publish a trust list or a root chain to every reader (retained chunks, then the manifest)."""
    from provisioning.cli_common import cli_errors, read_input, read_root_key, stdout_console

    with cli_errors():
        from gateway.cli import _settings
        from gateway.cli_crl_publish import _connect
        from gateway.service import ensure_gateway_password, load_signing_key, local_broker_files
        from provisioning.errors import CbccError

        blob = read_input(file, kind)
        seq = checked_seq(kind, blob, read_root_key(root))
        settings = _settings(config)
        manifest_key = load_signing_key(settings)
        if manifest_key is None:
            raise CbccError("no configuration signing key: list manifests cannot be signed")
        mqtt = settings.mqtt
        password = mqtt.password.get_secret_value()
        if mqtt.embedded and not password:
            password = ensure_gateway_password(local_broker_files(settings))
        client = _connect(mqtt.host, mqtt.port, mqtt.username, password, mqtt.ca_file if mqtt.tls else None)
        try:

            def publish(topic: str, payload: bytes, qos: int, retain: bool) -> None:
                client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(30)

            publish_list(publish, manifest_key, kind, blob, seq)
        finally:
            client.loop_stop()
            client.disconnect()
        stdout_console().print(f"published {kind} seq {seq} ({len(blob)} bytes)")
