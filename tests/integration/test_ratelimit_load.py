"""The limiter under load, in one process: 16 threads through ``get_client()`` against the
emulator holding Stripe's pace (``rate_limit``, 429 ``rate_limit`` beyond it; 50 ms latency).

Real HTTP and real time, a few seconds each. The bounds are loose for a shared 2-core machine
but each fails without the behaviour: without a limiter the emulator answers 429s; a limiter
that serialised requests or slept too long would fall below the rate's lower bound.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from django_stripe_customers.clients import clear_client_cache, get_client
from django_stripe_customers.stripe import LocalRateLimiter, StripeClient, StripeError
from django_stripe_customers.stripe.limits import PACE, StripeLimits

THREADS = 16


@dataclass
class Run:
    """What the threads saw: completion times of the successes, errors, the limiter's rates."""

    finished: list[float] = field(default_factory=list)
    errors: list[StripeError] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def steady_rate(self, burst: int) -> float:
        """Requests per second after the first burst: the burst leaves at once, then one per
        interval, so the last ``n - burst`` completions span ``n - burst`` intervals."""
        times = sorted(self.finished)
        return (len(times) - burst) / (times[-1] - times[burst - 1])


def hammer(client: StripeClient, total: int, threads: int = THREADS) -> Run:
    """``total`` list requests from ``threads`` threads, as fast as the client lets them."""
    run = Run()
    remaining = iter(range(total))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if next(remaining, None) is None:
                    return
            try:
                client.customers.list(limit=1)
            except StripeError as exc:
                with lock:
                    run.errors.append(exc)
                continue
            with lock:
                run.finished.append(time.monotonic())
                if client.rate_limiter is not None:
                    run.rates.append(client.rate_limiter.rate)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.monotonic()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(120)
    run.seconds = time.monotonic() - started
    return run


@pytest.fixture
def limited(settings, stripe_settings) -> Iterator[None]:
    clear_client_cache()
    yield
    clear_client_cache()


def configure(settings, **values) -> None:
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, **values}


@pytest.mark.stripe_emulator(latency_ms=50, rate_limit=20)
def test_sixteen_threads_just_below_stripes_limit_never_see_a_429(
    settings, stripe_settings, limited
) -> None:
    configure(settings, RATE_LIMIT=18)
    client = get_client()
    limits = client.rate_limiter
    assert isinstance(limits, StripeLimits)
    limiter = limits.global_limiter
    assert isinstance(limiter, LocalRateLimiter) and limiter.max_rate == 18 * PACE

    run = hammer(client, total=100)

    assert run.errors == []
    assert stripe_settings.count(status=429) == 0
    assert stripe_settings.count("GET", "/v1/customers", status=200) == 100
    achieved = run.steady_rate(burst=9)
    print(f"configured 18/s, achieved {achieved:.2f}/s, 100 requests in {run.seconds:.2f}s")
    assert 18 * 0.8 <= achieved <= 18 * 1.1
    assert limiter.rate == 18 * PACE, "no 429, so never slowed"


@pytest.mark.stripe_emulator(latency_ms=50, rate_limit=10)
def test_a_limit_set_above_stripes_slows_down_on_429s_and_every_request_succeeds(
    settings, stripe_settings, limited
) -> None:
    configure(settings, RATE_LIMIT=30, MAX_RETRIES=8)
    client = get_client()

    run = hammer(client, total=80)

    refused = stripe_settings.count(status=429)
    answered = stripe_settings.count("GET", "/v1/customers", status=200)
    achieved = run.steady_rate(burst=15)
    print(
        f"limit 30/s over Stripe's 10/s: {refused} x 429, slowest {min(run.rates):.1f}/s, "
        f"achieved {achieved:.2f}/s, 80 requests in {run.seconds:.2f}s"
    )
    assert run.errors == [], "every request got through in the end (429s are retried)"
    assert answered == 80
    assert refused > 0, "the limit was above Stripe's: some 429s"
    assert min(run.rates) <= 15, "the bucket slowed down, not only the refused requests"
    # At a fixed 30/s against 10/s about two tries in three would be refused; slowing down
    # keeps the refusals to a fraction of the requests.
    assert refused < 40
    assert achieved <= 10 * 1.5, "after the first burst, about Stripe's pace"


@pytest.mark.stripe_emulator(
    latency_ms=30,
    rate_limit=100,
    endpoint_rate_limit=50,
    endpoint_rate_limits={"GET /v1/customers": 8},
    strict_window=True,
)
def test_threads_keep_each_endpoint_under_its_own_limit_and_the_others_go_on(
    settings, stripe_settings, limited
) -> None:
    """Stripe's per-endpoint limit (8/s here, the global 100/s) held as a strict one-second
    window: 16 threads listing never send more than 8 list requests in any second, and
    retrieves in other threads meanwhile are not held back by the list's bucket."""
    configure(
        settings,
        RATE_LIMIT=100,
        ENDPOINT_RATE_LIMITS={"GET /v1/customers": 8, "GET /v1/customers/{id}": 50},
    )
    client = get_client()
    (stripe_id,) = stripe_settings.seed(1)
    retrieved: list[float] = []

    def retrieve() -> None:
        for _ in range(30):
            client.customers.retrieve(stripe_id)
            retrieved.append(time.monotonic())

    other = threading.Thread(target=retrieve)
    other.start()
    run = hammer(client, total=40)
    other.join(60)

    assert run.errors == []
    assert stripe_settings.count_rate_limited() == 0
    assert stripe_settings.max_in_window("GET /v1/customers") <= 8
    achieved = run.steady_rate(burst=1)
    print(f"list at {achieved:.2f}/s (limit 8/s); 30 retrieves meanwhile")
    assert 8 * 0.8 <= achieved <= 8 * 1.02
    assert len(retrieved) == 30
    retrieve_rate = (len(retrieved) - 1) / (retrieved[-1] - retrieved[0])
    assert retrieve_rate > 16, "retrieves go at their own pace, not the list's"
