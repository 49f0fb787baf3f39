"""Per-endpoint rate limits, strict one-second windows, and what the limiters saw.

Stripe limits each API operation (an endpoint: method and path template, ids aside) on top of
the per-account limit; ``strict_window`` makes every limit a sliding one-second window. The pure
pieces are tested over given times; the rest over real HTTP, with small limits and short sleeps.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from django_stripe_customers.testing import Limits, StripeEmulator
from django_stripe_customers.testing import limits as limits_module
from django_stripe_customers.testing.__main__ import _describe, build_parser
from django_stripe_customers.testing.admissions import Admissions, max_in_window
from django_stripe_customers.testing.limits import (
    RateTable,
    SlidingWindow,
    Throttle,
    TokenBucket,
    endpoint_of,
    normalize_endpoint,
)
from tests.support.fidelity.client import Api

RATE_LIMIT_CODE = "rate_limit"


@pytest.fixture
def emulator() -> Iterator[StripeEmulator]:
    """A private emulator (its limits never leak into the session's)."""
    with StripeEmulator() as running:
        yield running


class FakeTime:
    """Stands for the ``time`` module in ``limits``: ``monotonic()`` is ``now``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(limits_module, "time", fake)
    return fake


# -- naming endpoints -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "endpoint"),
    [
        ("GET", "/v1/customers", "GET /v1/customers"),
        ("post", "/v1/customers", "POST /v1/customers"),
        ("GET", "/v1/customers/cus_123", "GET /v1/customers/{id}"),
        ("POST", "/v1/customers/cus_9", "POST /v1/customers/{id}"),
        ("DELETE", "/v1/customers/cus_123", "DELETE /v1/customers/{id}"),
        ("GET", "/v1/customers/cus_1/tax_ids/txi_1", "GET /v1/customers/{id}/tax_ids/{id}"),
        ("GET", "/v1/customers/cus_1/sources", "GET /v1/customers/{id}/sources"),
        ("GET", "/v1/customers/search", "GET /v1/customers/search"),
        ("GET", "/v1/customers/search?query=x", "GET /v1/customers/search"),
        ("GET", "/v1/account", "GET /v1/account"),
        ("GET", "/v1/accounts", "GET /v1/accounts"),
        ("GET", "/v1/accounts/acct_1", "GET /v1/accounts/{id}"),
        ("GET", "/v1/events/evt_1", "GET /v1/events/{id}"),
        ("GET", "/v1/balance/history", "GET /v1/balance/history"),
        ("GET", "/v1/invoices/upcoming/lines", "GET /v1/invoices/upcoming/lines"),
        ("GET", "/v1/checkout/sessions/cs_1", "GET /v1/checkout/sessions/{id}"),
        (
            "POST",
            "/v1/test_helpers/test_clocks/clock_1/advance",
            "POST /v1/test_helpers/test_clocks/{id}/advance",
        ),
        ("GET", "/v1/nowhere/x/y", "GET /v1/nowhere/{id}/y"),
        ("GET", "/healthz", "GET /healthz"),
        ("GET", "/", "GET /"),
    ],
)
def test_endpoint_of_replaces_ids_by_a_placeholder(method: str, path: str, endpoint: str) -> None:
    assert endpoint_of(method, path) == endpoint


def test_endpoint_names_are_normalised_and_checked() -> None:
    assert normalize_endpoint("get /v1/customers/cus_1") == "GET /v1/customers/{id}"
    assert normalize_endpoint(" GET /v1/customers/{id} ") == "GET /v1/customers/{id}"
    for bad in ("/v1/customers", "GET", "GET v1/customers", ""):
        with pytest.raises(ValueError, match="is not an endpoint"):
            normalize_endpoint(bad)


# -- Limits ---------------------------------------------------------------------------------


def test_the_defaults_are_unchanged() -> None:
    limits = Limits()
    assert limits.endpoint_rate_limit is None
    assert dict(limits.endpoint_rate_limits) == {}
    assert limits.strict_window is False
    assert limits.endpoint_limit("GET /v1/customers") is None
    assert Limits(latency_ms=5, rate_limit=3) == Limits(5.0, 0.0, 3)
    assert StripeEmulator().limits == Limits()


def test_endpoint_overrides_are_normalised_immutable_and_hashable() -> None:
    source = {"get /v1/customers/search": 20, "GET /v1/customers/cus_1": 3}
    limits = Limits(endpoint_rate_limit=25, endpoint_rate_limits=source)
    source["GET /v1/events"] = 1  # the caller's dict is copied
    assert isinstance(limits.endpoint_rate_limits, RateTable)
    assert dict(limits.endpoint_rate_limits) == {
        "GET /v1/customers/search": 20.0,
        "GET /v1/customers/{id}": 3.0,
    }
    with pytest.raises(TypeError):
        limits.endpoint_rate_limits["GET /v1/events"] = 1  # type: ignore[index]
    assert limits.endpoint_limit("GET /v1/customers/search") == 20
    assert limits.endpoint_limit("GET /v1/customers/{id}") == 3
    assert limits.endpoint_limit("GET /v1/customers") == 25
    same = Limits(endpoint_rate_limit=25, endpoint_rate_limits=dict(limits.endpoint_rate_limits))
    assert same == limits and hash(same) == hash(limits)
    assert limits != Limits(endpoint_rate_limit=25)
    assert "GET /v1/customers/search" in repr(limits)


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ({"endpoint_rate_limit": 0}, "endpoint_rate_limit must be > 0"),
        ({"endpoint_rate_limit": float("inf")}, "endpoint_rate_limit must be > 0"),
        ({"endpoint_rate_limits": {"GET /v1/customers": -1}}, "must be > 0"),
        ({"endpoint_rate_limits": {"GET /v1/customers": "5"}}, "must be a number"),
        ({"endpoint_rate_limits": {"/v1/customers": 5}}, "is not an endpoint"),
        (
            {"endpoint_rate_limits": {"GET /v1/customers/a": 1, "GET /v1/customers/b": 2}},
            "two rates",
        ),
        ({"rate_limit": 5, "rate_limit_burst": 2, "strict_window": True}, "strict_window"),
    ],
)
def test_impossible_limits_are_refused(kwargs: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        Limits(**kwargs)  # type: ignore[arg-type]


# -- the pure limiters, on given times ------------------------------------------------------


def test_a_sliding_window_admits_limit_per_second_and_no_more() -> None:
    window = SlidingWindow(3)
    assert [window.take(t) for t in (10.0, 10.1, 10.2, 10.5, 10.999)] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert window.take(11.0) is True  # 10.0 left the window (now - 1, now]
    assert window.take(11.05) is False
    assert window.take(11.1) is True
    assert window.take(11.2) is True
    assert window.take(11.2) is False
    assert list(window.admitted) == [11.0, 11.1, 11.2]


def test_a_refused_request_fills_no_window_and_empties_no_bucket() -> None:
    window = SlidingWindow(1)
    assert window.take(0.0)
    for moment in (0.2, 0.4, 0.6, 0.8, 0.99):
        assert window.ready(moment) is False
        assert window.take(moment) is False
    assert window.take(1.0) is True  # refusals did not push the window on
    bucket = TokenBucket(rate=1.0, capacity=2, now=0.0)
    assert bucket.ready(0.0) and bucket.ready(0.0) and bucket.ready(0.0)  # ready takes nothing
    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]


def test_a_sliding_window_for_a_rate() -> None:
    assert (SlidingWindow.for_rate(25).limit, SlidingWindow.for_rate(25).window) == (25, 1.0)
    assert SlidingWindow.for_rate(2.5).limit == 2
    slow = SlidingWindow.for_rate(0.5)
    assert (slow.limit, slow.window) == (1, 2.0)
    assert [slow.take(t) for t in (0.0, 1.0, 1.99, 2.0)] == [True, False, False, True]
    with pytest.raises(ValueError):
        SlidingWindow(0)


def test_the_throttle_admits_only_what_both_limits_admit(clock: FakeTime) -> None:
    """Global 3 and per endpoint 2, strict: an endpoint refusal leaves the key's window alone
    (the other endpoint still gets the third place), and a global refusal the endpoint's."""
    throttle = Throttle(Limits(rate_limit=3, endpoint_rate_limit=2, strict_window=True))
    assert throttle.admit("k", "GET /v1/customers")
    assert throttle.admit("k", "GET /v1/customers")
    assert throttle.admit("k", "GET /v1/customers") is False  # the endpoint's limit
    assert throttle.admit("k", "GET /v1/events")  # the key's third: the refusal took nothing
    assert throttle.admit("k", "GET /v1/events") is False  # the key's limit
    assert throttle.admit("other", "GET /v1/customers")  # a key of its own
    clock.now += 1.0
    assert throttle.admit("k", "GET /v1/events")
    assert throttle.admit("k", "GET /v1/events")  # the global refusal took no event place
    assert throttle.admit("k", "GET /v1/events") is False


def test_a_global_refusal_spends_no_endpoint_token(clock: FakeTime) -> None:
    """Token buckets: the key's refills at 10/s, the endpoint's (2/s) more slowly."""
    throttle = Throttle(Limits(rate_limit=10, rate_limit_burst=1, endpoint_rate_limit=2))
    assert throttle.admit("k", "GET /v1/customers")  # endpoint: 1 token left
    for _ in range(5):
        assert throttle.admit("k", "GET /v1/customers") is False  # the key's bucket is empty
    clock.now += 0.15  # key: 1 token; endpoint: 1.3 (0.3 had the refusals taken tokens)
    assert throttle.admit("k", "GET /v1/customers")


def test_without_endpoint_limits_the_throttle_runs_token_buckets(clock: FakeTime) -> None:
    throttle = Throttle(Limits(rate_limit=4, rate_limit_burst=1))
    assert [throttle.admit("k", "GET /v1/customers") for _ in range(2)] == [True, False]
    clock.now += 0.25  # a token back: a one-second window would still refuse
    assert throttle.admit("k", "GET /v1/customers")
    assert all(Throttle(Limits(rate_limit=100)).admit("k", "GET /v1/x") for _ in range(100))
    assert all(Throttle(Limits()).admit("k", "GET /v1/x") for _ in range(100))


# -- the record of admissions ---------------------------------------------------------------


def test_max_in_window_is_exact_on_a_known_sequence() -> None:
    times = [0.0, 0.5, 0.99, 1.0, 1.2, 1.98, 3.0]
    assert max_in_window(times, 1.0) == 4  # 0.5..1.2 (or 0.99..1.98): 1.0 - 0.0 is not < 1
    assert max_in_window(times, 0.5) == 3  # 0.99, 1.0, 1.2
    assert max_in_window(times, 0.01) == 1
    assert max_in_window(times, 10.0) == 7
    assert max_in_window([], 1.0) == 0
    shuffled = random.Random(7)
    for _ in range(50):
        sample = sorted(shuffled.uniform(0, 5) for _ in range(40))
        brute = max(sum(1 for t in sample if start <= t < start + 1.0) for start in sample)
        assert max_in_window(sample, 1.0) == brute


def test_admissions_filter_by_endpoint_and_key_and_count_refusals() -> None:
    record = Admissions()
    for moment in (0.0, 0.3, 0.6, 2.0):
        record.record("sk_a", "GET /v1/customers", moment, True)
    for moment in (0.1, 0.2):
        record.record("sk_b", "GET /v1/customers", moment, True)
    record.record("sk_a", "GET /v1/customers/{id}", 0.4, True)
    record.record("sk_a", "GET /v1/customers", 0.7, False)
    record.record("sk_b", "GET /v1/events", 0.7, False)
    assert record.max_in_window() == 6  # 0.0 .. 0.6, every key and endpoint
    assert record.max_in_window("GET /v1/customers") == 5
    assert record.max_in_window("GET /v1/customers", key="sk_a") == 3
    assert record.max_in_window("GET /v1/customers/cus_1") == 1  # named by any id
    assert record.max_in_window("GET /v1/customers", seconds=0.25, key="sk_a") == 1
    assert record.max_in_window("GET /v1/events") == 0
    assert record.count_admitted() == 7
    assert record.count_refused() == 2
    assert record.count_refused("GET /v1/customers") == 1
    assert record.count_refused(key="sk_b") == 1
    assert record.endpoints() == ["GET /v1/customers", "GET /v1/customers/{id}", "GET /v1/events"]
    with pytest.raises(ValueError):
        record.max_in_window(seconds=0)
    record.clear()
    assert (record.max_in_window(), record.count_refused(), record.endpoints()) == (0, 0, [])


def test_admissions_keep_memory_bounded() -> None:
    record = Admissions(max_times=100)
    for number in range(1000):
        record.record("k", "GET /v1/customers", float(number), True)
    assert 90 <= record.count_admitted() <= 100
    assert record.dropped == 1000 - record.count_admitted()
    assert record.times()[-1] == 999.0


# -- over HTTP ------------------------------------------------------------------------------


def test_an_endpoint_limit_refuses_that_endpoint_only(emulator: StripeEmulator) -> None:
    api = Api(emulator.url)
    customer = api.create_customer({"name": "Ada"})
    emulator.set_limits(endpoint_rate_limit=5, rate_limit=100, strict_window=True)
    statuses = [api.get("/v1/customers").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    refused = api.get("/v1/customers")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == RATE_LIMIT_CODE
    assert refused.json()["error"]["type"] == "invalid_request_error"
    assert api.get(f"/v1/customers/{customer['id']}").status_code == 200  # another endpoint
    assert api.get("/v1/events").status_code == 200
    assert Api(emulator.url, "sk_test_other").get("/v1/customers").status_code == 200
    assert emulator.count_rate_limited() == 2
    assert emulator.count_rate_limited("GET /v1/customers") == 2
    assert emulator.count_rate_limited("GET /v1/customers/{id}") == 0
    assert emulator.count(status=429) == 2
    assert emulator.max_in_window("GET /v1/customers") == 6  # 5 + the other key's
    assert emulator.max_in_window("GET /v1/customers", key="sk_test_fidelity") == 5


def test_requests_with_different_ids_share_one_endpoint(emulator: StripeEmulator) -> None:
    api = Api(emulator.url)
    ids = [api.create_customer({"name": f"c{n}"})["id"] for n in range(4)]
    emulator.set_limits(endpoint_rate_limit=3, strict_window=True)
    retrieved = [api.get(f"/v1/customers/{customer}").status_code for customer in ids]
    assert retrieved == [200, 200, 200, 429]
    assert api.get("/v1/customers/cus_unknown").status_code == 429  # not even looked up
    assert api.post(f"/v1/customers/{ids[3]}", {"name": "x"}).status_code == 200  # update
    assert api.delete(f"/v1/customers/{ids[3]}").status_code == 200
    assert emulator.customers[ids[3]]["deleted"] is True
    assert emulator.count_rate_limited("GET /v1/customers/{id}") == 2


def test_overrides_apply_with_and_without_a_default(emulator: StripeEmulator) -> None:
    """The emulator has no Search API: admitted searches fail otherwise, refused ones are 429s."""
    api = Api(emulator.url)
    emulator.set_limits(endpoint_rate_limits={"GET /v1/customers/search": 2}, strict_window=True)
    searches = [api.get("/v1/customers/search", {"query": "x"}).status_code for _ in range(3)]
    assert [status == 429 for status in searches] == [False, False, True]
    assert [api.get("/v1/customers").status_code for _ in range(10)] == [200] * 10  # no default
    emulator.set_limits(
        endpoint_rate_limit=4,
        endpoint_rate_limits={"GET /v1/customers/search": 2},
        strict_window=True,
    )
    searches = [api.get("/v1/customers/search").status_code == 429 for _ in range(3)]
    lists = [api.get("/v1/customers").status_code for _ in range(5)]
    assert (searches, lists) == ([False, False, True], [200] * 4 + [429])


def test_a_strict_window_holds_the_limit_for_a_whole_second(emulator: StripeEmulator) -> None:
    """25 at once pass, the 26th is refused, and still is half a second later (a token bucket
    would have 12 tokens back by then); once the first has left the window, one passes."""
    emulator.set_limits(rate_limit=25, strict_window=True)
    api = Api(emulator.url)
    paths = ["/v1/customers", "/v1/events", "/v1/account"]
    first = api.get("/v1/customers")
    first_answered = time.monotonic()
    statuses = [first.status_code] + [api.get(paths[n % 3]).status_code for n in range(24)]
    assert statuses == [200] * 25
    assert api.get("/v1/events").status_code == 429
    time.sleep(max(0.0, first_answered + 0.5 - time.monotonic()))
    assert api.get("/v1/customers").status_code == 429
    time.sleep(max(0.0, first_answered + 1.02 - time.monotonic()))
    assert api.get("/v1/customers").status_code == 200
    assert emulator.max_in_window() == 25
    assert emulator.count_rate_limited() == 2


def test_a_client_going_flat_out_never_exceeds_a_strict_window(emulator: StripeEmulator) -> None:
    """Four threads for ~1.2 s against 5/s per endpoint: never more than 5 in any second."""
    emulator.set_limits(rate_limit=50, endpoint_rate_limit=5, strict_window=True)
    stop = time.monotonic() + 1.2

    def client() -> None:
        api = Api(emulator.url)
        while time.monotonic() < stop:
            api.get("/v1/customers")
        api.close()

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert emulator.max_in_window("GET /v1/customers") == 5
    assert emulator.max_in_window("GET /v1/customers", seconds=2.0) <= 10
    assert emulator.count(status=200) == emulator.count("GET", "/v1/customers") - (
        emulator.count_rate_limited()
    )
    assert emulator.count_rate_limited() == emulator.count(status=429) > 0


def test_the_default_token_bucket_lets_tokens_back_within_the_second(
    emulator: StripeEmulator,
) -> None:
    """The defaults are as before: a token bucket, and no per-endpoint limit."""
    emulator.set_limits(rate_limit=4, rate_limit_burst=1)
    api = Api(emulator.url)
    assert [api.get("/v1/customers").status_code for _ in range(2)] == [200, 429]
    time.sleep(0.3)
    assert api.get("/v1/customers").status_code == 200  # a strict window: 429 until 1 s
    emulator.set_limits(rate_limit=100)
    assert [api.get("/v1/customers").status_code for _ in range(40)] == [200] * 40


def test_set_limits_keeps_the_record_and_reset_restores_and_clears() -> None:
    built = Limits(endpoint_rate_limit=2, strict_window=True)
    with StripeEmulator(endpoint_rate_limit=2, strict_window=True) as emulator:
        assert emulator.limits == built
        api = Api(emulator.url)
        assert [api.get("/v1/events").status_code for _ in range(3)] == [200, 200, 429]
        emulator.set_limits()
        assert emulator.limits == Limits()
        assert [api.get("/v1/events").status_code for _ in range(3)] == [200] * 3
        assert emulator.max_in_window("GET /v1/events") == 5
        assert emulator.count_rate_limited() == 1
        emulator.reset()
        assert emulator.limits == built
        assert (emulator.max_in_window(), emulator.count_rate_limited()) == (0, 0)
        assert [api.get("/v1/events").status_code for _ in range(3)] == [200, 200, 429]


@pytest.mark.stripe_emulator(
    endpoint_rate_limit=2, endpoint_rate_limits={"GET /v1/events": 1}, strict_window=True
)
def test_the_marker_passes_the_endpoint_limits(stripe_emulator: StripeEmulator) -> None:
    assert stripe_emulator.limits == Limits(
        endpoint_rate_limit=2, endpoint_rate_limits={"GET /v1/events": 1}, strict_window=True
    )
    api = Api(stripe_emulator.url)
    assert [api.get("/v1/customers").status_code for _ in range(3)] == [200, 200, 429]
    assert [api.get("/v1/events").status_code for _ in range(2)] == [200, 429]


# -- the CLI --------------------------------------------------------------------------------


def test_the_cli_parses_and_describes_endpoint_limits() -> None:
    parser = build_parser()
    args = parser.parse_args(
        [
            "--rate-limit",
            "100",
            "--endpoint-rate-limit",
            "25",
            "--endpoint-limit",
            "GET /v1/customers/search=20",
            "--strict-window",
        ]
    )
    assert (args.endpoint_rate_limit, args.strict_window) == (25.0, True)
    assert args.endpoint_limit == [("GET /v1/customers/search", 20.0)]
    described = _describe(
        Limits(
            rate_limit=100,
            endpoint_rate_limit=25,
            endpoint_rate_limits={"GET /v1/customers/search": 20},
            strict_window=True,
        )
    )
    assert described == (
        "no latency; rate limit 100/s per key; 25/s per endpoint; "
        "GET /v1/customers/search 20/s (strict 1 s windows)"
    )
    assert _describe(Limits(rate_limit=1, rate_limit_burst=2)) == (
        "no latency; rate limit 1/s per key, burst 2"
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--endpoint-limit", "GET /v1/customers"])
    assert not build_parser().parse_args([]).strict_window


def test_the_cli_applies_endpoint_limits() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "django_stripe_customers.testing",
            "--port",
            "0",
            "--endpoint-rate-limit",
            "2",
            "--endpoint-limit",
            "GET /v1/events=1",
            "--strict-window",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(3)]
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", banner[0])
        assert match is not None, banner
        assert "2/s per endpoint; GET /v1/events 1/s (strict 1 s windows)" in banner[2]
        api = Api(match.group(1))
        assert [api.get("/v1/customers").status_code for _ in range(3)] == [200, 200, 429]
        assert [api.get("/v1/events").status_code for _ in range(2)] == [200, 429]
    finally:
        process.terminate()
        process.wait(10)
