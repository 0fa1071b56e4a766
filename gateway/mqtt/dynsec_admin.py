"""Add and remove a reader's broker identity in a RUNNING Mosquitto, through the dynamic-security
plugin's control topic (``$CONTROL/dynamic-security/v1``), so no restart is needed.

The plugin reads ``dynamic-security.json`` only at start; ``broker_config.add_reader`` /
``remove_reader`` still write the file (for the next start), and this applies the same change to
the running broker: ``createRole`` (the reader's topics, as ``broker_config.dynsec_json``) and
``createClient`` (the reader id and its password) — ``deleteClient`` disconnects a removed reader
at once. It logs in as the deployment's broker admin (``broker_config.ADMIN_USER``, role
``cbcc-broker-admin``: only the control topics), never as a gateway user: a second connection with
the gateway's username would take over (and could wipe) the running gateway's session.
"""

from __future__ import annotations

import json
import queue
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway.mqtt import broker_config as bc
from messages import _

CONTROL = "$CONTROL/dynamic-security/v1"
RESPONSE = CONTROL + "/response"


class DynsecAdmin:
    """One admin connection; ``command`` sends a batch and waits for the plugin's answer."""

    def __init__(self, host: str, port: int, username: str, password: str, timeout_s: float = 10,
                 *, tls: bool = False, ca_file: Path | None = None) -> None:  # fmt: skip
        self.timeout_s = timeout_s
        self._answers: queue.Queue[bytes] = queue.Queue()
        self._subscribed: queue.Queue[bool] = queue.Queue()
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=username,
                        protocol=paho.MQTTv311, clean_session=True)  # fmt: skip
        c.username_pw_set(username, password)
        if tls:
            c.tls_set(ca_certs=str(ca_file) if ca_file else None)
        connack: queue.Queue[bool] = queue.Queue()
        c.on_connect = lambda _c, _u, _f, rc, _p: connack.put(not rc.is_failure)
        c.on_message = lambda _c, _u, m: self._answers.put(bytes(m.payload))
        c.on_subscribe = lambda _c, _u, _mid, codes, _p: self._subscribed.put(
            all(not getattr(rc, "is_failure", False) for rc in codes)
        )
        self.client = c
        try:
            rc = c.connect(host, port, keepalive=30)
        except OSError as exc:
            raise bc.BrokerConfigError(
                _("cannot reach the broker at {host}:{port}: {reason}", host=host, port=port, reason=exc)
            ) from None
        if rc != 0:
            raise bc.BrokerConfigError(
                _("cannot connect to the broker at {host}:{port} (rc {rc})", host=host, port=port, rc=rc)
            )
        c.loop_start()
        try:
            ok = connack.get(timeout=timeout_s)
            if ok:
                c.subscribe(RESPONSE, qos=1)
                ok = self._subscribed.get(timeout=timeout_s)
        except queue.Empty:
            ok = False
        if not ok:
            self.close()
            raise bc.BrokerConfigError(
                _(
                    "the broker at {host}:{port} refused the admin user {user} "
                    "(wrong password, or no dynamic-security plugin / admin role)",
                    host=host,
                    port=port,
                    user=username,
                )
            )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def command(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send ``commands`` (with a correlation id each) and return the plugin's responses."""
        tag = secrets.token_hex(4)
        for i, c in enumerate(commands):
            c["correlationData"] = f"{tag}-{i}"
        self.client.publish(CONTROL, json.dumps({"commands": commands}), qos=1)
        while True:
            try:
                doc = json.loads(self._answers.get(timeout=self.timeout_s))
            except queue.Empty:
                raise bc.BrokerConfigError(
                    _("the broker did not answer the dynamic-security command")
                ) from None
            responses = [r for r in doc.get("responses", [])
                         if str(r.get("correlationData", "")).startswith(tag)]  # fmt: skip
            if responses:
                return responses

    def add_reader(self, reader_id: str, password: str) -> None:
        """The reader's role and client (an existing one gets the password and role again)."""
        rid = bc.check_reader_id(reader_id)
        role = f"reader:{rid}"
        acls = [dict(a, priority=0) for a in bc.dynsec_acls(bc.reader_rules(rid))]
        res = self.command([
            {"command": "createRole", "rolename": role, "acls": acls},
            {"command": "createClient", "username": rid, "password": password, "roles": [{"rolename": role}]},
        ])  # fmt: skip
        errors = {r.get("command"): str(r.get("error", "")) for r in res if r.get("error")}
        if errors.get("createRole") and "already exists" not in errors["createRole"].lower():
            raise bc.BrokerConfigError(
                _(
                    "broker refused {command} for {id}: {reason}",
                    command="createRole",
                    id=rid,
                    reason=errors["createRole"],
                )
            )
        if errors.get("createClient"):
            if "already exists" not in errors["createClient"].lower():
                raise bc.BrokerConfigError(
                    _(
                        "broker refused {command} for {id}: {reason}",
                        command="createClient",
                        id=rid,
                        reason=errors["createClient"],
                    )
                )
            res = self.command([
                {"command": "setClientPassword", "username": rid, "password": password},
                {"command": "getClient", "username": rid},
            ])  # fmt: skip
            self._check(res, rid)
            found = [x["data"]["client"] for x in res if "client" in x.get("data", {})]
            client: dict[str, Any] = found[0] if found else {}
            roles = [r.get("rolename") for r in client.get("roles", [])]
            if role not in roles:  # Mosquitto 2.0 answers "Internal error" to a role added twice
                add = {"command": "addClientRole", "username": rid, "rolename": role}
                self._check(self.command([add]), rid)

    def remove_reader(self, reader_id: str) -> None:
        """Delete the client (the broker disconnects it at once) and its role; absent is fine."""
        rid = bc.check_reader_id(reader_id)
        res = self.command([
            {"command": "deleteClient", "username": rid},
            {"command": "deleteRole", "rolename": f"reader:{rid}"},
        ])  # fmt: skip
        for r in res:
            err = str(r.get("error", ""))
            if err and "not found" not in err.lower():
                raise bc.BrokerConfigError(
                    _(
                        "broker refused {command} for {id}: {reason}",
                        command=r.get("command"),
                        id=rid,
                        reason=err,
                    )
                )

    def set_enabled(self, reader_id: str, enabled: bool) -> None:
        """disableClient (the broker disconnects and then refuses it) or enableClient."""
        rid = bc.check_reader_id(reader_id)
        self._check(self.command([{"command": "enableClient" if enabled else "disableClient",
                                   "username": rid}]), rid)  # fmt: skip

    @staticmethod
    def _check(res: list[dict[str, Any]], rid: str) -> None:
        for r in res:
            err = str(r.get("error", ""))
            if err and "already" not in err.lower():
                raise bc.BrokerConfigError(
                    _(
                        "broker refused {command} for {id}: {reason}",
                        command=r.get("command"),
                        id=rid,
                        reason=err,
                    )
                )


def _password(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").splitlines()[0].strip()
    except (OSError, IndexError):
        raise bc.BrokerConfigError(_("cannot read the admin password from {path}", path=path)) from None


def apply_with_settings(mqtt: Any, change: Callable[[DynsecAdmin], None]) -> bool:
    """Apply ``change`` through the gateway's broker settings (``[mqtt] host, port, tls, ca_file,
    admin_password_file``); False when no admin password is configured. Errors raise
    ``BrokerConfigError`` (the caller decides whether a registration still stands)."""
    path = getattr(mqtt, "admin_password_file", None)
    if path is None or getattr(mqtt, "embedded", False):
        return False
    admin = DynsecAdmin(mqtt.host, mqtt.port, bc.ADMIN_USER, _password(Path(path)),
                        tls=bool(mqtt.tls), ca_file=mqtt.ca_file)  # fmt: skip
    try:
        change(admin)
    finally:
        admin.close()
    return True


def parse_hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise bc.BrokerConfigError(_("{value!r} is not HOST:PORT", value=text))
    return host, int(port)


@contextmanager
def connect(live: str, password_file: Path, files: bc.BrokerFiles | None = None) -> Iterator[DynsecAdmin]:
    """``with connect("127.0.0.1:1883", Path("admin.pass")) as admin: admin.add_reader(...)``."""
    host, port = parse_hostport(live)
    admin = DynsecAdmin(host, port, bc.ADMIN_USER, _password(password_file))
    try:
        yield admin
    finally:
        admin.close()
