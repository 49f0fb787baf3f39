"""The rate limiter ``get_client()`` gives its clients: one bucket per Stripe key and API base,
in this process (``"local"``) or in Redis, shared by every process that names the same one.

The Redis bucket is ``stripe.ratelimit.AdaptiveBucket`` written in Lua: one script call per try
reads the bucket, books the next token and answers how long to wait, atomically, on Redis's
clock. A booking (GCRA) instead of INCR on per-second windows: windows let two windows' worth
through across their edge, which Stripe's token bucket refuses, and make waiters poll; a
booking is exact, first come first served, and one round trip. The 429 feedback (halve the
rate, pause for ``Retry-After``) and the recovery go through the same script, so a 429 seen by
one worker slows them all. The key names the key's mode and a digest of the key and API base,
never the key. If Redis does not answer, each process falls back to a local bucket of the same
rate for ``REDIS_RETRY_AFTER`` seconds (and logs it), so Stripe calls go on, each process at no
more than the rate, without waiting on a dead Redis for every request.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured

from .stripe.limits import PACE, StripeLimits
from .stripe.ratelimit import (
    DECREASE,
    LATE,
    MIN_RATE,
    RECOVERY,
    LocalRateLimiter,
    RateLimiter,
    check_rate,
    default_burst,
    default_rate,
    key_mode,
)

if TYPE_CHECKING:
    import redis

logger = logging.getLogger("django_stripe_customers.stripe")

LOCAL = "local"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
KEY_PREFIX = "django_stripe_customers:ratelimit:"
#: An idle bucket's state is dropped this long after its last booking (it is full by then).
IDLE_TTL = 60.0
#: Seconds to wait for Redis before falling back to the local bucket...
REDIS_TIMEOUT = 2.0
#: ...and for how long, before asking Redis again.
REDIS_RETRY_AFTER = 5.0
#: At most one "Redis does not answer" warning per this many seconds.
WARN_EVERY = 60.0

# KEYS[1]: the bucket's hash (tat, rate, gen). ARGV: operation ("acquire", "late", "slow", "speed"),
# max_rate, burst, min_rate, generation, retry_after, now ("" for Redis's clock; tests give
# their own). Numbers come back as strings: Redis would truncate a Lua number to an integer.
SCRIPT = f"""
local max_rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local min_rate = math.min(tonumber(ARGV[4]), max_rate)
local now = tonumber(ARGV[7])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local state = redis.call('HMGET', KEYS[1], 'tat', 'rate', 'gen')
local tat = tonumber(state[1]) or now
local rate = math.min(tonumber(state[2]) or max_rate, max_rate)
local gen = tonumber(state[3]) or 0
local function tolerance()
  return (math.max(1, burst * rate / max_rate) - 1) / rate
end
local answer
if ARGV[1] == 'acquire' then
  local send_at = math.max(now, tat - tolerance())
  tat = math.max(tat, send_at) + 1 / rate
  answer = {{string.format('%.17g', send_at - now), tostring(gen)}}
elseif ARGV[1] == 'late' then
  tat = tat + (tonumber(ARGV[6]) or 0)
  answer = {{}}
elseif ARGV[1] == 'slow' then
  local slowed, pause = 0, 0
  if tonumber(ARGV[5]) == gen then
    if rate > min_rate then
      rate = math.max(min_rate, rate * {DECREASE})
      slowed = 1
    end
    gen = gen + 1
    pause = 1 / rate
  end
  local retry_after = tonumber(ARGV[6]) or 0
  if retry_after > pause then pause = retry_after end
  if pause > 0 then tat = math.max(tat, now + pause + tolerance()) end
  answer = {{tostring(slowed)}}
else
  if rate < max_rate then rate = math.min(max_rate, rate + {RECOVERY} * max_rate / rate) end
  answer = {{}}
end
redis.call('HSET', KEYS[1], 'tat', string.format('%.17g', tat),
           'rate', string.format('%.17g', rate), 'gen', tostring(gen))
