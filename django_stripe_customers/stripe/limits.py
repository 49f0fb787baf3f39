"""Stripe's rate limits as its rate-limit page states them: a global limit per account and mode
(100 requests/s live, 25 in a sandbox) and a default of 25 requests/s per endpoint, where each
named operation is its own endpoint (listing customers, retrieving one, updating one, listing
events: four), the Search API at 20.

``StripeLimits`` is the ``RateLimiter`` a client is given: before each try it waits for the
request's endpoint's turn, then for the global one, and sends at once. Every bucket is paced
evenly (a burst of one), so no second sees more requests than a strict one-second window allows.
A 429 slows both of the request's buckets: Stripe does not say which limit it hit, and each
recovers within seconds of successes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from .ratelimit import RateLimiter

#: Stripe's default limit of one endpoint, requests per second.
ENDPOINT_RATE: Final = 25.0
#: Endpoints with a documented limit of their own.
ENDPOINT_RATES: Final[Mapping[str, float]] = {"GET /v1/customers/search": 20.0}
#: The share of a documented limit the client paces at by default: the rest absorbs the
#: jitter between when a request leaves here and when it reaches Stripe (a request sent 40 ms
#: after another may arrive 30 ms after it), so that a strict window never counts one too many.
PACE: Final = 0.95
#: Path segments that are names, not ids, where an id would stand (``/v1/customers/search``).
_STATIC: Final = frozenset({"search"})


def endpoint_of(method: str, path: str) -> str:
    """The endpoint a request counts against: its method and path template, ids as ``{id}``
    (Stripe's paths alternate collection and id after ``/v1/``)."""
    parts = path.split("?", 1)[0].split("/")
    for index in range(3, len(parts), 2):
        if parts[index] and parts[index] not in _STATIC:
            parts[index] = "{id}"
    return f"{method.upper()} {'/'.join(parts)}"


class StripeLimits:
    """The global bucket of a key and one bucket per endpoint, made on first use by
    ``make(endpoint, rate)`` (local, or in Redis); a ``RateLimiter``."""

    def __init__(
        self,
        global_limiter: RateLimiter,
        make: Callable[[str, float], RateLimiter],
        *,
        endpoint_rate: float | None = ENDPOINT_RATE,
        endpoint_rates: Mapping[str, float | None] | None = None,
    ) -> None:
        self.global_limiter = global_limiter
        self._make = make
        self._default = endpoint_rate
        self._rates = {**ENDPOINT_RATES, **(endpoint_rates or {})}
        self._endpoints: dict[str, RateLimiter | None] = {}

    def __repr__(self) -> str:
        return f"StripeLimits({self.global_limiter!r}, endpoints={sorted(self._endpoints)})"

    @property
    def max_rate(self) -> float:
        return self.global_limiter.max_rate

    @property
    def rate(self) -> float:
        return self.global_limiter.rate

    def endpoint_limiter(self, endpoint: str) -> RateLimiter | None:
        """The endpoint's bucket (None: no limit of its own, or no endpoint named)."""
        if not endpoint:
            return None
        found = self._endpoints.get(endpoint, _MISSING)
        if found is _MISSING:
            rate = self._rates.get(endpoint, self._default)
            found = None if not rate else self._make(endpoint, float(rate))
            self._endpoints.setdefault(endpoint, found)  # a race makes one twice: one is kept
            found = self._endpoints[endpoint]
        return found  # type: ignore[return-value]

    def acquire(self, endpoint: str = "") -> int:
        """Wait for the endpoint's turn, then the global one (so the request leaves as the
        global bucket booked it); both generations, packed in one int (``_GENERATIONS``)."""
        limiter = self.endpoint_limiter(endpoint)
        endpoint_generation = limiter.acquire() if limiter is not None else 0
        global_generation = self.global_limiter.acquire()
        return (endpoint_generation << _GENERATIONS) | global_generation

    def on_success(self, generation: int, endpoint: str = "") -> None:
        limiter = self.endpoint_limiter(endpoint)
        if limiter is not None:
            limiter.on_success(generation >> _GENERATIONS)
        self.global_limiter.on_success(generation & _MASK)

    def on_rate_limited(
        self, generation: int, retry_after: float | None, endpoint: str = ""
    ) -> None:
        limiter = self.endpoint_limiter(endpoint)
        if limiter is not None:
            limiter.on_rate_limited(generation >> _GENERATIONS, retry_after)
        self.global_limiter.on_rate_limited(generation & _MASK, retry_after)


#: Bits of the global bucket's generation in the int ``acquire`` returns (a generation counts
#: the 429s that slowed a bucket: it never comes near 2**32).
_GENERATIONS: Final = 32
_MASK: Final = (1 << _GENERATIONS) - 1
_MISSING: Final = object()
