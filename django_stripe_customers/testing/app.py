"""The request pipeline: logging, authentication, rate limit, store selection (the key's
platform and mode, ``Stripe-Account``: ``platforms``, ``accounts``), form decoding, routing,
idempotency, latency.

``EmulatorApp.handle`` takes a raw request (method, target, headers, body) and returns a
``Response``; the endpoints are in ``endpoints.py``; the HTTP server in ``emulator.py`` is a
thin shell around it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from .. import schema
from . import objects
from .accounts import record_event
from .admissions import Admissions
from .endpoints import COLLECTION_ROUTES, NESTED_ROUTES, OBJECT_ROUTES
from .errors import ApiError, invalid, mask_key, no_such, rate_limited
from .limits import Limits, Throttle, endpoint_of
from .params import decode_form
from .platforms import LIVE_KEY_PREFIXES, TEST_KEY_PREFIXES, Stores, is_key, select_store
from .store import IdempotentResult, LoggedRequest, SortedIndex, Store
from .webhooks import WebhookDispatcher

logger = logging.getLogger(__name__)

IDEMPOTENCY_TTL = 24 * 60 * 60
IDEMPOTENCY_KEY_MAX_LENGTH = 255
REDACTED = "REDACTED"


class Headers(Protocol):
    """Request headers, case-insensitive (``http.client.HTTPMessage`` or a plain dict)."""

    def get(self, name: str, default: None = None) -> str | None: ...

    def items(self) -> Iterable[tuple[str, str]]: ...


class RequestHeaders:
    """Headers as received (for the log), looked up case-insensitively."""

    __slots__ = ("_items", "_lookup")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        self._lookup: dict[str, str] = {}
        for name, value in items:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        self._items.append((name, value))
        self._lookup[name.lower()] = value

    def get(self, name: str, default: None = None) -> str | None:
        return self._lookup.get(name.lower(), default)

    def items(self) -> Iterable[tuple[str, str]]:
        return list(self._items)


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    """What an endpoint needs to know about the request it serves."""

    request_id: str
    idempotency_key: str | None
    params: dict[str, Any]
    object_id: str | None
    store: Store  # the store of the request's mode and account
    api_key: str


Endpoint = Callable[["EmulatorApp", Call], tuple[int, Any]]


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


class EmulatorApp:
    def __init__(
        self,
        store: Store,
        webhooks: WebhookDispatcher,
        api_key: str | None,
        limits: Limits | None = None,
        stores: Stores | None = None,
        live_keys: bool = False,
    ) -> None:
        self.store = store  # the platform's own test-mode store; it keeps the request log
        self.stores = stores or Stores(store)
        self.live_keys = live_keys  # accept any sk_live_/rk_live_ key too (live mode)
        self.webhooks = webhooks
        self.api_key = api_key
        self.admissions = Admissions()  # the limiters' decisions, kept across set_limits
        self.throttle = Throttle(limits or Limits(), self.admissions)

    @property
    def limits(self) -> Limits:
        return self.throttle.limits

    def set_limits(self, limits: Limits) -> None:
        """Apply ``limits`` from the next request on, with full token buckets."""
        self.throttle = Throttle(limits, self.admissions)

    # -- the request pipeline ---------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Headers, body: bytes) -> Response:
        arrived = time.monotonic()
        throttle = self.throttle  # one request, one set of limits, even if they change meanwhile
        store = self.store
        request_id = store.new_id("req_")
        split = urlsplit(target)
        path = split.path
        entry = LoggedRequest(
            method=method,
            path=path,
            params={},
            headers={
                name: (REDACTED if name.lower() == "authorization" else value)
                for name, value in headers.items()
            },
            request_id=request_id,
            time=store.clock.now(),
        )
        with store.lock:
            store.log(entry)
        idempotency_key = headers.get("Idempotency-Key") if method == "POST" else None
        response_headers = {
            "Request-Id": request_id,
            "Stripe-Version": headers.get("Stripe-Version") or schema.API_VERSION,
        }
        if idempotency_key is not None:
            response_headers["Idempotency-Key"] = idempotency_key
        livemode = False
        try:
            api_key = self._authenticate(headers)
            livemode = api_key.startswith(LIVE_KEY_PREFIXES)
            # Stripe's rate limiters run before its idempotency layer: a refused request is not
            # executed, and its Idempotency-Key stays unused. One bucket per key: requests a
            # platform makes for its connected accounts (Stripe-Account) count against its key.
            # The key's platform: the default one, or an added key's own (``platforms``). Each
            # operation (``endpoint_of``: ids aside) has its own limit per key too.
            if not throttle.admit(api_key, endpoint_of(method, path)):
                raise rate_limited()
            call_store = select_store(self.stores, livemode, headers.get("Stripe-Account"), api_key)
            encoded = split.query
            if method == "POST" and body:
                self._check_content_type(headers)
                form = body.decode("utf-8", "replace")
                encoded = f"{encoded}&{form}" if encoded else form
            params = decode_form(encoded) if encoded else {}
            entry.params = params
            endpoint, object_id = self._route(method, path)
            call = Call(request_id, idempotency_key, params, object_id, call_store, api_key)
            if idempotency_key is not None:
                response = self._idempotent(api_key, method, path, encoded, endpoint, call)
            else:
                status, payload = endpoint(self, call)
                response = Response(status, _json(payload))
        except ApiError as error:
            body = _json(error.body(request_id, livemode))
            response = Response(error.status, body, dict(error.headers))
        except Exception as exc:  # a bug here must answer like Stripe's 500, not drop the line
            logger.exception("stripe emulator: %s %s failed", method, path)
            failure = ApiError(500, f"The Stripe emulator failed: {exc!r}", type="api_error")
            response = Response(500, _json(failure.body(request_id, livemode)))
        # Stripe's clock, as clients read it: the emulator's (it may be frozen or moved).
        response_headers["Date"] = formatdate(store.clock.now(), usegmt=True)
        response.headers = {**response_headers, **response.headers}
        entry.status = response.status
        throttle.wait_for_answer(arrived)  # outside every lock: slow answers overlap
        return response

    def _authenticate(self, headers: Headers) -> str:
        authorization = headers.get("Authorization") or ""
        scheme, _, credentials = authorization.strip().partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = credentials.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(credentials.strip()).decode().partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        if not key:
            raise ApiError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, "
                "or we can help at https://support.stripe.com/.",
                headers={"WWW-Authenticate": 'Bearer realm="Stripe"'},
            )
        if key in self.stores.keys:  # an added key: its own platform's, live ones too
            accepted = True
        elif self.api_key is not None:
            accepted = hmac.compare_digest(key.encode(), self.api_key.encode())
        else:
            accepted = is_key(
                key, TEST_KEY_PREFIXES + (LIVE_KEY_PREFIXES if self.live_keys else ())
            )
        if not accepted:
            raise ApiError(
                401,
                f"Invalid API Key provided: {mask_key(key)}",
                headers={"WWW-Authenticate": 'Bearer realm="Stripe"'},
            )
        return key

    @staticmethod
    def _check_content_type(headers: Headers) -> None:
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type not in ("", "application/x-www-form-urlencoded"):
            raise invalid(
                f"Invalid request: unsupported Content-Type {content_type}. If error persists "
                "and you need assistance, please contact support@stripe.com."
            )

    def _route(self, method: str, path: str) -> tuple[Endpoint, str | None]:
        parts = path.split("/")
        if len(parts) == 3 and parts[1] == "v1":
            endpoint = COLLECTION_ROUTES.get((method, parts[2]))
            if endpoint is not None:
                return endpoint, None
        elif len(parts) == 4 and parts[1] == "v1" and parts[3]:
            endpoint = OBJECT_ROUTES.get((method, parts[2]))
            if endpoint is not None:
                return endpoint, unquote(parts[3])
        elif len(parts) == 5 and parts[1] == "v1" and parts[3]:
            endpoint = NESTED_ROUTES.get((method, parts[2], parts[4]))
            if endpoint is not None:
                return endpoint, unquote(parts[3])
        raise ApiError(
            404,
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
            "or we can help at https://support.stripe.com/.",
        )

    def _idempotent(
        self, api_key: str, method: str, path: str, encoded: str, endpoint: Endpoint, call: Call
    ) -> Response:
        """Stripe's Idempotency-Key: replay the first answer, refuse different params.

        The whole execution holds the store lock, so a concurrent request with the same key
        waits and then replays: two requests with one key never both execute.
        """
        key = call.idempotency_key or ""
        if len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
            raise invalid(
                f"Idempotency-Key must be at most {IDEMPOTENCY_KEY_MAX_LENGTH} characters long",
                param="Idempotency-Key",
            )
        fingerprint = tuple(sorted(parse_qsl(encoded, keep_blank_values=True)))
        store = call.store  # keys are per account and mode, as Stripe scopes them
        with store.lock:
            now = store.clock.now()
            cache_key = (api_key, key)
            previous = store.idempotency.get(cache_key)
            if previous is not None and previous.created + IDEMPOTENCY_TTL <= now:
                previous = None
            if previous is not None:
                if (previous.method, previous.path) != (method, path):
                    raise ApiError(
                        400,
                        "Keys for idempotent requests can only be used for the same endpoint "
                        f"they were first used for ('{previous.method} {previous.path}' vs "
                        f"'{method} {path}'). Try using a key other than '{key}' if you meant "
                        "to execute a different request.",
                        type="idempotency_error",
                    )
                if previous.params != fingerprint:
                    raise ApiError(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters "
                        f"they were first used with. Try using a key other than '{key}' if you "
                        "meant to execute a different request.",
                        type="idempotency_error",
                    )
                assert previous.status is not None and previous.body is not None
                return Response(
                    previous.status,
                    previous.body,
                    {"Idempotent-Replayed": "true", "Original-Request": previous.request_id},
                )
            try:
                status, payload = endpoint(self, call)
                body = _json(payload)
            except ApiError as error:
                if not error.saved:
                    raise
                status, body = error.status, _json(error.body(call.request_id, store.livemode))
            result = IdempotentResult(method, path, fingerprint, now, call.request_id, status, body)
            store.remember(cache_key, result, IDEMPOTENCY_TTL)
            return Response(status, body)

    # -- helpers for endpoints --------------------------------------------------------------

    def expansions(
        self, params: dict[str, Any], allowed: frozenset[str], prefix: str = ""
    ) -> set[str]:
        """Pop ``expand`` from ``params``; each path must name an expandable attribute."""
        expand: set[str] = set()
        for path in params.pop("expand", None) or []:
            name = path[len(prefix) :] if path.startswith(prefix) else None
            if name not in allowed:
                raise invalid(f"This property cannot be expanded ({path}).", param="expand")
            expand.add(name)
        return expand

    def emit(
        self, event_type: str, customer: dict[str, Any], call: Call, previous: Any = None
    ) -> None:
        """Record a ``customer.*`` event in the call's store (lock held), queue it for webhooks."""
        data: dict[str, Any] = {"object": objects.render(customer)}
        if previous is not None:
            data["previous_attributes"] = previous
        request = {"id": call.request_id, "idempotency_key": call.idempotency_key}
        record_event(call.store, self.webhooks, event_type, data, request)

    @staticmethod
    def live_customer(store: Store, customer_id: str) -> dict[str, Any]:
        customer = store.customers.get(customer_id)
        if customer is None or customer.get("deleted"):
            raise no_such("customer", customer_id)
        return customer

    def list_window(self, params: dict[str, Any], index: SortedIndex, kind: str) -> dict[str, Any]:
        """Shared list params: ``limit`` 1-100 (default 10), one cursor, ``created`` range."""
        limit = params.get("limit", 10)
        if not 1 <= limit <= 100:
            raise invalid(
                "Invalid limit: must be between 1 and 100",
                param="limit",
                code="parameter_invalid_integer",
            )
        after, before = params.get("starting_after"), params.get("ending_before")
        if after is not None and before is not None:
            raise invalid(
                "You may only specify one of these parameters: ending_before, starting_after.",
                code="parameters_exclusive",
            )
        for name, cursor in (("starting_after", after), ("ending_before", before)):
            if cursor is not None and not index.knows(cursor):
                raise no_such(kind, cursor, param=name, status=400)
        created = params.get("created") or {}
        lows = [v for v in (created.get("gte"), _plus(created.get("gt"), 1)) if v is not None]
        highs = [v for v in (created.get("lte"), _plus(created.get("lt"), -1)) if v is not None]
        low, high = max(lows, default=None), min(highs, default=None)
        return {
            "limit": limit,
            "starting_after": after,
            "ending_before": before,
            "created": (low, high),
        }


def _plus(value: int | None, delta: int) -> int | None:
    return None if value is None else value + delta
