"""The emulator's HTTP layer: HTTP/1.1 keep-alive, one answer per request, framing."""

from __future__ import annotations

import socket

from django_stripe_customers.testing import StripeEmulator

AUTH = b"Authorization: Bearer sk_test_http\r\n"


def exchange(emulator: StripeEmulator, raw: bytes, answers: int = 1) -> bytes:
    """Send raw bytes on one connection; read until ``answers`` responses (or close)."""
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as sock:
        sock.sendall(raw)
        data = b""
        while data.count(b"HTTP/1.1 ") < answers or not _complete(data, answers):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def _complete(data: bytes, answers: int) -> bool:
    """True once the last of ``answers`` responses has its whole body."""
    _, _, rest = data.rpartition(b"HTTP/1.1 ")
    headers, sep, body = rest.partition(b"\r\n\r\n")
    if not sep:
        return False
    length = next(
        int(line.split(b":")[1])
        for line in headers.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return len(body) >= length


def test_keep_alive_serves_several_requests_on_one_connection(
    stripe_emulator: StripeEmulator,
) -> None:
    """HTTP/1.1: the connection stays open between requests (``protocol_version``)."""
    request = b"GET /v1/customers HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n"
    data = exchange(stripe_emulator, request * 3, answers=3)
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert b"Connection: close" not in data
    assert stripe_emulator.count("GET", "/v1/customers") == 3


def test_connection_close_is_honoured(stripe_emulator: StripeEmulator) -> None:
    """HTTP/1.1 ``Connection: close``: the answer says so and the server closes."""
    request = b"GET /v1/customers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + AUTH + b"\r\n"
    data = exchange(stripe_emulator, request)
    assert b"Connection: close" in data


def test_chunked_body(stripe_emulator: StripeEmulator) -> None:
    """A chunked form body decodes like a Content-Length one."""
    form = b"email=chunk%40example.com&name=C"
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(form), form)
    request = (
        b"POST /v1/customers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n" + AUTH + b"\r\n" + body
    )
    data = exchange(stripe_emulator, request)
    assert b"HTTP/1.1 200 OK" in data
    assert b'"email": "chunk@example.com"' in data


def test_malformed_request_line_is_400(stripe_emulator: StripeEmulator) -> None:
    """Not HTTP: a plain 400 and the connection closed, no crash of the handler thread."""
    data = exchange(stripe_emulator, b"NONSENSE\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 400")


def test_stop_closes_idle_keep_alive_connections() -> None:
    """``stop()`` leaves no connection served by a stopped emulator."""
    emulator = StripeEmulator().start()
    sock = socket.create_connection(("127.0.0.1", emulator.port), timeout=5)
    try:
        sock.sendall(b"GET /v1/customers HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        emulator.stop()
        assert sock.recv(65536) == b""
    finally:
        sock.close()
