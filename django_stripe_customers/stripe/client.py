"""StripeClient: Stripe's HTTP API over a pooled ``requests.Session``.

Auth, API version, idempotency keys, retries with backoff (the policy is ``retry``), paging,
and an optional rate limiter that every try waits on (``ratelimit``).
``client.customers`` is the Customers endpoints (``customers``).
"""

from __future__ import annotations

import copy
import logging
import re
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError

from django_stripe_customers import __version__, schema

from .customers import CustomersResource, Expand, ObjectResource, Params
from .encoding import encode_params, urlencode_params
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    StripeError,
    error_from_response,
)
from .limits import endpoint_of
from .ratelimit import RateLimiter, is_rate_limited
from .responses import PageData, StripeObject, decode
from .retry import retry_after, retry_delay, should_retry

logger = logging.getLogger("django_stripe_customers.stripe")


_CONNECTION_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
_KEY_KIND = re.compile(r"[a-z]{2}_[a-z]+_")
_QUERY = re.compile(r"\?[^\s'\")]*")
_MAX_IDEMPOTENCY_KEY = 255


def _key_kind(api_key: str) -> str:
    match = _KEY_KIND.match(api_key)
    return f"{match.group(0) if match else ''}…"


def _is_header_safe(value: str) -> bool:
    return value.isascii() and value.isprintable() and not any(c.isspace() for c in value)


def _check_config(
    api_key: str,
    api_base: str,
    api_version: str,
    timeout: float,
    max_retries: int,
    stripe_account: str | None,
) -> None:
    if not isinstance(api_key, str) or not api_key.strip():
        raise ValueError("api_key must be a non-empty string (a Stripe secret key, sk_...)")
    if not _is_header_safe(api_key):
        raise ValueError("api_key contains whitespace or non-printable characters")
    parts = urlsplit(api_base)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise ValueError(f"api_base must be an http(s) URL without a query, got {api_base!r}")
    if not api_version or not _is_header_safe(api_version):
        raise ValueError(f"api_version must be a Stripe API version, got {api_version!r}")
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
    if stripe_account is not None and not (stripe_account and _is_header_safe(stripe_account)):
        raise ValueError(f"stripe_account must be an account id (acct_...), got {stripe_account!r}")


def _idempotency_key(given: str | None) -> str:
    if given is None:
        return str(uuid.uuid4())
    if not 0 < len(given) <= _MAX_IDEMPOTENCY_KEY:
        raise ValueError(
            f"idempotency_key must be 1 to {_MAX_IDEMPOTENCY_KEY} characters, got {len(given)}"
        )
    if not _is_header_safe(given):
        raise ValueError("idempotency_key must be printable ASCII without whitespace")
    return given


def _extra(**values: object) -> dict[str, object]:
    """Structured log fields, prefixed so they do not clash with LogRecord attributes."""
    return {f"stripe_{name}": value for name, value in values.items()}


