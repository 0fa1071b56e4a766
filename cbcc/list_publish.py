"""``cbcc gateway publish-list trust|root FILE --root ROOT``: a trust list or root chain to every
reader (gateway/list_publish.py; docs/key-ceremony.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cbcc.common import cli_errors, read_input, read_root_key, stdout_console
from messages import _


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
    with cli_errors():
        from cbcc.crl_publish import _connect
        from cbcc.errors import CbccError
        from cbcc.gateway import _settings
        from gateway.list_publish import checked_seq, publish_list
        from gateway.service import ensure_gateway_password, load_signing_key, local_broker_files

        blob = read_input(file, kind)
        seq = checked_seq(kind, blob, read_root_key(root))
        settings = _settings(config)
        manifest_key = load_signing_key(settings)
        if manifest_key is None:
            raise CbccError(_("no configuration signing key: list manifests cannot be signed"))
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
        stdout_console().print(
            _("published {kind} seq {seq} ({size} bytes)", kind=kind, seq=seq, size=len(blob))
        )
