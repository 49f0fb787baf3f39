"""``StripeEmulator``: the Customer API of Stripe served over HTTP from a background thread.

Standard library only: ``http.server.ThreadingHTTPServer`` (daemon threads) on 127.0.0.1 with a
lean HTTP/1.1 keep-alive handler, one write per response and ``TCP_NODELAY``, so it is never
the bottleneck of a benchmark.
"""

from __future__ import annotations

import secrets
import socket
import socketserver
import threading
from collections.abc import Iterable
from fnmatch import fnmatchcase
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

from . import objects
from .accounts import Stores
from .app import EmulatorApp, RequestHeaders, Response
from .limits import Limits
from .store import Clock, LoggedRequest, Store
from .webhooks import Delivery, WebhookDispatcher, WebhookEndpoint

_PHRASES = {status.value: status.phrase for status in HTTPStatus}


_MAX_LINE = 65536
_MAX_HEADERS = 100


class _Handler(socketserver.StreamRequestHandler):
    """A lean HTTP/1.1 keep-alive loop (``BaseHTTPRequestHandler``'s header parsing costs
    more than the whole emulated call)."""

    timeout = 300  # an idle keep-alive connection is dropped after this many seconds
    server: _Server

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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: EmulatorApp) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

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


class StripeEmulator:
    """A local Stripe for the Customer API; see the package docstring for what it covers.

    Use ``with StripeEmulator() as stripe: requests.get(stripe.url + "/v1/customers", ...)``.

    ``latency_ms``, ``latency_jitter_ms``, ``rate_limit`` and ``rate_limit_burst`` give it
    Stripe's pace (see ``limits.Limits``); ``set_limits()`` changes them on a running emulator
    and ``reset()`` puts back the ones it was built with. ``live_keys=True`` accepts any
    ``sk_live_``/``rk_live_`` key too, served from the live-mode stores (see ``accounts``).
    """

    def __init__(
        self,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_urls: Iterable[str] = (),
        webhook_secret: str | None = None,
        clock: Clock | None = None,
        *,
        webhook_max_attempts: int = 4,
        webhook_retry_delays: Iterable[float] = (0.1, 0.5, 2.0),
        max_logged_requests: int = 100_000,
        latency_ms: float = 0.0,
        latency_jitter_ms: float = 0.0,
        rate_limit: float | None = None,
        rate_limit_burst: int | None = None,
        live_keys: bool = False,
    ) -> None:
        self._built_limits = Limits(latency_ms, latency_jitter_ms, rate_limit, rate_limit_burst)
        self.host = host
        self.port = port
        self.clock = clock or Clock()
        self.webhook_secret = webhook_secret or "whsec_" + secrets.token_hex(16)
        self.store = Store(self.clock, max_logged_requests=max_logged_requests)
        self.stores = Stores(self.store)
        self.webhooks = WebhookDispatcher(
            self.clock,
            self.stores.delivered,
            [WebhookEndpoint(url, self.webhook_secret) for url in webhook_urls],
            max_attempts=webhook_max_attempts,
            retry_delays=tuple(webhook_retry_delays),
        )
        limits = self._built_limits
        self.app = EmulatorApp(self.store, self.webhooks, api_key, limits, self.stores, live_keys)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> StripeEmulator:
        if self._server is not None:
            return self
        self._server = _Server((self.host, self.port), self.app)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"stripe-emulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.webhooks.stop()

    def __enter__(self) -> StripeEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: what to use as the client's API base."""
        return f"http://{self.host}:{self.port}"

    api_base = url

    @property
    def api_key(self) -> str | None:
        """The only key accepted, or None when any ``sk_test_``/``rk_test_`` key is (and any
        ``sk_live_``/``rk_live_`` one with ``live_keys``)."""
        return self.app.api_key

    @property
    def limits(self) -> Limits:
        """The latency and rate limit in force."""
        return self.app.limits

    def set_limits(
        self,
        *,
        latency_ms: float = 0.0,
        latency_jitter_ms: float = 0.0,
        rate_limit: float | None = None,
        rate_limit_burst: int | None = None,
    ) -> None:
        """Replace the latency and rate limit from the next request on (what is not given is
        off: ``set_limits()`` removes both); token buckets start full."""
        self.app.set_limits(Limits(latency_ms, latency_jitter_ms, rate_limit, rate_limit_burst))

    # -- introspection ----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget customers, events, idempotency keys, connected accounts (both modes), the
        request log, added webhooks; put the clock and the limits back as they were built (token
        buckets full)."""
        with self.store.lock:
            self.stores.reset()
            self.webhooks.reset()
            self.clock.reset()
            self.app.set_limits(self._built_limits)

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request received, oldest first (``Authorization`` shown as REDACTED)."""
        with self.store.lock:
            return list(self.store.requests)

    def count(
        self, method: str | None = None, path: str | None = None, *, status: int | None = None
    ) -> int:
        """How many requests matched; ``path`` may be a glob (``/v1/customers/*``); ``status``
        is the HTTP status answered (``count(status=429)``: how many were rate limited)."""
        return sum(
            1
            for entry in self.requests
            if (method is None or entry.method == method.upper())
            and (path is None or fnmatchcase(entry.path, path))
            and (status is None or entry.status == status)
        )

    @property
    def customers(self) -> dict[str, dict[str, Any]]:
        """The stored customers by id, live (deleted ones carry ``"deleted": True``)."""
        return self.store.customers

    @property
    def events(self) -> list[dict[str, Any]]:
        """Events generated so far, oldest first."""
        with self.store.lock:
            return list(self.store.events.values())

    def customers_of(
        self, account: str | None = None, *, livemode: bool = False
    ) -> dict[str, dict[str, Any]]:
        """``customers`` of a connected account's store (None: the platform's), in a mode."""
        return self.stores.store_for(account, livemode).customers

    def events_of(
        self, account: str | None = None, *, livemode: bool = False
    ) -> list[dict[str, Any]]:
        """``events`` of a connected account's store (None: the platform's), in a mode."""
        with self.store.lock:
            return list(self.stores.store_for(account, livemode).events.values())

    @property
    def accounts(self) -> dict[str, dict[str, Any]]:
        """The test-mode connected accounts by id, live (deauthorized ones are gone)."""
        return self.accounts_of()

    def accounts_of(self, *, livemode: bool = False) -> dict[str, dict[str, Any]]:
        """The connected accounts of a mode by id, live."""
        return self.stores.platform(livemode).accounts

    def add_account(
        self,
        *,
        type: str = "standard",
        email: str | None = None,
        country: str = "US",
        metadata: dict[str, str] | None = None,
        livemode: bool = False,
        account_id: str | None = None,
    ) -> str:
        """Connect a new account to the platform (as ``POST /v1/accounts``), with a random id
        or ``account_id``; returns its id."""
        params = {"type": type, "email": email, "country": country, "metadata": metadata}
        with self.store.lock:
            return str(self.stores.platform(livemode).connect(params, account_id)["id"])

    def deauthorize(self, account_id: str, *, livemode: bool = False) -> str:
        """Disconnect a connected account, as when it revokes the platform's access; emits
        ``account.application.deauthorized`` (to Connect endpoints). Returns the event id."""
        with self.store.lock:
            return self.stores.deauthorize(account_id, livemode, self.webhooks)

    @property
    def webhook_deliveries(self) -> list[Delivery]:
        return list(self.webhooks.deliveries)

    def add_webhook(
        self,
        url: str,
        secret: str | None = None,
        *,
        connect: bool = False,
        livemode: bool = False,
    ) -> str:
        """Deliver events created from now on to ``url``, signed with ``secret``; returns it.

        An account endpoint (the default) gets the platform's own events; a Connect endpoint
        (``connect=True``) those of every connected account. Endpoints are per mode. Without a
        secret: ``webhook_secret`` for an account endpoint, a new one for a Connect endpoint.
        """
        if secret is None:
            secret = "whsec_" + secrets.token_hex(16) if connect else self.webhook_secret
        self.webhooks.add(url, secret, connect=connect, livemode=livemode)
        return secret

    def wait_for_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until every queued delivery (and retry) is done; False on timeout."""
        return self.webhooks.wait(timeout)

    def seed(
        self,
        count: int,
        spacing: int = 60,
        *,
        account: str | None = None,
        livemode: bool = False,
    ) -> list[str]:
        """Create ``count`` customers, oldest first, ``spacing`` seconds apart up to now, in the
        store of ``account`` (None: the platform's own) in a mode.

        Seeded customers are plain data: no events, no webhooks. Returns their ids.
        """
        with self.store.lock:
            return objects.seed(self.stores.store_for(account, livemode), count, spacing)
