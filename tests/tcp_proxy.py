"""A TCP proxy the test can cut: a database outage without touching the shared MariaDB."""

from __future__ import annotations

import contextlib
import select
import socket
import threading


class CuttableProxy:
    """127.0.0.1:port -> target; ``cut()`` closes everything, ``resume()`` listens again."""

    def __init__(self, target: tuple[str, int], port: int = 0) -> None:
        self.target = target
        self.port = port
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self.frozen = threading.Event()

    def freeze(self) -> None:
        """Keep every connection open but forward nothing: a server stopped with SIGSTOP."""
        self.frozen.set()

    def resume(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        self.port = listener.getsockname()[1]
        listener.listen(64)
        self._listener = listener
        self._stop = threading.Event()
        threading.Thread(target=self._accept, args=(listener, self._stop), daemon=True).start()

    def cut(self) -> None:
        self._stop.set()
        with self._lock:
            socks, self._socks = self._socks, []
        if self._listener is not None:
            socks.append(self._listener)
            self._listener = None
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def _accept(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                ready = select.select([listener], [], [], 0.2)[0]
                if not ready:
                    continue
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, stop),
                             daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                if self.frozen.is_set():
                    stop.wait(0.2)
                    continue
                ready = select.select([a, b], [], [], 0.2)[0]
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except OSError:
            return
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()
