"""Stripe's pace, emulated: a round-trip latency on every answer, a per-key rate limit and
per-endpoint rate limits.

``Limits`` says how (immutable); ``Throttle`` applies one ``Limits`` to the requests it sees;
``endpoint_of`` names the endpoint (one API operation) a request counts against.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .admissions import Admissions

#: Segments in an id's place that are part of the operation (``/v1/customers/search``,
#: ``/v1/invoices/upcoming``), not an object's id.
STATIC_SEGMENTS = frozenset({"search", "upcoming", "create_preview"})
#: Leading segments grouping resources (``/v1/checkout/sessions/{id}``); no id follows them.
NAMESPACES = frozenset(
    {
        "apps",
        "billing",
        "billing_portal",
        "checkout",
        "climate",
        "entitlements",
        "financial_connections",
        "forwarding",
        "identity",
        "issuing",
        "radar",
        "reporting",
        "sigma",
        "tax",
        "terminal",
        "test_helpers",
        "treasury",
    }
)
#: Resources with no id after them (``/v1/account``, ``/v1/balance/history``).
SINGLETONS = frozenset({"account", "balance"})


def endpoint_of(method: str, path: str) -> str:
    """The endpoint (one named API operation) a request counts against: its method and path
    template, every object id replaced by ``{id}``.

    After ``/v1/``, Stripe's paths alternate collection and id:
    ``endpoint_of("post", "/v1/customers/cus_1/tax_ids/txi_1")`` is
    ``"POST /v1/customers/{id}/tax_ids/{id}"``. ``/v1/customers/search``, ``/v1/account`` and
    namespaced paths (``/v1/checkout/sessions/{id}``) are known; a query string is ignored.
    """
    path = path.partition("?")[0]
    parts = path.split("/")
    if len(parts) < 3 or parts[0] or not (parts[1][:1] == "v" and parts[1][1:].isdigit()):
        return f"{method.upper()} {path}"  # not a versioned API path: as is
    index = 2
    while index < len(parts) - 1 and parts[index] in NAMESPACES:
        index += 1
    expect_id = False
    for position in range(index, len(parts)):
        segment = parts[position]
        if expect_id:
            if segment and segment not in STATIC_SEGMENTS:
                parts[position] = "{id}"
            expect_id = False
        else:
            expect_id = segment not in SINGLETONS
    return f"{method.upper()} {'/'.join(parts)}"


def normalize_endpoint(name: str) -> str:
    """``"get /v1/customers/cus_1"`` -> ``"GET /v1/customers/{id}"``; ValueError if ``name`` is
    not ``"METHOD /path"``."""
    method, _, path = str(name).strip().partition(" ")
    path = path.strip()
    if not (method.isalpha() and path.startswith("/")):
        raise ValueError(f"{name!r} is not an endpoint ('METHOD /path', e.g. 'GET /v1/customers')")
    return endpoint_of(method, path)


def _check_rate(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number of requests/s, not {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be > 0 requests/s, not {value!r}")
    return float(value)


class RateTable(Mapping[str, float]):
    """An immutable, hashable ``{endpoint: requests/s}``."""

    __slots__ = ("_rates",)

    def __init__(self, rates: Mapping[str, float] | Iterable[tuple[str, float]] = ()) -> None:
        self._rates = dict(rates)

    def __getitem__(self, endpoint: str) -> float:
        return self._rates[endpoint]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rates)

    def __len__(self) -> int:
        return len(self._rates)

    def __hash__(self) -> int:
        return hash(frozenset(self._rates.items()))

    def __repr__(self) -> str:
        return repr(self._rates)


@dataclass(frozen=True)
class Limits:
    """How fast the emulator lets a client go; the defaults are no latency and no limit.

    - ``latency_ms``: every answer (errors and 429s included) leaves at least this many
      milliseconds after its request arrived, like Stripe's round trip. Requests wait in
      parallel: N concurrent requests take about one latency, not N.
    - ``latency_jitter_ms``: a random extra delay, uniform in ``[0, latency_jitter_ms]``
      (0 by default, so benchmarks are deterministic).
    - ``rate_limit``: requests per second per API key, reads and writes alike (one global limit
      per account, as Stripe's rate-limit page gives it), as a token bucket (the scheme that page
      advises clients to run): the bucket holds ``burst`` tokens, refills at
      ``rate_limit`` per second, and a request that finds no token is answered 429 without
      being executed. None: no limit.
    - ``rate_limit_burst``: the bucket's size; by default one second's worth
      (``ceil(rate_limit)``), so a client that never sends more than ``rate_limit`` in any
      second is never refused.
    - ``endpoint_rate_limit``: requests per second per API key and endpoint (``endpoint_of``:
      each API operation, whatever the ids; Stripe's default is 25), a bucket of one second's
      worth of its own. A request runs only if both its key's bucket and its endpoint's admit
      it; a refused one takes from neither. None: no per-endpoint limit.
    - ``endpoint_rate_limits``: ``{endpoint: requests/s}`` overriding ``endpoint_rate_limit``
      for those endpoints (``{"GET /v1/customers/search": 20}``; also without a default).
      Names are normalised (``"get /v1/customers/cus_1"`` is ``"GET /v1/customers/{id}"``).
    - ``strict_window``: every limit above is a strict sliding window of one second instead of
      a token bucket: a request is refused when ``limit`` requests of its bucket were admitted
      in the last second, so no second ever holds more (``SlidingWindow.for_rate``).
    """

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    rate_limit: float | None = None
    rate_limit_burst: int | None = None
    endpoint_rate_limit: float | None = None
    endpoint_rate_limits: Mapping[str, float] = field(default_factory=RateTable)
    strict_window: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.latency_ms) and self.latency_ms >= 0):
            raise ValueError(f"latency_ms must be >= 0, not {self.latency_ms!r}")
        if not (math.isfinite(self.latency_jitter_ms) and self.latency_jitter_ms >= 0):
            raise ValueError(f"latency_jitter_ms must be >= 0, not {self.latency_jitter_ms!r}")
        if self.rate_limit is not None and not (
            math.isfinite(self.rate_limit) and self.rate_limit > 0
        ):
            raise ValueError(f"rate_limit must be > 0 requests/s, not {self.rate_limit!r}")
        if self.rate_limit_burst is not None:
            if self.rate_limit is None:
                raise ValueError("rate_limit_burst needs a rate_limit")
            if self.rate_limit_burst < 1:
                raise ValueError(f"rate_limit_burst must be >= 1, not {self.rate_limit_burst!r}")
            if self.strict_window:
                raise ValueError("rate_limit_burst is a token bucket's; a strict_window has none")
        if self.endpoint_rate_limit is not None:
            _check_rate("endpoint_rate_limit", self.endpoint_rate_limit)
        if not isinstance(self.strict_window, bool):
            raise ValueError(f"strict_window must be True or False, not {self.strict_window!r}")
        rates: dict[str, float] = {}
        for name, rate in dict(self.endpoint_rate_limits).items():
            endpoint = normalize_endpoint(name)
            rate = _check_rate(f"endpoint_rate_limits[{name!r}]", rate)
            if rates.setdefault(endpoint, rate) != rate:
                raise ValueError(f"endpoint_rate_limits: two rates for {endpoint!r}")
        object.__setattr__(self, "endpoint_rate_limits", RateTable(rates))

    @property
    def burst(self) -> int:
        """Requests a key may send at once after a pause (0 when there is no limit)."""
        if self.rate_limit is None:
            return 0
        return self.rate_limit_burst or max(1, math.ceil(self.rate_limit))

    def endpoint_limit(self, endpoint: str) -> float | None:
        """The requests/s per key allowed to ``endpoint`` (a name from ``endpoint_of``)."""
        return self.endpoint_rate_limits.get(endpoint, self.endpoint_rate_limit)


class Limiter(Protocol):
    def ready(self, now: float) -> bool:
        """Whether a request at ``now`` would be admitted (nothing taken)."""

    def take(self, now: float) -> bool:
        """Admit a request at ``now`` if ``ready(now)``; False (nothing taken) otherwise."""


class TokenBucket:
    """``capacity`` tokens, refilled continuously at ``rate`` per second; starts full.

    Pure bookkeeping over the times it is given (``take(now)``), so it is tested without sleeping.
    """

    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, rate: float, capacity: int, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = float(capacity)
        self.updated = now

    def ready(self, now: float) -> bool:
        """Refill up to ``now``; whether a token is there (none is taken)."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.capacity), self.tokens + elapsed * self.rate)
        self.updated = max(now, self.updated)
        return self.tokens >= 1.0

    def take(self, now: float) -> bool:
        """Take one token at ``now``; False (and nothing taken) when the bucket is empty."""
        if self.ready(now):
            self.tokens -= 1.0
            return True
        return False


class SlidingWindow:
    """At most ``limit`` admissions in any ``window`` seconds: a request at ``now`` is refused
    when ``limit`` were admitted in ``(now - window, now]``. Pure, over the times given."""

    __slots__ = ("admitted", "limit", "window")

    def __init__(self, limit: int, window: float = 1.0) -> None:
        if limit < 1 or not (math.isfinite(window) and window > 0):
            raise ValueError(f"a sliding window needs limit >= 1 and window > 0, not {limit!r}")
        self.limit = limit
        self.window = window
        self.admitted: deque[float] = deque()

    @classmethod
    def for_rate(cls, rate: float) -> SlidingWindow:
        """``rate`` requests/s as a strict window: ``floor(rate)`` per second, or one per
        ``1 / rate`` seconds below 1/s (no second then holds more than ``rate`` allows)."""
        if rate >= 1:
            return cls(math.floor(rate), 1.0)
        return cls(1, 1.0 / rate)

    def ready(self, now: float) -> bool:
        admitted = self.admitted
        while admitted and now - admitted[0] >= self.window:
            admitted.popleft()
        return len(admitted) < self.limit

    def take(self, now: float) -> bool:
        if not self.ready(now):
            return False
        admitted = self.admitted
        admitted.append(max(now, admitted[-1]) if admitted else now)  # time never goes back
        return True


class Throttle:
    """One ``Limits`` applied: limiters per API key and per (key, endpoint), and when each answer
    may leave. Every decision is told to ``admissions`` when given.

    Thread-safe; its own lock is held only to count, never while a request waits.
    """

    def __init__(self, limits: Limits, admissions: Admissions | None = None) -> None:
        self.limits = limits
        self.admissions = admissions
        self._keys: dict[str, Limiter] = {}
        self._endpoints: dict[tuple[str, str], Limiter] = {}
        self._lock = threading.Lock()
        self._random = random.Random()

    def _limiter(self, rate: float, capacity: int, now: float) -> Limiter:
        if self.limits.strict_window:
            return SlidingWindow.for_rate(rate)
        return TokenBucket(rate, capacity, now)

    def admit(self, api_key: str, endpoint: str = "") -> bool:
        """Whether a request with ``api_key`` to ``endpoint`` (``endpoint_of``; "": none) may run
        now; if so it is counted by every limiter it passed, if not by none."""
        limits = self.limits
        rate = limits.rate_limit
        endpoint_rate = limits.endpoint_limit(endpoint) if endpoint else None
        with self._lock:
            now = time.monotonic()
            limiters: list[Limiter] = []
            if rate is not None:
                limiter = self._keys.get(api_key)
                if limiter is None:
                    limiter = self._keys[api_key] = self._limiter(rate, limits.burst, now)
                limiters.append(limiter)
            if endpoint_rate is not None:
                key = (api_key, endpoint)
                limiter = self._endpoints.get(key)
                if limiter is None:
                    capacity = max(1, math.ceil(endpoint_rate))
                    limiter = self._endpoints[key] = self._limiter(endpoint_rate, capacity, now)
                limiters.append(limiter)
            admitted = all(limiter.ready(now) for limiter in limiters)
            if admitted:
                for limiter in limiters:
                    limiter.take(now)
        if self.admissions is not None:
            self.admissions.record(api_key, endpoint, now, admitted)
        return admitted

    def answer_at(self, arrived: float) -> float:
        """The ``time.monotonic()`` before which the answer to a request that arrived at
        ``arrived`` must not leave."""
        delay_ms = self.limits.latency_ms
        if self.limits.latency_jitter_ms:
            delay_ms += self._random.uniform(0.0, self.limits.latency_jitter_ms)
        return arrived + delay_ms / 1000.0

    def wait_for_answer(self, arrived: float) -> None:
        """Sleep (this request's thread only) until its answer may leave."""
        remaining = self.answer_at(arrived) - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
