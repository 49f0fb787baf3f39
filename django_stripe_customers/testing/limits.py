"""Stripe's pace, emulated: a round-trip latency on every answer and a per-key rate limit.

``Limits`` says how (immutable); ``Throttle`` applies one ``Limits`` to the requests it sees.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass


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
    """

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    rate_limit: float | None = None
    rate_limit_burst: int | None = None

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

    @property
    def burst(self) -> int:
        """Requests a key may send at once after a pause (0 when there is no limit)."""
        if self.rate_limit is None:
            return 0
        return self.rate_limit_burst or max(1, math.ceil(self.rate_limit))


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

    def take(self, now: float) -> bool:
        """Take one token at ``now``; False (and nothing taken) when the bucket is empty."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.capacity), self.tokens + elapsed * self.rate)
        self.updated = max(now, self.updated)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Throttle:
    """One ``Limits`` applied: a token bucket per API key, and when each answer may leave.

    Thread-safe; its own lock is held only to count tokens, never while a request waits.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        self._random = random.Random()

    def admit(self, api_key: str) -> bool:
        """Whether a request with ``api_key`` may run now (it takes a token if so)."""
        rate = self.limits.rate_limit
        if rate is None:
            return True
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(api_key)
            if bucket is None:
                bucket = self._buckets[api_key] = TokenBucket(rate, self.limits.burst, now)
            return bucket.take(now)

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
