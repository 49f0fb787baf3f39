"""The client's rate limiter (``stripe/ratelimit.py``): the bucket's arithmetic on given times,
AIMD on 429s, ``Retry-After``, and the client asking it before every try.

The arithmetic runs on a fake clock (times are given, nothing sleeps); the client tests go
over real HTTP through the fault proxy, which answers the 429s Stripe would.
"""

from __future__ import annotations

import threading
import time

import pytest

from django_stripe_customers.stripe import LocalRateLimiter, StripeClient
from django_stripe_customers.stripe.ratelimit import (
    MIN_RATE,
    AdaptiveBucket,
    default_burst,
    is_rate_limited,
)
from tests.support.clock import FakeTime
from tests.support.faultproxy import RATE_LIMIT, STATUS, FaultProxy
from tests.support.stripe_servers import make_client


def send_times(bucket: AdaptiveBucket, asked_at: list[float]) -> list[float]:
    return [round(bucket.reserve(now), 6) for now in asked_at]


# -- the arithmetic -------------------------------------------------------------------------


def test_a_full_bucket_lets_its_burst_through_then_one_per_interval() -> None:
    bucket = AdaptiveBucket(10, burst=3, now=0.0)
    assert send_times(bucket, [0.0] * 6) == [0.0, 0.0, 0.0, 0.1, 0.2, 0.3]


def test_requests_are_served_in_the_order_they_asked_and_never_faster_than_the_rate() -> None:
    bucket = AdaptiveBucket(4, burst=1, now=0.0)
    times = send_times(bucket, [0.0, 0.01, 0.02, 0.03, 0.04])
    assert times == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_an_idle_bucket_refills_to_its_burst_and_no_more() -> None:
    bucket = AdaptiveBucket(10, burst=2, now=0.0)
    send_times(bucket, [0.0] * 5)  # booked until 0.3
    # An hour later: two at once (the burst), not 36,000.
    assert send_times(bucket, [3600.0] * 4) == [3600.0, 3600.0, 3600.1, 3600.2]


def test_the_long_run_rate_is_the_rate_whatever_the_burst() -> None:
    bucket = AdaptiveBucket(25, now=0.0)
    times = send_times(bucket, [0.0] * 1000)
    assert times.count(0.0) == default_burst(25) == 12
    # 1,000 requests from an idle start: burst, then (1000 - 12) / 25 s.
    assert times[-1] == pytest.approx((1000 - 12) / 25)


