"""The network cable of the demo's "offline" reader: a TCP port that forwards to the broker only once
:meth:`Link.up` is called. Until then connections are refused, as when a building's switch is down,
and the reader decides offline and keeps its events in its journal; afterwards it reconnects on its
own backoff and delivers the backlog. Threads, so it runs beside the gateway without an event loop.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class Link:
    def __init__(self, upstream_port: int, port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (host, upstream_port)
        self.addr = (host, port)
        self._listener: socket.socket | None = None
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self.up_at: float | None = None

    def up(self) -> None:
        """Plug the cable in: listen and forward every connection to the broker."""
        import time

        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(self.addr)
        ls.listen(8)
        self._listener = ls
        self.up_at = time.time()
        threading.Thread(target=self._accept, name="cbcc-demo-link", daemon=True).start()

    def _accept(self) -> None:
        ls = self._listener
        while ls is not None:
            try:
                client, _addr = ls.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._socks += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Unplug: stop listening and close every forwarded connection."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            for s in self._socks:
                with contextlib.suppress(OSError):
                    s.close()
            self._socks.clear()
