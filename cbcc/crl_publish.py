"""``cbcc crl publish``: build the national revocation list from the gateway's card table and
publish it to the readers now (a delta for what changed since the last full list, or a full list
with ``--full`` or when one is due). The running gateway does the same on its own schedule and on
every card change (gateway/crl_publisher.py); this command is for operators and first set-up.

Register with ``crl_app.command("publish")(crl_publish)`` (cbcc/crl.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cbcc.common import PassphraseFile, cli_errors, stdout_console
from messages import _

ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Gateway settings file (TOML); CBCC_* variables override it.",
                 dir_okay=False),
]  # fmt: skip


def crl_publish(
    root_key: Annotated[Path, typer.Option("--root-key", help="Encrypted national root private key (PEM).")],
    config: ConfigFile = None,
    passphrase_file: PassphraseFile = None,
    full: Annotated[
        bool, typer.Option("--full", help="Publish a full list even when a delta would do.")
    ] = False,
    folder: Annotated[
        Path | None, typer.Option("--folder", help="Where objects are kept; default <data_dir>/ncrl.")
    ] = None,
) -> None:
    """Build, sign (national root), record and publish the national revocation list."""
    with cli_errors():
        from cryptography.hazmat.primitives.asymmetric import rsa

        from cbcc.errors import CbccError
        from cbcc.gateway import _settings
        from gateway import db
        from gateway.crl_publisher import CrlPublisher, local_root_signer
        from gateway.service import ensure_gateway_password, load_signing_key, local_broker_files
        from trustcore import keys, passphrase

        settings = _settings(config)
        key = keys.load_private_key(
            root_key, lambda: passphrase.obtain(passphrase_file, confirm=False, purpose=str(root_key))
        )
        if not isinstance(key, rsa.RSAPrivateKey):
            raise CbccError(_("the national root key must be RSA (readers verify RS256)"))
        manifest_key = load_signing_key(settings)
        if manifest_key is None:
            raise CbccError(_("no configuration signing key: list manifests cannot be signed"))
        mqtt = settings.mqtt
        password = mqtt.password.get_secret_value()
        if mqtt.embedded and not password:
            password = ensure_gateway_password(local_broker_files(settings))
        client = _connect(mqtt.host, mqtt.port, mqtt.username, password, mqtt.ca_file if mqtt.tls else None)
        engine = db.make_engine(settings.database.url)
        try:

            def publish(topic: str, payload: bytes, qos: int, retain: bool) -> None:
                client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(30)

            pub = CrlPublisher(engine, local_root_signer(key), key.public_key(), manifest_key, publish,
                               folder or settings.data_dir / "ncrl")  # fmt: skip
            new = pub.publish(force_full=full)
        finally:
            client.loop_stop()
            client.disconnect()
            engine.dispose()
        out = stdout_console()
        if new is None:
            out.print(_("nothing changed since the last publication"))
        else:
            out.print(
                _(
                    "published {kind} seq {seq}: {n} revoked, {size} bytes",
                    kind=new.kind,
                    seq=new.seq,
                    n=len(new.revoked),
                    size=new.size,
                )
            )


def _connect(host: str, port: int, user: str, password: str, ca_file: Path | None):  # type: ignore[no-untyped-def]
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="cbcc-crl-publish", protocol=paho.MQTTv5)
    c.username_pw_set(user, password)
    if ca_file is not None:
        c.tls_set(str(ca_file))
    c.connect(host, port)
    c.loop_start()
    return c
