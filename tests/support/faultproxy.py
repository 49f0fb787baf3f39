"""A fault-injecting HTTP reverse proxy for testing the Stripe client's failure handling.

It sits between the client (``api_base=proxy.url``) and a Stripe server (localstripe or the
emulator), records every request it receives (the ``Authorization`` value only as a SHA-256),
and applies scripted faults to the next matching requests: refused or reset connections, a
response lost after the upstream committed, canned 4xx/5xx/409/429 answers, and stalls.

Standard library only, loopback only, bounded: a cap on concurrent connections, on request and
response body sizes, per-socket timeouts, and a cap on stall durations. Every response carries
``Connection: close`` and every forwarded request uses a fresh upstream connection, so a fault
hits exactly one request.

    with FaultProxy("http://127.0.0.1:8420") as proxy:
        proxy.enqueue(RESET(), STATUS(503), RATE_LIMIT(retry_after=1))
        ...  # the next three requests get those faults, the rest pass through
        assert [r.fault for r in proxy.requests] == [...]
        proxy.enqueue(AFTER(2, REFUSE(method="GET")))  # the third GET from now is refused
"""

from __future__ import annotations

import enum
import hashlib
import http.client
import http.server
import itertools
import json
import re
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "AFTER",
    "CONFLICT",
    "DROP_RESPONSE",
    "HOLD_RESPONSE",
    "RATE_LIMIT",
    "REFUSE",
    "RESET",
    "STALL",
    "STATUS",
    "Fault",
    "FaultKind",
    "FaultProxy",
    "RecordedRequest",
]

# Hop-by-hop headers (RFC 9110 section 7.6.1) and the ones the proxy sets itself.
_NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
_NOT_RETURNED = _NOT_FORWARDED | {"server"}  # the upstream's Date is Stripe's clock: kept


class FaultKind(enum.Enum):
    REFUSE = "refuse"  # read the request, then close (FIN) without answering or forwarding
    RESET = "reset"  # read the request, then reset (RST) without answering or forwarding
    DROP_RESPONSE = "drop_response"  # forward, read the upstream answer, then RST the client
    STATUS = "status"  # answer a canned status and Stripe-shaped error body, not forwarded
    STALL = "stall"  # answer nothing for ``seconds``, then close; not forwarded
    HOLD_RESPONSE = "hold_response"  # forward, then keep the answer until ``gate`` is set


@dataclass(frozen=True)
class Fault:
    """One scripted fault. ``method``/``path`` (a regex matched in full) restrict which
    request takes it; a request that matches no queued fault passes through. ``passes``
    matching requests go through untouched before the fault applies (see ``AFTER``)."""

    kind: FaultKind
    status: int = 0
    seconds: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()
    body: Mapping[str, Any] | None = None
    method: str | None = None
    path: str | None = None
    gate: threading.Event | None = None
    reached: threading.Event | None = None
    passes: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or re.fullmatch(self.path, path) is not None


def _filters(method: str | None, path: str | None) -> dict[str, Any]:
    return {"method": method, "path": path}


def REFUSE(*, method: str | None = None, path: str | None = None) -> Fault:
    """Close the client connection (FIN) before forwarding anything."""
    return Fault(FaultKind.REFUSE, **_filters(method, path))


def RESET(*, method: str | None = None, path: str | None = None) -> Fault:
    """Reset the client connection (RST) before forwarding anything."""
    return Fault(FaultKind.RESET, **_filters(method, path))


def DROP_RESPONSE(*, method: str | None = None, path: str | None = None) -> Fault:
    """Forward, let the upstream commit, then reset the client without sending the answer."""
    return Fault(FaultKind.DROP_RESPONSE, **_filters(method, path))


def STATUS(
    status: int,
    *,
    headers: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
    method: str | None = None,
    path: str | None = None,
) -> Fault:
    """Answer ``status`` with a Stripe-shaped error body (or ``body``) without forwarding."""
    return Fault(
        FaultKind.STATUS,
        status=status,
        headers=tuple((headers or {}).items()),
        body=body,
        **_filters(method, path),
    )


def RATE_LIMIT(
    retry_after: float | None = 1,
    *,
    method: str | None = None,
    path: str | None = None,
) -> Fault:
    """429 with ``Retry-After`` (omitted when None) and a ``rate_limit`` error body."""
    headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
    body = {
        "error": {
            "type": "invalid_request_error",
            "code": "rate_limit",
            "message": "Too many requests hit the API too quickly (injected by FaultProxy).",
        }
    }
    return STATUS(429, headers=headers, body=body, method=method, path=path)


def CONFLICT(*, method: str | None = None, path: str | None = None) -> Fault:
    """409 with a ``lock_timeout`` error body, as Stripe answers concurrent access to an object."""
    body = {
        "error": {
            "type": "invalid_request_error",
            "code": "lock_timeout",
            "message": (
                "This object cannot be accessed right now because another API request or "
                "Stripe process is currently accessing it (injected by FaultProxy)."
            ),
        }
    }
    return STATUS(409, body=body, method=method, path=path)


