"""Checks ``cbcc gateway run`` makes before starting anything, so a common fault is one clear line
(which setting, which variable, which flag) instead of a broker's debug log and a traceback."""

from __future__ import annotations

import errno
import socket

from gateway.errors import GatewayError
from gateway.settings import Settings
from messages import _


def _listens(settings: Settings) -> list[tuple[str, int, str, str, str]]:
    """(host, port, settings key, environment variable, flag) of every port this gateway opens."""
    ports = [(settings.http.host, settings.http.port, "[http] port", "CBCC_HTTP__PORT", "--port")]
    if settings.mqtt.embedded:
        m = settings.mqtt
        ports.append((m.host, m.port, "[mqtt] port", "CBCC_MQTT__PORT", "--mqtt-port"))
        ports.append((m.embedded_tls_host, m.embedded_tls_port, "[mqtt] embedded_tls_port",
                      "CBCC_MQTT__EMBEDDED_TLS_PORT", "--mqtt-tls-port"))  # fmt: skip
    return ports


def check_ports(settings: Settings) -> None:
    """Refuse to start when a port we would listen on is taken (often Mosquitto's service on 1883)."""
    for host, port, key, env, flag in _listens(settings):
        if port == 0:
            continue
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                hint = _(" (the Mosquitto service listens there by default)") if port == 1883 else ""
                raise GatewayError(
                    _(
                        "port {port} on {host} is already in use{hint}. Choose another: {key} in the "
                        "settings file, {env}=…, or {flag} …."
                    ).format(port=port, host=host, hint=hint, key=key, env=env, flag=flag)
                ) from None
