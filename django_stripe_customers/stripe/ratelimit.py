"""Client-side rate limiting: every try of every request waits for a token before it is sent.

- ``RateLimiter``: what the client calls: ``acquire()`` before each try, then ``on_success()``
  or ``on_rate_limited()`` with what Stripe answered.
- ``AdaptiveBucket``: the arithmetic, pure over the times it is given: a token bucket kept as
  the time its next token is due (GCRA), so a caller is handed a send time instead of polling,
  and AIMD on it: a 429 halves the rate (down to ``min_rate``), successes bring it back
  gradually to the configured rate.
- ``LocalRateLimiter``: one ``AdaptiveBucket`` for the threads of one process; the lock is held
  for the arithmetic only, every caller sleeps outside it until its own send time (first come,
  first served). ``django_stripe_customers.ratelimits`` shares one bucket between processes.
- ``default_rate(api_key)``: Stripe's documented limit for the key's mode.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

logger = logging.getLogger("django_stripe_customers.stripe")

#: A 429 with this code is an object lock held by another request, not the account's pace.
LOCK_TIMEOUT = "lock_timeout"
#: After a 429 the rate is multiplied by this (the "multiplicative decrease").
DECREASE = 0.5
#: The slowest a 429 makes a bucket go, requests per second (or the configured rate if lower).
MIN_RATE = 1.0
#: Recovery after a 429: this fraction of the configured rate is added back per second of
#: successful requests (so from half the rate to all of it in 5 s of traffic).
RECOVERY = 0.1
#: Default burst: the requests a full bucket lets through at once, as seconds of the rate.
BURST_SECONDS = 0.5
#: Seconds a request may leave after its booked time before the bookings after it move back
#: as much (``LocalRateLimiter.acquire``).
LATE = 0.005
#: Stripe's global rate limit by the key's mode, requests per second (its rate-limit page).
DEFAULT_RATES = {"live": 100.0, "test": 25.0}


class RateLimiter(Protocol):
    """What ``StripeClient(rate_limiter=...)`` needs; thread-safe.

    ``acquire()`` returns a generation (an int) to hand back with the feedback on that try, so
    that the 429s of requests sent before the bucket slowed down do not slow it again.
    """

    @property
    def max_rate(self) -> float:
        """The configured requests per second."""

    @property
    def rate(self) -> float:
        """Requests per second allowed now: below ``max_rate`` for a while after a 429."""

    def acquire(self, endpoint: str = "") -> int:
        """Block until one request (to ``endpoint``, ``"GET /v1/customers"``, when the limiter
        keeps one bucket per endpoint) may be sent; the generation of the pace it was sent at."""

    def on_success(self, generation: int, endpoint: str = "") -> None:
        """Stripe's rate limiter let the request through (any answer but a rate-limit 429)."""

    def on_rate_limited(
        self, generation: int, retry_after: float | None, endpoint: str = ""
    ) -> None:
        """Stripe answered 429 ``rate_limit``: slow down, and send nothing before
        ``retry_after`` seconds from now when Stripe said so."""


def key_mode(api_key: str) -> str | None:
    """``"live"`` or ``"test"`` as the key's prefix says (``sk_``/``rk_``); None otherwise."""
    for mode in DEFAULT_RATES:
        if api_key.startswith((f"sk_{mode}_", f"rk_{mode}_")):
            return mode
    return None


def default_rate(api_key: str) -> float:
    """Stripe's limit for the key's mode: 100/s live, 25/s test (and when the prefix does not
    tell: the lower one is the safe guess)."""
    return DEFAULT_RATES[key_mode(api_key) or "test"]


def is_rate_limited(status: int | None, code: str | None) -> bool:
    """Whether an answer says the account goes too fast: a 429, unless it is Stripe's
    ``lock_timeout`` (another request holds the object: a conflict, not a pace)."""
    return status == 429 and code != LOCK_TIMEOUT


def default_burst(rate: float) -> int:
    """Half a second of ``rate``, at least 1: Stripe's bucket holds about a second's worth, so
    a client whose sends reach it up to half a second late or bunched is still never refused."""
    return max(1, math.floor(rate * BURST_SECONDS))


def check_rate(rate: float, burst: int | None) -> None:
    if isinstance(rate, bool) or not (isinstance(rate, int | float) and math.isfinite(rate)):
        raise ValueError(f"rate must be a number of requests per second, got {rate!r}")
    if rate <= 0:
        raise ValueError(f"rate must be > 0 requests per second, got {rate!r}")
    if burst is not None and (isinstance(burst, bool) or not isinstance(burst, int) or burst < 1):
        raise ValueError(f"burst must be an int >= 1, got {burst!r}")