def test_default_burst_is_half_a_second_and_at_least_one() -> None:
    assert [default_burst(rate) for rate in (0.5, 1, 2, 25, 100)] == [1, 1, 1, 12, 50]


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), True, "25"])
def test_a_rate_must_be_a_positive_number(bad: object) -> None:
    with pytest.raises(ValueError, match="rate"):
        AdaptiveBucket(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_a_burst_must_be_a_positive_int(bad: object) -> None:
    with pytest.raises(ValueError, match="burst"):
        AdaptiveBucket(10, burst=bad)  # type: ignore[arg-type]


# -- AIMD -----------------------------------------------------------------------------------


def test_a_429_halves_the_rate_and_empties_the_bucket() -> None:
    bucket = AdaptiveBucket(20, burst=10, now=0.0)
    generation = bucket.generation
    assert bucket.slow_down(0.0, generation, None) is True
    assert bucket.rate == 10
    # No burst left: the next request waits one interval at the new rate, then one per 0.1 s.
    assert send_times(bucket, [0.0] * 3) == [0.1, 0.2, 0.3]


def test_429s_of_requests_sent_before_the_slow_down_do_not_slow_it_again() -> None:
    """16 requests in flight all get 429 for the same overshoot: one halving, not 16."""
    bucket = AdaptiveBucket(64, now=0.0)
    in_flight = bucket.generation
    slowed = [bucket.slow_down(0.0, in_flight, None) for _ in range(16)]
    assert slowed == [True] + [False] * 15
    assert bucket.rate == 32
    # A request sent at the new pace that is refused again halves it again.
    assert bucket.slow_down(1.0, bucket.generation, None) is True
    assert bucket.rate == 16


def test_the_rate_never_falls_below_the_floor() -> None:
    bucket = AdaptiveBucket(25, now=0.0)
    for _ in range(20):
        bucket.slow_down(0.0, bucket.generation, None)
    assert bucket.rate == MIN_RATE
    slow = AdaptiveBucket(0.5, now=0.0)  # configured below the floor: stays at its own rate
    slow.slow_down(0.0, slow.generation, None)
    assert slow.rate == 0.5


def test_successes_bring_the_rate_back_gradually_to_the_configured_rate() -> None:
    bucket = AdaptiveBucket(20, now=0.0)
    bucket.slow_down(0.0, bucket.generation, None)
    assert bucket.rate == 10
    rates = []
    for _ in range(100):
        bucket.speed_up()
        rates.append(bucket.rate)
    assert rates == sorted(rates), "only up"
    assert rates[0] == pytest.approx(10.2)  # + 10% of 20 per second at 10/s: +0.2 a request
    assert rates[9] < 12, "additive: about +2/s per second, not doubling"
    assert rates[-1] == 20, "back to the configured rate, and no further"
    bucket.speed_up()
    assert bucket.rate == 20


def test_retry_after_pauses_the_bucket_for_everyone() -> None:
    bucket = AdaptiveBucket(100, burst=50, now=0.0)
    bucket.slow_down(0.0, bucket.generation, retry_after=2.0)
    assert send_times(bucket, [0.0, 0.5, 1.0]) == [2.0, 2.02, 2.04]


def test_retry_after_is_honoured_even_for_a_request_of_an_older_generation() -> None:
    bucket = AdaptiveBucket(100, now=0.0)
    old = bucket.generation
    bucket.slow_down(0.0, old, None)
    assert bucket.slow_down(0.0, old, retry_after=3.0) is False  # not halved twice...
    assert bucket.rate == 50
    assert bucket.reserve(0.0) == 3.0  # ...but Stripe's word is kept


def test_which_429s_mean_slow_down() -> None:
    assert is_rate_limited(429, "rate_limit")
    assert is_rate_limited(429, None)  # a proxy's or load balancer's 429
    assert not is_rate_limited(429, "lock_timeout")  # another request holds the object
    assert not is_rate_limited(409, None)
    assert not is_rate_limited(200, None)


# -- the limiter of one process -------------------------------------------------------------


def test_local_limiter_sleeps_until_each_send_time() -> None:
    clock = FakeTime()
    limiter = LocalRateLimiter(5, burst=2, clock=clock, sleep=clock.sleep)
    started = clock.now
    for _ in range(7):
        limiter.acquire()
    assert clock.slept == pytest.approx([0.2] * 5)
    assert clock.now - started == pytest.approx(1.0)


def test_a_request_sent_late_moves_the_next_bookings_back_as_much() -> None:
    """A thread that wakes 60 ms after its turn (a busy machine) would let the requests after
    it bunch up against a strict one-second window: the bookings made after it move back."""
    clock = FakeTime()
    late_once = [0.06]

    def sleep(seconds: float) -> None:
        clock.sleep(seconds + (late_once.pop() if late_once else 0.0))

    limiter = LocalRateLimiter(10, burst=1, clock=clock, sleep=sleep)
    limiter.acquire()  # at once
    limiter.acquire()  # booked 0.1 s later, sent 0.16 s later
    sent_late = clock.now
    limiter.acquire()
    assert clock.now - sent_late == pytest.approx(0.1), "a full interval after the late one"


def test_local_limiter_slows_on_429_and_recovers_on_successes() -> None:
    clock = FakeTime()
    limiter = LocalRateLimiter(10, clock=clock, sleep=clock.sleep)
    generation = limiter.acquire()
    limiter.on_rate_limited(generation, retry_after=1.5)
    assert limiter.rate == 5
    before = clock.now
    limiter.acquire()
    assert clock.now - before == pytest.approx(1.5)
    for _ in range(40):
        limiter.on_success(limiter.acquire())
    assert limiter.rate == 10 == limiter.max_rate


def test_local_limiter_is_fair_and_holds_its_rate_under_threads() -> None:
    """32 threads on a real clock: every send time is its own slot, 1/rate apart."""
    rate = 200.0
    limiter = LocalRateLimiter(rate, burst=1)
    sent: list[float] = []
    sent_lock = threading.Lock()
    per_thread: dict[int, int] = {}

    def worker(number: int) -> None:
        for _ in range(5):
            limiter.acquire()
            with sent_lock:
                sent.append(time.monotonic())
                per_thread[number] = per_thread.get(number, 0) + 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    sent.sort()
    elapsed = sent[-1] - sent[0]
    assert len(sent) == 160 and set(per_thread.values()) == {5}
    # 159 intervals of 5 ms: 0.795 s at least; a noisy machine may add, never remove.
    assert elapsed >= 159 / rate * 0.98
    assert elapsed < 159 / rate * 3


# -- the client asks before every try --------------------------------------------------------


class CountingLimiter(LocalRateLimiter):
    """A real local limiter that also records what the client told it."""

    def __init__(self, rate: float, **options: object) -> None:
        super().__init__(rate, **options)  # type: ignore[arg-type]
        self.acquired = 0
        self.feedback: list[tuple[str, int, float | None]] = []

    def acquire(self, endpoint: str = "") -> int:
        self.acquired += 1
        return super().acquire()

    def on_success(self, generation: int, endpoint: str = "") -> None:
        self.feedback.append(("success", generation, None))
        super().on_success(generation)

    def on_rate_limited(
        self, generation: int, retry_after: float | None, endpoint: str = ""
    ) -> None:
        self.feedback.append(("rate_limited", generation, retry_after))
        super().on_rate_limited(generation, retry_after)


@pytest.fixture
def proxy(stripe_emulator) -> FaultProxy:
    with FaultProxy(stripe_emulator.url) as running:
        yield running


def test_without_a_limiter_the_client_is_unchanged(stripe_emulator) -> None:
    client = StripeClient("sk_test_x", api_base=stripe_emulator.url)
    assert client.rate_limiter is None
    client.customers.create({"email": "plain@example.com"})


def test_every_try_of_every_method_acquires_a_token(proxy: FaultProxy) -> None:
    limiter = CountingLimiter(1000)
    client = make_client(proxy.url, rate_limiter=limiter)
    proxy.enqueue(STATUS(500), STATUS(503))
    customer = client.customers.create({"email": "t@example.com"})  # 2 failures, then 201
    client.customers.retrieve(customer["id"])
    proxy.enqueue(STATUS(502, method="DELETE"))
    client.customers.delete(customer["id"])  # 1 failure, then 200
    assert limiter.acquired == len(proxy.requests) == 6
    assert [kind for kind, _, _ in limiter.feedback] == ["success"] * 6  # none was a 429


def test_a_429_slows_the_bucket_and_its_retry_after_holds_back_other_threads(
    proxy: FaultProxy,
) -> None:
    limiter = CountingLimiter(50, burst=25)
    client = make_client(proxy.url, rate_limiter=limiter)
    proxy.enqueue(RATE_LIMIT(retry_after=1))
    client.customers.create({"email": "first@example.com"})  # 429, waits 1 s, retried
    assert limiter.feedback[0] == ("rate_limited", 0, 1.0)
    assert limiter.rate == 25 + 0.2  # halved, then one success (+10% of 50 per s at 25/s)

    proxy.clear()
    proxy.enqueue(RATE_LIMIT(retry_after=1, method="GET"))
    done: dict[str, float] = {}

    def other_thread() -> None:
        time.sleep(0.3)  # asks after the 429 below
        client.customers.list(limit=1)
        done["other"] = time.monotonic()

    thread = threading.Thread(target=other_thread)
    thread.start()
    started = time.monotonic()
    client.customers.list(limit=1)  # this one gets the 429
    thread.join(10)
    first, *_ = proxy.requests
    assert first.response_status == 429
    others = proxy.requests[1:]
    assert len(others) == 2
    # The other thread never got a 429, yet it was held back until Retry-After ran out.
    assert min(r.received_at for r in others) - first.received_at >= 0.95
    assert done["other"] - started >= 0.95


def test_a_lock_timeout_429_is_retried_but_does_not_slow_the_bucket(proxy: FaultProxy) -> None:
    limiter = CountingLimiter(40)
    client = make_client(proxy.url, rate_limiter=limiter)
    body = {"error": {"type": "invalid_request_error", "code": "lock_timeout", "message": "x"}}
    proxy.enqueue(STATUS(429, body=body))
    client.customers.create({"email": "locked@example.com"})
    assert [kind for kind, _, _ in limiter.feedback] == ["success", "success"]
    assert limiter.rate == 40