class _BearerAuth(requests.auth.AuthBase):
    """Adds the key to each request; holding it here keeps it out of our frames' locals."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._api_key}"
        return request

    def __repr__(self) -> str:
        return f"_BearerAuth({_key_kind(self._api_key)!r})"


class StripeClient:
    """A thread-safe Stripe API client (one pooled session per thread)."""

    #: The default cap of the delay between two tries, in seconds.
    MAX_RETRY_DELAY = 5.0

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str = "https://api.stripe.com",
        api_version: str = schema.API_VERSION,
        timeout: float = 30.0,
        max_retries: int = 2,
        stripe_account: str | None = None,
        initial_retry_delay: float = 0.5,
        max_retry_delay: float = MAX_RETRY_DELAY,
        max_retry_after: float = 60.0,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        _check_config(api_key, api_base, api_version, timeout, max_retries, stripe_account)
        if not 0 <= initial_retry_delay <= max_retry_delay or not max_retry_after >= 0:
            raise ValueError("retry delays need 0 <= initial <= maximum and max_retry_after >= 0")
        self.api_base = api_base.rstrip("/")
        self.api_version = api_version
        self.timeout = timeout
        self.max_retries = max_retries
        self.stripe_account = stripe_account
        self.initial_retry_delay = initial_retry_delay
        self.max_retry_delay = max_retry_delay
        self.max_retry_after = max_retry_after
        #: Paces every try of every request (shared with the other clients of this account).
        self.rate_limiter = rate_limiter
        self.sleep: Callable[[float], None] = time.sleep
        self._auth = _BearerAuth(api_key)
        self._key_kind = _key_kind(api_key)
        self._local = threading.local()
        self._sessions: weakref.WeakSet[requests.Session] = weakref.WeakSet()
        self._sessions_lock = threading.Lock()
        self.customers = CustomersResource(self)
        self._accounts: dict[str | None, StripeClient] = {stripe_account: self}
        self._accounts_lock = threading.Lock()

    def for_account(self, stripe_account: str | None) -> StripeClient:
        """This client speaking for ``stripe_account``: a connected account (``Stripe-Account``
        on each request), or None for the key's own account. It shares this client's
        connections, rate limiter and settings; one per account is made, then reused."""
        with self._accounts_lock:
            found = self._accounts.get(stripe_account)
            if found is not None:
                return found
            if stripe_account is not None and not (
                stripe_account and _is_header_safe(stripe_account)
            ):
                raise ValueError(
                    f"stripe_account must be an account id (acct_...), got {stripe_account!r}"
                )
            found = copy.copy(self)
            found.stripe_account = stripe_account
            found.customers = CustomersResource(found)
            self._accounts[stripe_account] = found
            return found

    def resource(self, path: str) -> ObjectResource:
        """The endpoints of the objects at ``path`` (``client.resource("/v1/customers")`` is
        ``client.customers``)."""
        return ObjectResource(self, path)

    def __repr__(self) -> str:
        return (
            f"StripeClient(api_key={self._key_kind!r}, api_base={self.api_base!r}, "
            f"api_version={self.api_version!r}, stripe_account={self.stripe_account!r})"
        )

    def close(self) -> None:
        """Close every pooled connection; the client stays usable (it reconnects)."""
        with self._sessions_lock:
            sessions, self._sessions = list(self._sessions), weakref.WeakSet()
            self._local = threading.local()
        for session in sessions:
            session.close()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=10, pool_maxsize=10, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.auth = self._auth
            session.headers.update(
                {
                    "Accept": "application/json",
                    "Stripe-Version": self.api_version,
                    "User-Agent": f"django-stripe-customers/{__version__} "
                    f"python-requests/{requests.__version__}",
                }
            )
            with self._sessions_lock:
                self._sessions.add(session)
                self._local.session = session
        return session

    def request(
        self,
        method: str,
        path: str,
        params: Params | None = None,
        *,
        idempotency_key: str | None = None,
        expand: Expand = None,
    ) -> StripeObject:
        """Call Stripe and return the decoded JSON object; raise a ``StripeError`` on failure."""
        method = method.upper()
        if method not in ("GET", "POST", "DELETE"):
            raise ValueError(f"method must be GET, POST or DELETE, got {method!r}")
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        if isinstance(expand, str):
            raise TypeError("expand must be a list of field names, not a str")
        if expand:
            params = {**(params or {}), "expand": [*((params or {}).get("expand") or []), *expand]}
        headers = {}
        if self.stripe_account:
            headers["Stripe-Account"] = self.stripe_account
        if idempotency_key is not None or method != "GET":
            headers["Idempotency-Key"] = _idempotency_key(idempotency_key)
        if method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            send: dict[str, Any] = {"data": urlencode_params(params)}
        else:
            send = {"params": encode_params(params)}
        if logger.isEnabledFor(logging.DEBUG):
            names = ", ".join(params or {}) or "(none)"
            logger.debug("stripe %s %s params: %s", method, path, names)
        return self._send(method, path, headers, send)

    def iter_pages(
        self, path: str, params: Params | None = None, *, expand: Expand = None
    ) -> Iterator[PageData]:
        """The ``data`` of every page of a list endpoint, following ``starting_after``.

        One page is in memory at a time; the last page may be empty. Each carries its page's
        ``last_response`` (when Stripe answered it).
        """
        query = dict(params or {})
        while True:
            page = self.list_page(path, query, expand=expand)
            yield page
            if not page.has_more or not page:
                return
            query["starting_after"] = page[-1]["id"]

    def list_page(
        self, path: str, params: Params | None = None, *, expand: Expand = None
    ) -> PageData:
        """One page of a list endpoint: its ``data``, with ``has_more`` and the page's
        ``last_response``."""
        answer = self.request("GET", path, params, expand=expand)
        data = answer.get("data")
        if not isinstance(data, list):
            raise APIError(f"GET {path}: a list response without a 'data' array")
        page = PageData(data)
        page.last_response = answer.last_response
        page.has_more = bool(answer.get("has_more"))
        return page

    def _send(
        self, method: str, path: str, headers: dict[str, str], send: dict[str, Any]
    ) -> StripeObject:
        tries = self.max_retries + 1
        attempt = 0
        endpoint = endpoint_of(method, path)
        while True:
            generation = self.rate_limiter.acquire(endpoint) if self.rate_limiter else 0
            started = time.monotonic()
            sent = time.time()
            status: int | None = None
            response_headers: Mapping[str, str] = {}
            try:
                response = self._session().request(
                    method,
                    self.api_base + path,
                    headers=headers,
                    timeout=(self.timeout, self.timeout),
                    allow_redirects=False,
                    **send,
                )
            except _CONNECTION_ERRORS as exc:
                error: StripeError = _connection_error(method, path, attempt + 1, exc)
                reason = type(exc).__name__
            else:
                status, response_headers = response.status_code, response.headers
                request_id = response_headers.get("Request-Id")
                duration_ms = (time.monotonic() - started) * 1000
                logger.info(
                    "stripe %s %s -> %s %s in %.1fms (attempt %d/%d)",
                    method, path, status, request_id or "-", duration_ms, attempt + 1, tries,
                    extra=_extra(method=method, path=path, status=status, request_id=request_id,
                                 attempt=attempt + 1, duration_ms=round(duration_ms, 1)),
                )  # fmt: skip
                if 200 <= status < 300:
                    self._pace(generation, endpoint, status, None, response_headers)
                    return decode(response, sent)
                error = error_from_response(status, response.content, response_headers)
                self._pace(generation, endpoint, status, error.code, response_headers)
                reason = f"HTTP {status} {error.type or type(error).__name__}"
            if not should_retry(
                attempt=attempt,
                max_retries=self.max_retries,
                status=status,
                headers=response_headers,
                connection_error=isinstance(error, APIConnectionError),
            ):
                raise error
            delay = retry_delay(
                attempt=attempt,
                headers=response_headers,
                initial=self.initial_retry_delay,
                maximum=self.max_retry_delay,
                max_retry_after=self.max_retry_after,
            )
            logger.warning(
                "stripe %s %s failed (%s) on attempt %d/%d; retrying in %.2fs",
                method, path, reason, attempt + 1, tries, delay,
                extra=_extra(method=method, path=path, status=status, attempt=attempt + 1,
                             retry_delay=delay),
            )  # fmt: skip
            self.sleep(delay)
            attempt += 1

    def _pace(
        self,
        generation: int,
        endpoint: str,
        status: int,
        code: str | None,
        headers: Mapping[str, str],
    ) -> None:
        """Tell the rate limiter whether Stripe's own limiter let this try through."""
        if self.rate_limiter is None:
            return
        if is_rate_limited(status, code):
            wait = retry_after(headers, self.max_retry_after)
            self.rate_limiter.on_rate_limited(generation, wait, endpoint)
        else:
            self.rate_limiter.on_success(generation, endpoint)


def _connection_error(
    method: str, path: str, tries: int, exc: requests.RequestException
) -> APIConnectionError:
    timed_out = isinstance(exc, requests.Timeout) or any(
        isinstance(arg, ReadTimeoutError) for arg in exc.args
    )
    # urllib3's message can quote the URL, whose query string may hold customer data.
    detail = _QUERY.sub("?…", str(exc))
    what = "timed out" if timed_out else "could not connect or the connection broke"
    plural = "s" if tries > 1 else ""
    error_class = APITimeoutError if timed_out else APIConnectionError
    error = error_class(
        f"{method} {path} {what} after {tries} attempt{plural}: {type(exc).__name__}: {detail}"
    )
    error.__cause__ = exc
    return error