class AdaptiveBucket:
    """A token bucket as GCRA with reservations, and AIMD on its rate; not thread-safe.

    ``tat`` is when the bucket would be full again if nobody asked meanwhile (the "theoretical
    arrival time"). A request asking at ``now`` is sent at ``max(now, tat - tolerance)``, where
    ``tolerance`` is the burst (minus one) in intervals: an idle bucket lets ``burst`` requests
    go at once, then one per ``1 / rate`` seconds, in the order they asked.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: int | None = None,
        min_rate: float = MIN_RATE,
        now: float = 0.0,
    ) -> None:
        check_rate(rate, burst)
        self.max_rate = float(rate)
        self.rate = float(rate)
        self.burst = burst if burst is not None else default_burst(rate)
        self.min_rate = min(float(min_rate), self.max_rate)
        self.tat = now
        self.generation = 0

    def tolerance(self) -> float:
        """Seconds ``tat`` may run ahead of now with a request still sent at once: the burst,
        scaled down with the rate after a 429, minus the request itself."""
        burst = max(1.0, self.burst * self.rate / self.max_rate)
        return (burst - 1.0) / self.rate

    def reserve(self, now: float) -> float:
        """Book the next token for a request asking at ``now``; when to send it."""
        send_at = max(now, self.tat - self.tolerance())
        self.tat = max(self.tat, send_at) + 1.0 / self.rate
        return send_at

    def slow_down(self, now: float, generation: int, retry_after: float | None) -> bool:
        """A 429 for a request sent in ``generation``: halve the rate unless it was already
        halved since that request was sent; no token before ``retry_after`` seconds (or one
        interval at the new rate). True when the rate changed."""
        slowed = generation == self.generation and self.rate > self.min_rate
        if slowed:
            self.rate = max(self.min_rate, self.rate * DECREASE)
        if generation == self.generation:
            self.generation += 1
            pause = 1.0 / self.rate
        else:
            pause = 0.0
        if retry_after is not None and retry_after > 0:
            pause = max(pause, retry_after)
        if pause:
            # Empty, and paused: the next request is sent ``pause`` seconds from now.
            self.tat = max(self.tat, now + pause + self.tolerance())
        return slowed

    def speed_up(self) -> None:
        """A success: add back ``RECOVERY`` x the configured rate per second of traffic at the
        current rate (so ``rate += RECOVERY * max_rate / rate`` per request)."""
        if self.rate < self.max_rate:
            self.rate = min(self.max_rate, self.rate + RECOVERY * self.max_rate / self.rate)


class LocalRateLimiter:
    """An ``AdaptiveBucket`` shared by the threads of this process (``RateLimiter``)."""

    def __init__(
        self,
        rate: float,
        *,
        burst: int | None = None,
        min_rate: float = MIN_RATE,
        name: str = "local",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._bucket = AdaptiveBucket(rate, burst=burst, min_rate=min_rate, now=clock())

    def __repr__(self) -> str:
        return f"LocalRateLimiter({self.name!r}, rate={self.rate:g}/{self.max_rate:g})"

    @property
    def rate(self) -> float:
        """Requests per second allowed now (below ``max_rate`` for a while after a 429)."""
        return self._bucket.rate

    @property
    def max_rate(self) -> float:
        return self._bucket.max_rate

    def acquire(self, endpoint: str = "") -> int:
        with self._lock:
            send_at = self._bucket.reserve(self._clock())
            generation = self._bucket.generation
        delay = send_at - self._clock()
        if delay > 0:
            self._sleep(delay)
        late = self._clock() - send_at
        if late > LATE:
            # The thread woke late (a busy machine): the bookings made from now on move back
            # as much, so that no later second holds one request too many.
            with self._lock:
                self._bucket.tat += late
        return generation

    def on_success(self, generation: int, endpoint: str = "") -> None:
        if self._bucket.rate < self._bucket.max_rate:
            with self._lock:
                self._bucket.speed_up()

    def on_rate_limited(
        self, generation: int, retry_after: float | None, endpoint: str = ""
    ) -> None:
        with self._lock:
            slowed = self._bucket.slow_down(self._clock(), generation, retry_after)
            rate = self._bucket.rate
        if slowed:
            logger.warning(
                "stripe rate limited (429): %s slows to %.1f requests/s", self.name, rate
            )
