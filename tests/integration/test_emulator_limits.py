"""The emulator speaks Stripe's latency and rate limit (issue 14).

Real HTTP, real time, kept short. Timing bounds are loose (the machine is shared) but each one
fails if the behaviour is missing: a serialised server takes N latencies where the bound
allows about three; a server without a limit answers 200 where a 429 is required.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from django_stripe_customers.stripe import RateLimitError
from django_stripe_customers.testing import StripeEmulator
from django_stripe_customers.testing.limits import Limits, Throttle, TokenBucket
from tests.support.fidelity.client import Api
from tests.support.stripe_servers import make_client

RATE_LIMIT_MESSAGE = (
    "Too many requests hit the API too quickly. We recommend an exponential backoff of your "
    "requests."
)


@pytest.fixture
def emulator() -> Iterator[StripeEmulator]:
    """A private emulator (its limits never leak into the session's)."""
    with StripeEmulator() as running:
        yield running


def timed(call: Callable[[], requests.Response]) -> tuple[requests.Response, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


# -- the token bucket, on given times -------------------------------------------------------


def test_bucket_starts_full_and_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, capacity=3, now=100.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(100.4) is False  # 0.8 token
    assert bucket.take(100.5) is True  # 1 token at 0.5 s
    assert bucket.take(100.5) is False


def test_bucket_never_holds_more_than_its_capacity() -> None:
    bucket = TokenBucket(rate=10.0, capacity=2, now=0.0)
    assert bucket.take(0.0) and bucket.take(0.0)
    assert [bucket.take(3600.0) for _ in range(3)] == [True, True, False]


def test_bucket_ignores_time_going_backwards() -> None:
    bucket = TokenBucket(rate=1.0, capacity=1, now=50.0)
    assert bucket.take(50.0)
    assert bucket.take(10.0) is False
    assert bucket.take(50.5) is False
    assert bucket.take(51.0) is True


def test_limits_are_validated_and_burst_defaults_to_one_second() -> None:
    assert Limits().burst == 0
    assert Limits(rate_limit=25).burst == 25
    assert Limits(rate_limit=2.5).burst == 3
    assert Limits(rate_limit=0.5).burst == 1
    assert Limits(rate_limit=25, rate_limit_burst=5).burst == 5
    for bad in (
        {"latency_ms": -1},
        {"latency_jitter_ms": -1},
        {"latency_ms": float("nan")},
        {"rate_limit": 0},
        {"rate_limit": float("inf")},
        {"rate_limit_burst": 3},
        {"rate_limit": 5, "rate_limit_burst": 0},
    ):
        with pytest.raises(ValueError):
            Limits(**bad)
    with pytest.raises(ValueError, match="latency_ms"):
        StripeEmulator(latency_ms=-5)


# -- latency --------------------------------------------------------------------------------


def test_every_answer_waits_for_the_latency() -> None:
    """200s, 4xx and 429s alike leave no sooner than ``latency_ms`` after the request."""
    # Two tokens, one more only after 2 s: the fourth request finds the bucket empty.
    with StripeEmulator(latency_ms=250, rate_limit=0.5, rate_limit_burst=2) as emulator:
        api = Api(emulator.url)
        answers = [
            timed(lambda: api.get("/v1/customers")),  # 200
            timed(lambda: api.get("/v1/nowhere")),  # 404
            timed(lambda: Api(emulator.url, None).get("/v1/customers")),  # 401 (no token)
            timed(lambda: api.get("/v1/customers")),  # 429
        ]
    assert [response.status_code for response, _ in answers] == [200, 404, 401, 429]
    for response, seconds in answers:
        assert seconds >= 0.25, (response.status_code, seconds)


def test_jitter_adds_a_bounded_random_delay_and_none_by_default() -> None:
    fixed = Throttle(Limits(latency_ms=100))
    assert {fixed.answer_at(10.0) for _ in range(50)} == {10.1}
    jittery = Throttle(Limits(latency_ms=100, latency_jitter_ms=200))
    delays = [jittery.answer_at(10.0) - 10.0 for _ in range(200)]
    assert all(0.1 <= delay <= 0.3 for delay in delays)
    assert max(delays) - min(delays) > 0.15
    with StripeEmulator(latency_ms=100, latency_jitter_ms=50) as emulator:
        api = Api(emulator.url)
        assert all(timed(lambda: api.get("/v1/customers"))[1] >= 0.1 for _ in range(3))


def test_concurrent_requests_wait_in_parallel(emulator: StripeEmulator) -> None:
    """16 keep-alive connections x 2 requests at 300 ms: about 0.6 s, not 16 x 2 x 300 ms.

    Half the requests are creates (they take the store lock): the wait is outside it.
    """
    emulator.set_limits(latency_ms=300)
    threads_count, per_thread = 16, 2
    barrier = threading.Barrier(threads_count + 1)
    statuses: list[int] = []
    durations: list[float] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        api = Api(emulator.url)
        barrier.wait()
        for _ in range(per_thread):
            if number % 2:
                response, seconds = timed(lambda: api.post("/v1/customers", {"name": "c"}))
            else:
                response, seconds = timed(lambda: api.get("/v1/customers"))
            with lock:
                statuses.append(response.status_code)
                durations.append(seconds)
        api.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join(30)
    elapsed = time.perf_counter() - started
    assert statuses == [200] * threads_count * per_thread
    assert min(durations) >= 0.3
    assert 0.6 <= elapsed < 2.0, elapsed  # serialised: 9.6 s
    assert len(emulator.customers) == threads_count // 2 * per_thread


# -- the rate limit -------------------------------------------------------------------------


def test_beyond_the_burst_stripe_answers_429_rate_limit(emulator: StripeEmulator) -> None:
    """Within the burst: 200. Beyond: Stripe's 429 ``rate_limit`` error, with a Request-Id and
    no Stripe-Should-Retry (Stripe's SDKs, which obey that header, leave these to the caller)."""
    emulator.set_limits(rate_limit=1, rate_limit_burst=5)  # a token back only after 1 s
    api = Api(emulator.url)
    within = [api.get("/v1/customers").status_code for _ in range(5)]
    refused = api.get("/v1/customers")
    assert within == [200] * 5
    assert refused.status_code == 429
    request_id = refused.headers["Request-Id"]
    assert request_id.startswith("req_")
    assert refused.headers["Content-Type"] == "application/json"
    assert "Stripe-Should-Retry" not in refused.headers
    assert refused.json() == {
        "error": {
            "code": "rate_limit",
            "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
            "message": RATE_LIMIT_MESSAGE,
            "param": None,
            "request_log_url": f"https://dashboard.stripe.com/test/logs/{request_id}",
            "type": "invalid_request_error",
        }
    }
    assert emulator.count(status=200) == 5
    assert emulator.count(status=429) == 1
    assert emulator.count("GET", "/v1/customers", status=429) == 1
    assert emulator.requests[-1].request_id == request_id


def test_each_api_key_has_its_own_bucket(emulator: StripeEmulator) -> None:
    emulator.set_limits(rate_limit=1, rate_limit_burst=1)
    first, second = Api(emulator.url, "sk_test_first"), Api(emulator.url, "sk_test_second")
    assert first.get("/v1/customers").status_code == 200
    assert first.get("/v1/customers").status_code == 429
    assert second.get("/v1/customers").status_code == 200
    assert second.get("/v1/customers").status_code == 429


def test_tokens_come_back_at_the_rate(emulator: StripeEmulator) -> None:
    emulator.set_limits(rate_limit=4, rate_limit_burst=1)  # one token per 250 ms
    api = Api(emulator.url)
    assert api.get("/v1/customers").status_code == 200
    assert api.get("/v1/customers").status_code == 429
    time.sleep(0.35)
    assert api.get("/v1/customers").status_code == 200


def test_a_client_going_flat_out_gets_the_rate_and_no_more(emulator: StripeEmulator) -> None:
    """Over ~0.8 s at 20/s with a burst of 5: admitted <= 5 + 20 x elapsed (a hard bound: every
    admission happened inside the measured window), and not far below it."""
    emulator.set_limits(rate_limit=20, rate_limit_burst=5)
    api = Api(emulator.url)
    started = time.perf_counter()
    while time.perf_counter() - started < 0.8:
        api.get("/v1/customers")
    elapsed = time.perf_counter() - started
    admitted = emulator.count(status=200)
    assert emulator.count(status=429) > 0
    assert admitted <= 5 + 20 * elapsed + 1
    assert admitted >= (5 + 20 * elapsed) * 0.6


def test_a_refused_request_changes_nothing(emulator: StripeEmulator) -> None:
    """Rate limiters run before execution and before the idempotency layer: a 429 creates,
    updates and deletes nothing, makes no event, and leaves its Idempotency-Key unused."""
    api = Api(emulator.url)
    customer = api.create_customer({"name": "Before"})
    emulator.set_limits(rate_limit=2, rate_limit_burst=1)
    assert api.get("/v1/customers").status_code == 200  # the token is spent
    key = {"Idempotency-Key": "key-refused-first"}
    refused = [
        api.post("/v1/customers", {"name": "Refused"}, headers=key),
        api.post(f"/v1/customers/{customer['id']}", {"name": "Refused"}),
        api.delete(f"/v1/customers/{customer['id']}"),
    ]
    assert [r.status_code for r in refused] == [429, 429, 429]
    assert "Idempotent-Replayed" not in refused[0].headers
    assert list(emulator.customers) == [customer["id"]]
    assert emulator.customers[customer["id"]]["name"] == "Before"
    assert [event["type"] for event in emulator.events] == ["customer.created"]

    time.sleep(0.6)  # a token back
    created = api.post("/v1/customers", {"name": "Other params"}, headers=key)
    assert created.status_code == 200, created.text  # not an idempotency_error
    assert created.json()["name"] == "Other params"
    time.sleep(0.6)
    replayed = api.post("/v1/customers", {"name": "Other params"}, headers=key)
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    assert replayed.json()["id"] == created.json()["id"]
    assert emulator.count(status=429) == 3


def test_unauthenticated_requests_spend_no_token(emulator: StripeEmulator) -> None:
    emulator.set_limits(rate_limit=1, rate_limit_burst=1)
    assert Api(emulator.url, None).get("/v1/customers").status_code == 401
    assert Api(emulator.url, "sk_live_wrong").get("/v1/customers").status_code == 401
    assert Api(emulator.url).get("/v1/customers").status_code == 200


def test_the_client_sees_stripe_rate_limit_error_and_recovers_by_retrying(
    emulator: StripeEmulator,
) -> None:
    """What the emulator answers is what the client maps to ``RateLimitError``; with retries
    and backoff it gets through once a token is back."""
    emulator.set_limits(rate_limit=1, rate_limit_burst=1)  # the next token in 1 s
    impatient = make_client(emulator.url, max_retries=0)
    impatient.customers.list(limit=1)
    with pytest.raises(RateLimitError) as raised:
        impatient.customers.list(limit=1)
    assert raised.value.http_status == 429
    assert raised.value.code == "rate_limit"
    assert raised.value.request_id == emulator.requests[-1].request_id
    patient = make_client(emulator.url, max_retries=8, initial_retry_delay=0.1, max_retry_delay=0.5)
    assert patient.customers.list(limit=1)["object"] == "list"
    assert emulator.count(status=429) >= 2  # the patient one was refused, then got through
    assert emulator.count(status=200) == 2


# -- changing and resetting limits ----------------------------------------------------------


def test_set_limits_replaces_them_all_and_reset_restores_the_built_ones() -> None:
    built = Limits(latency_ms=50, rate_limit=1, rate_limit_burst=1)
    with StripeEmulator(latency_ms=50, rate_limit=1, rate_limit_burst=1) as emulator:
        api = Api(emulator.url)
        assert emulator.limits == built
        assert api.get("/v1/customers").status_code == 200
        assert api.get("/v1/customers").status_code == 429

        emulator.set_limits(latency_ms=400)
        assert emulator.limits == Limits(latency_ms=400)
        response, seconds = timed(lambda: api.get("/v1/customers"))
        assert response.status_code == 200 and seconds >= 0.4

        emulator.set_limits()
        assert emulator.limits == Limits()
        statuses = [api.get("/v1/customers").status_code for _ in range(5)]
        assert statuses == [200] * 5

        emulator.set_limits(latency_ms=2000, rate_limit=1, rate_limit_burst=1)
        emulator.reset()
        assert emulator.limits == built
        assert emulator.requests == []
        response, seconds = timed(lambda: api.get("/v1/customers"))
        assert response.status_code == 200  # the bucket is full again
        assert seconds < 1.0  # 50 ms, not 2 s
        assert api.get("/v1/customers").status_code == 429


def test_a_plain_emulator_has_no_limits(stripe_emulator: StripeEmulator) -> None:
    assert stripe_emulator.limits == Limits()
    api = Api(stripe_emulator.url)
    assert [api.get("/v1/customers").status_code for _ in range(60)] == [200] * 60