redis.call('PEXPIRE', KEYS[1], math.ceil((math.max(tat - now, 0) + {IDLE_TTL}) * 1000))
table.insert(answer, string.format('%.17g', rate))
return answer
"""


def bucket_name(api_key: str, api_base: str) -> str:
    """The bucket of a key at an API base: its mode and a digest (never the key itself).
    Clients for connected accounts (``Stripe-Account``) share their platform key's bucket."""
    digest = hashlib.sha256(f"{api_base.rstrip('/')}\n{api_key}".encode()).hexdigest()[:16]
    return f"{key_mode(api_key) or 'other'}:{digest}"


class _RedisDown(Exception):
    """Redis failed a moment ago: not asked again before ``REDIS_RETRY_AFTER``."""


class RedisRateLimiter:
    """An ``AdaptiveBucket`` in Redis, shared by every process using the same ``name``."""

    def __init__(
        self,
        client: redis.Redis,
        name: str,
        rate: float,
        *,
        burst: int | None = None,
        min_rate: float = MIN_RATE,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] | None = None,
    ) -> None:
        check_rate(rate, burst)
        self.name = name
        self.key = KEY_PREFIX + name
        self.max_rate = float(rate)
        self.burst = burst if burst is not None else default_burst(rate)
        self.min_rate = min_rate
        #: The rate the bucket had at the last call (the shared one, as this process saw it).
        self.rate = self.max_rate
        self._script = client.register_script(SCRIPT)
        self._sleep = sleep
        self._clock = clock
        self._fallback = LocalRateLimiter(rate, burst=self.burst, min_rate=min_rate, name=name)
        self._errors = (_import_redis().RedisError, OSError, _RedisDown)
        self._warned_at: float | None = None
        self._redis_down_until = 0.0

    def __repr__(self) -> str:
        return f"RedisRateLimiter({self.name!r}, rate={self.rate:g}/{self.max_rate:g})"

    def _call(self, operation: str, generation: int = 0, retry_after: float = 0.0) -> list[str]:
        if time.monotonic() < self._redis_down_until:
            raise _RedisDown
        now = "" if self._clock is None else repr(self._clock())
        arguments = (self.max_rate, self.burst, self.min_rate, generation, retry_after, now)
        answer = self._script(keys=[self.key], args=[operation, *arguments])
        values = [v.decode() if isinstance(v, bytes) else str(v) for v in answer]
        self.rate = float(values[-1])
        return values

    def _redis_failed(self, exc: Exception) -> None:
        if isinstance(exc, _RedisDown):
            return
        now = time.monotonic()
        self._redis_down_until = now + REDIS_RETRY_AFTER
        if self._warned_at is None or now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            logger.warning(
                "stripe rate limit: Redis does not answer (%s: %s); %s is paced by this "
                "process alone until it does",
                type(exc).__name__, exc, self.name,
            )  # fmt: skip

    def acquire(self, endpoint: str = "") -> int:
        try:
            wait, generation, _rate = self._call("acquire")
        except self._errors as exc:
            self._redis_failed(exc)
            return self._fallback.acquire()
        if float(wait) > 0:
            started = time.monotonic()
            self._sleep(float(wait))
            late = time.monotonic() - started - float(wait)
            if late > LATE:  # woke late: the bookings after it move back as much (as locally)
                with contextlib.suppress(*self._errors):
                    self._call("late", retry_after=late)
        return int(generation)

    def on_success(self, generation: int, endpoint: str = "") -> None:
        if self.rate >= self.max_rate:
            return  # nothing to recover: no round trip
        try:
            self._call("speed")
        except self._errors as exc:
            self._redis_failed(exc)
            self._fallback.on_success(generation)

    def on_rate_limited(
        self, generation: int, retry_after: float | None, endpoint: str = ""
    ) -> None:
        try:
            slowed, _rate = self._call("slow", generation, retry_after or 0.0)
        except self._errors as exc:
            self._redis_failed(exc)
            self._fallback.on_rate_limited(generation, retry_after)
            return
        if slowed == "1":
            logger.warning(
                "stripe rate limited (429): %s slows to %.1f requests/s for every process",
                self.name, self.rate,
            )  # fmt: skip


