"""A real Mosquitto for tests: own config, free ports, TLS with a test CA, passwords and ACLs.

Each broker runs in its own temporary folder and is stopped by the fixture that started it.
The ACL gives every reader exactly the topics of the MQTT contract (docs/mqtt.md): it publishes
only under its own ``cbcc/v1/r/<id>/`` and reads its own plus the broadcast topics.
"""

from __future__ import annotations

import datetime as dt
import getpass
import ipaddress
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ACL = """\
# readers: only their own topics, plus what is broadcast to all
pattern write cbcc/v1/r/%u/ev
pattern write cbcc/v1/r/%u/status
pattern write cbcc/v1/r/%u/health
pattern read cbcc/v1/r/%u/cmd
pattern read cbcc/v1/r/%u/cfg
pattern read cbcc/v1/r/%u/time
pattern read cbcc/v1/r/%u/ack
pattern read cbcc/v1/all/#

# the gateway
user gateway
topic readwrite cbcc/v1/#
topic read $SYS/#
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca_and_server_cert(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost; returns (ca, cert, key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("cbcc test CA"))
        .issuer_name(_name("cbcc test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (folder / "ca.crt", folder / "server.crt", folder / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    paths[2].chmod(0o600)
    return paths


@dataclass
class Broker:
    """A running Mosquitto: ``port`` is plain MQTT on loopback, ``tls_port`` MQTT over TLS."""

    folder: Path
    users: dict[str, str]
    port: int = 0
    tls_port: int = 0
    ca: Path = field(default_factory=Path)
    proc: subprocess.Popen[bytes] | None = None
    # True: the durable set-up docs/mqtt.md asks of production brokers (sessions and queued QoS 1
    # messages saved in the folder and reloaded on restart, per-client queues deep enough for a
    # large backlog, no broker-side in-flight cap: MQTT 5 clients set theirs with Receive Maximum).
    persistence: bool = False

    def start(self) -> None:
        cert, key = self.folder / "server.crt", self.folder / "server.key"
        if not cert.exists():  # a restart keeps the CA readers have pinned
            self.ca, cert, key = make_ca_and_server_cert(self.folder)
        pw = self.folder / "passwd"
        pw.write_text("")
        for user, password in self.users.items():
            subprocess.run(["mosquitto_passwd", "-b", str(pw), user, password], check=True)
        (self.folder / "acl").write_text(ACL)
        self.port = self.port or free_port()
        self.tls_port = self.tls_port or free_port()
        conf = self.folder / "mosquitto.conf"
        conf.write_text(
            # Run as whoever runs the tests (as root, mosquitto would otherwise drop to a user
            # that cannot read this folder).
            f"user {getpass.getuser()}\n"
            f"per_listener_settings false\n"
            f"allow_anonymous false\n"
            f"password_file {pw}\n"
            f"acl_file {self.folder / 'acl'}\n"
            + self._persistence_conf()
            + f"log_dest file {self.folder / 'mosquitto.log'}\n"
            f"log_type error\nlog_type warning\nlog_type notice\n"
            f"listener {self.port} 127.0.0.1\n"
            f"listener {self.tls_port} 127.0.0.1\n"
            f"cafile {self.ca}\ncertfile {cert}\nkeyfile {key}\n"
            f"tls_version tlsv1.2\n"
        )
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited: " + self.log())
            try:
                with socket.create_connection(("127.0.0.1", self.tls_port), timeout=0.2):
                    pass
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start: " + self.log())

    def _persistence_conf(self) -> str:
        if not self.persistence:
            return "persistence false\n"
        return (
            f"persistence true\npersistence_location {self.folder}/\nautosave_interval 1800\n"
            "max_queued_messages 1000000\nmax_queued_bytes 0\nmax_inflight_messages 0\n"
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # with persistence, mosquitto saves its database on SIGTERM
            try:
                self.proc.wait(timeout=60 if self.persistence else 5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Stop and start on the same ports (a broker outage as readers see it)."""
        self.stop()
        self.start()

    def log(self) -> str:
        p = self.folder / "mosquitto.log"
        return p.read_text() if p.exists() else ""
