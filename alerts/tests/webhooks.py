"""A loopback webhook that misbehaves on demand: answers 200 or 500, trickles its answer
one byte at a time, hangs without a word, or refuses connections (nothing listening on
its port). Raw sockets, so nothing in between smooths a fault away."""

import contextlib
import json
import socket
import threading
import time

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
ERROR = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class Webhook:
    """``mode`` is one of ``ok``, ``500``, ``trickle`` (the 200 answer, one byte every
    ``trickle_every`` seconds), ``hang`` (reads the request, never answers) and
    ``refuse`` (stops listening). ``bodies`` holds the JSON of every request answered
    200; ``held`` how long each connection lasted, from accept until the client let go
    (or the answer was out): the time a delivery spent on this server, measured here, apart
    from whatever the client did before and after."""

    def __init__(self, trickle_every: float = 0.5) -> None:
        self.trickle_every = trickle_every
        self.bodies: list[dict] = []
        self.requests = 0
        self.held: list[float] = []
        self.stopped = threading.Event()
        self._listener: socket.socket | None = None
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook/secret-token-123"
        self._mode = "ok"
        self._listen()

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode == "refuse" and self._listener is not None:
            self._stop_listening()
        elif mode != "refuse" and self._listener is None:
            self._listen()
        self._mode = mode

    def _stop_listening(self) -> None:
        # shutdown, not only close: close leaves a thread blocked in accept() listening.
        assert self._listener is not None
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._listener = None

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(32)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed: refuse mode or the end
            threading.Thread(target=self._serve_timed, args=(conn,), daemon=True).start()

    def _serve_timed(self, conn: socket.socket) -> None:
        accepted = time.monotonic()
        try:
            self._serve(conn)
        finally:
            self.held.append(time.monotonic() - accepted)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                body += chunk
            self.requests += 1
            mode = self._mode
            try:
                if mode == "ok":
                    self.bodies.append(json.loads(body))
                    conn.sendall(OK)
                elif mode == "500":
                    conn.sendall(ERROR)
                elif mode == "trickle":
                    for byte in OK:
                        if self.stopped.wait(self.trickle_every):
                            return
                        conn.sendall(bytes([byte]))
                    self.bodies.append(json.loads(body))  # the whole answer went out
                elif mode == "hang":
                    conn.settimeout(0.2)
                    while not self.stopped.is_set():
                        try:
                            if not conn.recv(1):
                                return  # the client gave up
                        except TimeoutError:
                            continue
            except OSError:
                return  # the client cut the connection

    def close(self) -> None:
        self.stopped.set()
        if self._listener is not None:
            self._stop_listening()
        time.sleep(0.05)