def _import_redis() -> Any:
    try:
        import redis
    except ImportError:
        raise ImproperlyConfigured(
            "STRIPE_CUSTOMERS['RATE_LIMIT_BACKEND'] is a Redis URL but the redis package is "
            "not installed: pip install 'redis>=5' (or set it to 'local')."
        ) from None
    return redis


_redis_clients: dict[str, redis.Redis] = {}
_limiters: dict[tuple[Any, ...], RateLimiter] = {}
_lock = threading.Lock()


def connect_redis(url: str) -> redis.Redis:
    """A Redis client for the limiter: short timeouts and a single retry (redis-py retries a
    refused connection for seconds by default; the limiter falls back to local instead)."""
    redis = _import_redis()
    retry = redis.retry.Retry(redis.backoff.NoBackoff(), 1)
    return redis.Redis.from_url(  # type: ignore[no-any-return]
        url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT, retry=retry
    )


def _redis_client(url: str) -> redis.Redis:
    client = _redis_clients.get(url)
    if client is None:
        client = _redis_clients[url] = connect_redis(url)
    return client


def effective_rate(api_key: str, rate: float | None) -> float | None:
    """Requests per second the global bucket paces at, for ``RATE_LIMIT`` (the limit Stripe
    holds the account to: None is the key mode's default, 0 is none): ``PACE`` of it."""
    if rate is None:
        return default_rate(api_key) * PACE
    return None if rate == 0 else float(rate) * PACE


def limiter_for(
    api_key: str,
    api_base: str,
    rate: float | None,
    backend: str = LOCAL,
    endpoint_rates: Mapping[str, float | None] | None = None,
) -> RateLimiter | None:
    """The limits of this key and API base (one per process, shared by its clients): its
    global bucket and one per endpoint (``stripe.limits``), or None when ``rate`` is 0 (no
    limit). ``rate``, ``backend`` and ``endpoint_rates`` are the settings' values
    (``RATE_LIMIT``, ``RATE_LIMIT_BACKEND``, ``ENDPOINT_RATE_LIMITS``: an endpoint's rate, or
    0/None for none of its own)."""
    requests_per_second = effective_rate(api_key, rate)
    if requests_per_second is None:
        return None
    name = bucket_name(api_key, api_base)
    overrides = tuple(sorted((endpoint_rates or {}).items()))
    cache_key = (backend, name, requests_per_second, overrides)
    with _lock:
        limiter = _limiters.get(cache_key)
        if limiter is None:
            make = _maker(backend)
            limiter = StripeLimits(
                make(name, requests_per_second),
                lambda endpoint, endpoint_rate: make(f"{name}:{endpoint}", endpoint_rate * PACE),
                endpoint_rates=dict(overrides),
            )
            _limiters[cache_key] = limiter
        return limiter


def _maker(backend: str) -> Callable[[str, float], RateLimiter]:
    """How a bucket of ``backend`` is made, paced evenly (a burst of one)."""
    if backend == LOCAL:
        return lambda name, rate: LocalRateLimiter(rate, burst=1, name=name)
    if backend.startswith(REDIS_SCHEMES):
        client = _redis_client(backend)
        return lambda name, rate: RedisRateLimiter(client, name, rate, burst=1)
    raise ImproperlyConfigured(
        f"STRIPE_CUSTOMERS['RATE_LIMIT_BACKEND'] must be 'local' or a Redis URL "
        f"(redis://, rediss://, unix://), not {backend!r}."
    )


def forget_limiters() -> None:
    """Start over: new buckets (and Redis connections) for whoever asks next."""
    with _lock:
        _limiters.clear()
        _redis_clients.clear()


def _after_fork_in_child() -> None:
    """A forked worker (Celery's prefork pool) starts with buckets and connections of its own
    (and a fresh lock: another thread of the parent may have held it at the fork)."""
    global _lock
    _lock = threading.Lock()
    _limiters.clear()
    _redis_clients.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
