"""The Redis bucket (``ratelimits.RedisRateLimiter``): its Lua script computes what
``AdaptiveBucket`` computes, one 429 slows every process, and a Redis that does not answer
leaves each process paced on its own.

Real Redis at 127.0.0.1:6379, database 13, each test under bucket names of its own, deleted
after. Without Redis these tests skip, except in CI (``CI`` or ``REQUIRE_POSTGRES`` set).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from django_stripe_customers.ratelimits import KEY_PREFIX, RedisRateLimiter, connect_redis
from django_stripe_customers.stripe.ratelimit import AdaptiveBucket
from tests.support.clock import FakeTime
from tests.support.redis_db import REDIS_URL, redis_or_skip


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis_or_skip()
    yield client
    client.close()


@pytest.fixture
def bucket(redis_client: redis.Redis) -> Iterator[str]:
    """A bucket name no other test (or run) uses; its key is deleted afterwards."""
    name = f"test:{uuid.uuid4().hex}"
    yield name
    redis_client.delete(KEY_PREFIX + name)


def test_the_script_computes_what_the_python_bucket_computes(redis_client, bucket) -> None:
    """The same random mix of bookings, 429s (current and stale generations, with and without
    Retry-After) and successes, on the same given clock, gives the same send times, rates and
    generations in Lua as in Python."""
    rng = random.Random(14)
    clock = FakeTime(now=1_700_000_000.0)
    shared = RedisRateLimiter(redis_client, bucket, 25, clock=clock, sleep=lambda s: None)
    model = AdaptiveBucket(25, now=clock.now)
    for step in range(600):
        clock.now += rng.choice([0.0, 0.0, 0.001, 0.01, 0.05, 0.3, 2.0])
        roll = rng.random()
        if roll < 0.8:
            wait, generation, _ = shared._call("acquire")
            expected = model.reserve(clock.now) - clock.now
            assert float(wait) == pytest.approx(expected, abs=1e-9), step
            assert int(generation) == model.generation
        elif roll < 0.9:
            generation = model.generation - rng.choice([0, 0, 1])
            retry_after = rng.choice([0.0, 0.0, 0.5, 3.0])
            slowed, _ = shared._call("slow", generation, retry_after)
            assert (slowed == "1") == model.slow_down(clock.now, generation, retry_after), step
        else:
            shared._call("speed")
            model.speed_up()
        assert shared.rate == pytest.approx(model.rate, rel=1e-12), step


def test_the_bucket_holds_its_rate_on_redis_clock(redis_client, bucket) -> None:
    slept: list[float] = []
    limiter = RedisRateLimiter(redis_client, bucket, 10, burst=3, sleep=slept.append)
    for _ in range(8):
        limiter.acquire()
    waits = sorted(slept)
    assert len(waits) == 5  # three go at once, five wait
    # The fifth waits about 0.5 s (5 intervals of 0.1 s minus the time the calls took).
    assert 0.4 <= waits[-1] <= 0.5


def test_a_429_seen_by_one_process_slows_every_process(redis_client, bucket) -> None:
    """Two limiters with connections of their own, as two workers have."""
    first_process = RedisRateLimiter(connect_redis(REDIS_URL), bucket, 40)
    second_process = RedisRateLimiter(connect_redis(REDIS_URL), bucket, 40)
    generation = first_process.acquire()
    assert second_process.acquire() == generation
    first_process.on_rate_limited(generation, retry_after=None)
    assert first_process.rate == 20
    # The second process's request was sent at the old pace: its 429 does not halve again.
    second_process.on_rate_limited(generation, retry_after=None)
    assert first_process.rate == 20
    slept: list[float] = []
    second_process._sleep = slept.append
    new_generation = second_process.acquire()
    assert new_generation == generation + 1 and second_process.rate == 20
    assert slept and 0.0 < slept[0] <= 0.05  # the bucket was emptied: one interval at 20/s
    second_process.on_success(new_generation)
    assert second_process.rate == pytest.approx(20 + 0.1 * 40 / 20)
    first_process.acquire()
    assert first_process.rate == second_process.rate


def test_retry_after_seen_by_one_process_holds_back_the_others(redis_client, bucket) -> None:
    first_process = RedisRateLimiter(connect_redis(REDIS_URL), bucket, 100)
    slept: list[float] = []
    second_process = RedisRateLimiter(connect_redis(REDIS_URL), bucket, 100, sleep=slept.append)
    first_process.on_rate_limited(first_process.acquire(), retry_after=2.0)
    second_process.acquire()
    assert slept and 1.9 <= slept[0] <= 2.0


def test_the_bucket_expires_when_idle(redis_client, bucket) -> None:
    RedisRateLimiter(redis_client, bucket, 5).acquire()
    ttl = redis_client.pttl(KEY_PREFIX + bucket)
    assert 60_000 <= ttl <= 61_000
    assert set(redis_client.hkeys(KEY_PREFIX + bucket)) == {b"tat", b"rate", b"gen"}


def test_when_redis_does_not_answer_each_process_paces_itself(caplog) -> None:
    nowhere = connect_redis("redis://127.0.0.1:9/0")  # nothing listens there
    limiter = RedisRateLimiter(nowhere, "test:nowhere", 20, burst=1)
    slept: list[float] = []
    limiter._fallback._sleep = slept.append
    generations = [limiter.acquire() for _ in range(3)]
    assert generations == [0, 0, 0]
    # 20/s, locally (the sleeps are not real, so the third books 0.1 s ahead); and quickly:
    # redis-py would retry a refused connection for seconds, the limiter asks once.
    assert slept == [pytest.approx(0.05, abs=0.01), pytest.approx(0.1, abs=0.01)]
    limiter.on_rate_limited(0, retry_after=None)
    assert limiter._fallback.rate == 10
    warnings = [r for r in caplog.records if "Redis does not answer" in r.getMessage()]
    assert len(warnings) == 1, "one warning, not one per request"


def test_a_request_sent_late_moves_the_shared_bookings_back(redis_client, bucket) -> None:
    """As the local bucket does: a process that wakes 80 ms after its turn pushes the next
    bookings back by as much, for every process sharing the bucket."""
    waits: list[float] = []
    late = [0.08]

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds + (late.pop() if late else 0.0))

    limiter = RedisRateLimiter(redis_client, bucket, 10, burst=1, sleep=sleep)
    limiter.acquire()  # at once
    limiter.acquire()  # its turn 0.1 s later; woke 0.08 s after it
    limiter.acquire()
    assert waits[-1] == pytest.approx(0.1, abs=0.02), "a full interval after the late one"
