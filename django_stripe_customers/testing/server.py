"""The HTTP shell around ``EmulatorApp``: ``http.server.ThreadingHTTPServer`` (daemon threads)
on 127.0.0.1 with a lean HTTP/1.1 keep-alive handler, one write per response and ``TCP_NODELAY``,
so it is never the bottleneck of a benchmark.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import Any

from .app import EmulatorApp, RequestHeaders, Response

_PHRASES = {status.value: status.phrase for status in HTTPStatus}


_MAX_LINE = 65536
_MAX_HEADERS = 100


class Handler(socketserver.StreamRequestHandler):
    """A lean HTTP/1.1 keep-alive loop (``BaseHTTPRequestHandler``'s header parsing costs
    more than the whole emulated call)."""

    timeout = 300  # an idle keep-alive connection is dropped after this many seconds
    server: Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        try:
            while self._handle_one():
                pass
        except (ConnectionError, TimeoutError):
            return

    def _handle_one(self) -> bool:
        """Serve one request; True to keep the connection open."""
        line = self.rfile.readline(_MAX_LINE + 1)
        if not line:
            return False
        parts = line.decode("latin-1").split()
        if len(line) > _MAX_LINE or len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self._write_plain(400, "Bad Request")
            return False
        method, target, version = parts
        headers = RequestHeaders()
        for _ in range(_MAX_HEADERS + 1):
            raw = self.rfile.readline(_MAX_LINE + 1)
            if raw in (b"\r\n", b"\n", b""):
                break
            name, colon, value = raw.decode("latin-1").partition(":")
            if colon:
                headers.add(name.strip(), value.strip())
        else:
            self._write_plain(431, "Request Header Fields Too Large")
            return False
        connection = (headers.get("Connection") or "").lower()
        keep_alive = (
            "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        )
        if (headers.get("Expect") or "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = self._read_body(headers)
        response = self.server.app.handle(method, target, headers, body)
        self._write(response, keep_alive)
        return keep_alive

    def _read_body(self, headers: RequestHeaders) -> bytes:
        if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline(_MAX_LINE).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(_MAX_LINE)
        length = int(headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, response: Response, keep_alive: bool) -> None:
        lines = [
            f"HTTP/1.1 {response.status} {_PHRASES.get(response.status, '')}",
            "Content-Type: application/json",
            f"Content-Length: {len(response.body)}",
        ]
        lines.extend(f"{name}: {value}" for name, value in response.headers.items())
        if not keep_alive:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        self.wfile.write(head + response.body)

    def _write_plain(self, status: int, reason: str) -> None:
        body = reason.encode()
        self.wfile.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: EmulatorApp) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