def STALL(seconds: float, *, method: str | None = None, path: str | None = None) -> Fault:
    """Read the request, answer nothing for ``seconds`` (capped by the proxy), then close."""
    return Fault(FaultKind.STALL, seconds=seconds, **_filters(method, path))


def HOLD_RESPONSE(
    gate: threading.Event,
    reached: threading.Event | None = None,
    *,
    method: str | None = None,
    path: str | None = None,
) -> Fault:
    """Forward, let the upstream answer, set ``reached``, then keep the answer from the client
    until ``gate`` is set (at most the proxy's ``max_stall``): the answer arrives late, after
    whatever the test does meanwhile."""
    return Fault(FaultKind.HOLD_RESPONSE, gate=gate, reached=reached, **_filters(method, path))


def AFTER(count: int, fault: Fault) -> Fault:
    """``fault``, applied to the matching request after the next ``count`` (which pass through
    untouched, and are not offered to the faults queued behind it): "the server goes away
    after N requests"."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    return replace(fault, passes=count)


def _default_error_body(status: int) -> dict[str, Any]:
    if status >= 500:
        error_type = "api_error"
    elif status == 402:
        error_type = "card_error"
    else:
        error_type = "invalid_request_error"
    message = f"{http.HTTPStatus(status).phrase} (HTTP {status} injected by FaultProxy)."
    return {"error": {"type": error_type, "message": message}}


def _bad_gateway() -> tuple[int, list[tuple[str, str]], bytes]:
    body = {"error": {"type": "api_error", "message": "FaultProxy could not reach the upstream."}}
    return 502, [("Content-Type", "application/json")], json.dumps(body).encode("utf-8")


@dataclass
class RecordedRequest:
    """A request as the proxy received it. ``headers`` has lower-cased names and no
    ``authorization`` value: only its scheme and SHA-256 are kept."""

    seq: int
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    auth_scheme: str | None
    auth_sha256: str | None
    received_at: float
    fault: FaultKind | None = None
    forwarded: bool = False
    upstream_status: int | None = None
    response_status: int | None = None
    upstream_error: str | None = None

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")

    @property
    def stripe_version(self) -> str | None:
        return self.headers.get("stripe-version")

    @property
    def stripe_account(self) -> str | None:
        return self.headers.get("stripe-account")

    @property
    def user_agent(self) -> str | None:
        return self.headers.get("user-agent")

    @property
    def query_params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)

    @property
    def form(self) -> list[tuple[str, str]]:
        """The body decoded as ``application/x-www-form-urlencoded`` pairs, in order."""
        return parse_qsl(self.body.decode("utf-8"), keep_blank_values=True)

    def auth_is(self, value: str) -> bool:
        """Whether the Authorization header was exactly ``value`` (e.g. ``"Bearer sk_..."``)."""
        return self.auth_sha256 == hashlib.sha256(value.encode("utf-8")).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        self.timeout = self.server.proxy.socket_timeout
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the record is the log."""

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        proxy = self.server.proxy
        self.close_connection = True
        if self.headers.get("Transfer-Encoding"):
            self.send_error(501, "chunked request bodies are not supported")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return
        if length < 0 or length > proxy.max_body:
            self.send_error(413, "request body too large for FaultProxy")
            return
        body = self.rfile.read(length) if length else b""
        record = proxy._record(self.command, self.path, self.headers, body)
        fault = proxy._take_fault(record.method, record.path)
        record.fault = fault.kind if fault else None

        if fault is None or fault.kind in (FaultKind.DROP_RESPONSE, FaultKind.HOLD_RESPONSE):
            status, headers, payload = self._forward(record, body)
            if fault is not None and fault.kind is FaultKind.DROP_RESPONSE:
                self._abort()
                return
            if fault is not None and fault.gate is not None:
                if fault.reached is not None:
                    fault.reached.set()
                fault.gate.wait(proxy.max_stall)
            self._answer(record, status, headers, payload)
        elif fault.kind is FaultKind.REFUSE:
            return  # close_connection: FIN with nothing sent
        elif fault.kind is FaultKind.RESET:
            self._abort()
        elif fault.kind is FaultKind.STALL:
            proxy._stopping.wait(min(fault.seconds, proxy.max_stall))
        else:
            error_body = fault.body if fault.body is not None else _default_error_body(fault.status)
            payload = json.dumps(error_body).encode("utf-8")
            headers = [("Content-Type", "application/json"), *fault.headers]
            headers.append(("Request-Id", f"req_faultproxy_{record.seq}"))
            self._answer(record, fault.status, headers, payload)

    def _forward(
        self, record: RecordedRequest, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        proxy = self.server.proxy
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _NOT_FORWARDED}
        headers["Host"] = proxy.upstream_netloc
        headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(
            proxy.upstream_host, proxy.upstream_port, timeout=proxy.upstream_timeout
        )
        record.forwarded = True
        try:
            conn.request(
                self.command, proxy.upstream_prefix + self.path, body=body, headers=headers
            )
            response = conn.getresponse()
            payload = response.read(proxy.max_response + 1)
            response_headers = [
                (k, v) for k, v in response.getheaders() if k.lower() not in _NOT_RETURNED
            ]
            record.upstream_status = response.status
        except (OSError, http.client.HTTPException) as exc:
            record.upstream_error = f"{type(exc).__name__}: {exc}"
            return _bad_gateway()
        finally:
            conn.close()
        if len(payload) > proxy.max_response:
            record.upstream_error = "response too large"
            return _bad_gateway()
        if proxy.inject_request_id and not any(
            k.lower() == "request-id" for k, _ in response_headers
        ):
            response_headers.append(("Request-Id", f"req_faultproxy_{record.seq}"))
        return response.status, response_headers, payload

    def _answer(
        self, record: RecordedRequest, status: int, headers: list[tuple[str, str]], payload: bytes
    ) -> None:
        record.response_status = status
        if any(name.lower() == "date" for name, _ in headers):
            self.send_response_only(status)  # the upstream's Date, not the proxy's own
        else:
            self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _abort(self) -> None:
        """Make the server close this connection with an RST instead of a FIN."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.server._resets.add(self.connection)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = True
    allow_reuse_address = False

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self._slots = threading.BoundedSemaphore(proxy.max_connections)
        self._resets: set[socket.socket] = set()
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.proxy._rejected += 1
            self.shutdown_request(request)
            return
        with self._open_lock:
            self._open.add(request)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release(request)

    def _release(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        self._slots.release()

    def shutdown_request(self, request: Any) -> None:
        if request in self._resets:
            self._resets.discard(request)
            request.close()  # SO_LINGER (1, 0): the close sends RST, no FIN first
            return
        super().shutdown_request(request)

    def interrupt_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@dataclass
class FaultProxy:
    """The proxy. ``start()``/``stop()`` or use as a context manager; ``url`` once started."""

    upstream: str
    max_connections: int = 32
    max_body: int = 1 << 20
    max_response: int = 8 << 20
    socket_timeout: float = 10.0
    upstream_timeout: float = 10.0
    max_stall: float = 10.0
    inject_request_id: bool = False
    _faults: list[Fault] = field(default_factory=list, init=False, repr=False)
    _requests: list[RecordedRequest] = field(default_factory=list, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _seq: itertools.count[int] = field(default_factory=itertools.count, init=False, repr=False)
    _server: _Server | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _rejected: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be a plain http:// URL, got {self.upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.upstream_netloc = parts.netloc
        self.upstream_prefix = parts.path.rstrip("/")

    # lifecycle -----------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        if self._server is not None:
            raise RuntimeError("FaultProxy already started")
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            # stop() waits up to one poll for the loop to notice: 10 ms, not 50, because a
            # proxy is started and stopped for every test that uses one.
            kwargs={"poll_interval": 0.01},
            name="faultproxy",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()  # wakes stalls
        server.shutdown()
        server.interrupt_connections()  # wakes handlers blocked reading an idle client
        server.server_close()  # joins handler threads (block_on_close)
        thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FaultProxy not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # script and record ---------------------------------------------------------------------

    def enqueue(self, *faults: Fault) -> None:
        """Queue faults; each request takes the first queued fault that matches it."""
        with self._lock:
            self._faults.extend(faults)

    @property
    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, in arrival order (a snapshot)."""
        with self._lock:
            return list(self._requests)

    @property
    def forwarded(self) -> list[RecordedRequest]:
        """The requests the upstream received."""
        return [r for r in self.requests if r.forwarded]

    @property
    def rejected_connections(self) -> int:
        return self._rejected

    def clear(self) -> None:
        """Forget recorded requests and queued faults."""
        with self._lock:
            self._faults.clear()
            self._requests.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.matches(method, path):
                    if fault.passes:
                        self._faults[index] = replace(fault, passes=fault.passes - 1)
                        return None
                    return self._faults.pop(index)
        return None

    def _record(self, method: str, target: str, headers: Any, body: bytes) -> RecordedRequest:
        path, _, query = target.partition("?")
        kept = {k.lower(): v for k, v in headers.items() if k.lower() != "authorization"}
        auth = headers.get("Authorization")
        record = RecordedRequest(
            seq=next(self._seq),
            method=method,
            path=path,
            query=query,
            headers=kept,
            body=body,
            auth_scheme=auth.split(" ", 1)[0] if auth else None,
            auth_sha256=hashlib.sha256(auth.encode("utf-8")).hexdigest() if auth else None,
            received_at=time.monotonic(),
        )
        with self._lock:
            self._requests.append(record)
        return record
