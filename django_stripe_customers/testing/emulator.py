"""``StripeEmulator``: the Customer API of Stripe served over HTTP from a background thread.

Standard library only: the HTTP shell (``server``) is a ``ThreadingHTTPServer`` with a lean
keep-alive handler, so it is never the bottleneck of a benchmark.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from types import TracebackType
from typing import Any

from . import objects
from .app import EmulatorApp
from .errors import mask_key
from .limits import Limits, RateTable
from .platforms import Stores
from .server import Server
from .store import Clock, LoggedRequest, Store
from .webhooks import Delivery, WebhookDispatcher, WebhookEndpoint


class StripeEmulator:
    """A local Stripe for the Customer API; see the package docstring for what it covers.

    Use ``with StripeEmulator() as stripe: requests.get(stripe.url + "/v1/customers", ...)``.

    ``latency_ms``, ``latency_jitter_ms``, ``rate_limit``, ``rate_limit_burst``,
    ``endpoint_rate_limit``, ``endpoint_rate_limits`` and ``strict_window`` give it Stripe's pace
    (see ``limits.Limits``); ``set_limits()`` changes them on a running emulator and ``reset()``
    puts back the ones it was built with; ``max_in_window()`` and ``count_rate_limited()`` say
    what the limiters saw. ``live_keys=True`` accepts any
    ``sk_live_``/``rk_live_`` key too, served from the live-mode stores (see ``accounts``).

    Every key reaches one platform account (``acct_1EmuLatorTestAcct``), unless it is one of
    ``keys`` (key -> ``acct_`` id) or added by ``add_key()``: each of those is a key of its own,
    separate platform (see ``platforms``).
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
        endpoint_rate_limit: float | None = None,
        endpoint_rate_limits: Mapping[str, float] | None = None,
        strict_window: bool = False,
        live_keys: bool = False,
        keys: Mapping[str, str] | None = None,
    ) -> None:
        self._built_limits = Limits(
            latency_ms,
            latency_jitter_ms,
            rate_limit,
            rate_limit_burst,
            endpoint_rate_limit,
            RateTable(endpoint_rate_limits or {}),
            strict_window,
        )
        self.host = host
        self.port = port
        self.clock = clock or Clock()
        self.webhook_secret = webhook_secret or "whsec_" + secrets.token_hex(16)
        self.store = Store(self.clock, max_logged_requests=max_logged_requests)
        if api_key is not None and api_key in (keys or {}):
            raise ValueError(f"{mask_key(api_key)!r}: api_key is the default platform's key")
        self.stores = Stores(self.store, keys)
        self.webhooks = WebhookDispatcher(
            self.clock,
            self.stores.delivered,
            [WebhookEndpoint(url, self.webhook_secret) for url in webhook_urls],
            max_attempts=webhook_max_attempts,
            retry_delays=tuple(webhook_retry_delays),
        )
        limits = self._built_limits
        self.app = EmulatorApp(self.store, self.webhooks, api_key, limits, self.stores, live_keys)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> StripeEmulator:
        if self._server is not None:
            return self
        self._server = Server((self.host, self.port), self.app)
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
        """The only key of the default platform accepted, or None when any ``sk_test_``/
        ``rk_test_`` key is (and any ``sk_live_``/``rk_live_`` one with ``live_keys``); the keys
        of other platforms (``keys``) are accepted either way."""
        return self.app.api_key

    @property
    def keys(self) -> dict[str, str]:
        """The keys of other platforms (``keys=`` and ``add_key()``), each with its account id."""
        with self.store.lock:
            return dict(self.stores.keys)

    def add_key(self, api_key: str, account_id: str | None = None) -> str:
        """Accept ``api_key`` as a key of its own platform: ``account_id`` (an ``acct_`` id, or
        an added key's: one more key of that platform), by default a new ``acct_1`` + 15
        alphanumerics. Returns the platform's id.

        The key's mode is its prefix (``sk_live_``/``rk_live_``: live, whatever ``live_keys``
        says). Its requests use that platform's stores only: customers, events, idempotency
        keys, connected accounts (``Stripe-Account``: its own only, others are 403
        ``account_invalid``), webhook endpoints (``add_webhook(..., platform=id)``);
        ``GET /v1/account`` answers its id; its rate limit bucket is its own. The platform's id
        is an ``account`` for ``customers_of``/``events_of``/``seed`` and the ``platform`` of
        ``accounts_of``/``add_account``. ``reset()`` forgets the keys added by ``add_key``
        (those given as ``keys=`` stay, their platforms emptied).
        """
        if api_key == self.app.api_key:
            raise ValueError(f"{mask_key(api_key)!r}: api_key is the default platform's key")
        with self.store.lock:
            return self.stores.add_key(api_key, account_id)

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
        endpoint_rate_limit: float | None = None,
        endpoint_rate_limits: Mapping[str, float] | None = None,
        strict_window: bool = False,
    ) -> None:
        """Replace the latency and rate limits from the next request on (what is not given is
        off: ``set_limits()`` removes them all); token buckets start full, windows empty."""
        limits = Limits(
            latency_ms,
            latency_jitter_ms,
            rate_limit,
            rate_limit_burst,
            endpoint_rate_limit,
            RateTable(endpoint_rate_limits or {}),
            strict_window,
        )
        self.app.set_limits(limits)

    def max_in_window(
        self, endpoint: str | None = None, seconds: float = 1.0, key: str | None = None
    ) -> int:
        """The most requests admitted (not refused by a rate limit) in any window of
        ``seconds``, exactly: to ``endpoint`` (``"GET /v1/customers"``; ids are ``{id}`` or any
        id: ``"GET /v1/customers/cus_1"`` is ``GET /v1/customers/{id}``; None: every endpoint),
        with ``key`` (None: every key). Counts every authenticated request since the emulator
        was built or ``reset()`` (``set_limits`` keeps them; up to a million, then the oldest
        tenth goes), whatever its answer but 429 ``rate_limit``."""
        return self.app.admissions.max_in_window(endpoint, seconds, key)

    def count_rate_limited(self, endpoint: str | None = None, key: str | None = None) -> int:
        """How many requests were answered 429 ``rate_limit`` (of ``endpoint``, with ``key``,
        as ``max_in_window``) since built or ``reset()``; unlike ``count(status=429)``, not
        bounded by the request log."""
        return self.app.admissions.count_refused(endpoint, key)

    # -- introspection ----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget customers, events, idempotency keys, connected accounts (both modes), the
        request log and the limiters' record, added webhooks, the keys added by ``add_key()``
        and their platforms; put the clock, the limits and ``keys=`` back as they were built
        (token buckets full, windows empty)."""
        with self.store.lock:
            self.stores.reset()
            self.webhooks.reset()
            self.clock.reset()
            self.app.set_limits(self._built_limits)
            self.app.admissions.clear()

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
        """``customers`` of an account's store (None: the default platform's own; a platform's
        id: its own; else a connected account's), in a mode."""
        return self.stores.store_for(account, livemode).customers

    def events_of(
        self, account: str | None = None, *, livemode: bool = False
    ) -> list[dict[str, Any]]:
        """``events`` of an account's store (as ``customers_of``), in a mode."""
        with self.store.lock:
            return list(self.stores.store_for(account, livemode).events.values())

    @property
    def accounts(self) -> dict[str, dict[str, Any]]:
        """The test-mode connected accounts by id, live (deauthorized ones are gone)."""
        return self.accounts_of()

    def accounts_of(
        self, *, livemode: bool = False, platform: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """The connected accounts of a platform (None: the default one) in a mode by id, live."""
        return self.stores.platform(livemode, self.stores.check_platform(platform)).accounts

    def add_account(
        self,
        *,
        type: str = "standard",
        email: str | None = None,
        country: str = "US",
        metadata: dict[str, str] | None = None,
        livemode: bool = False,
        account_id: str | None = None,
        platform: str | None = None,
    ) -> str:
        """Connect a new account to a platform (None: the default one; as ``POST
        /v1/accounts``), with a random id or ``account_id``; returns its id."""
        params = {"type": type, "email": email, "country": country, "metadata": metadata}
        with self.store.lock:
            owner = self.stores.platform(livemode, self.stores.check_platform(platform))
            return str(owner.connect(params, account_id)["id"])

    def deauthorize(self, account_id: str, *, livemode: bool = False) -> str:
        """Disconnect a connected account, as when it revokes its platform's access; emits
        ``account.application.deauthorized`` (to that platform's Connect endpoints). Returns the
        event id."""
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
        platform: str | None = None,
    ) -> str:
        """Deliver events created from now on to ``url``, signed with ``secret``; returns it.

        An account endpoint (the default) gets the platform's own events; a Connect endpoint
        (``connect=True``) those of every connected account. Endpoints are per mode and per
        platform (None: the default one; an added key's id: that platform's). Without a secret:
        ``webhook_secret`` for the default platform's account endpoint, else a new one.
        """
        with self.store.lock:
            owner = self.stores.check_platform(platform)
        if secret is None:
            own = not connect and owner is None
            secret = self.webhook_secret if own else "whsec_" + secrets.token_hex(16)
        self.webhooks.add(url, secret, connect=connect, livemode=livemode, platform=owner)
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
        store of ``account`` (as ``customers_of``) in a mode.

        Seeded customers are plain data: no events, no webhooks. Returns their ids.
        """
        with self.store.lock:
            return objects.seed(self.stores.store_for(account, livemode), count, spacing)
