"""The retry decision and the backoff delay (pure functions in ``stripe/client.py``)."""

from __future__ import annotations

import pytest

from django_stripe_customers.stripe import APIConnectionError
from django_stripe_customers.stripe.errors import error_from_response
from django_stripe_customers.stripe.retry import retry_delay, should_retry


def decide(status=None, headers=None, *, attempt=0, max_retries=2, connection_error=False):
    return should_retry(
        attempt=attempt,
        max_retries=max_retries,
        status=status,
        headers=headers or {},
        connection_error=connection_error,
    )


@pytest.mark.parametrize("status", [409, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status):
    assert decide(status) is True


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 410, 422])
def test_client_errors_are_not_retried(status):
    assert decide(status) is False


def test_connection_errors_and_timeouts_are_retried():
    assert decide(connection_error=True) is True


def test_no_response_without_connection_error_is_retried_only_on_header():
    assert decide(None) is False
    assert decide(None, {"Stripe-Should-Retry": "true"}) is True


@pytest.mark.parametrize("status", [409, 429, 500, 503])
def test_header_false_wins_over_transient_status(status):
    assert decide(status, {"Stripe-Should-Retry": "false"}) is False


def test_header_false_wins_over_connection_error():
    assert decide(None, {"Stripe-Should-Retry": "false"}, connection_error=True) is False


@pytest.mark.parametrize("status", [409, 429, 500])
def test_header_true_retries_transient_statuses(status):
    assert decide(status, {"Stripe-Should-Retry": "true"}) is True


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404])
def test_header_true_never_retries_other_client_errors(status):
    assert decide(status, {"Stripe-Should-Retry": "true"}) is False


def test_header_name_and_value_are_case_insensitive():
    assert decide(500, {"stripe-should-retry": "FALSE"}) is False
    assert decide(None, {"STRIPE-SHOULD-RETRY": " True "}) is True


def test_unknown_header_value_is_ignored():
    assert decide(503, {"Stripe-Should-Retry": "maybe"}) is True
    assert decide(400, {"Stripe-Should-Retry": "maybe"}) is False


@pytest.mark.parametrize(("attempt", "expected"), [(0, True), (1, True), (2, False), (3, False)])
def test_attempts_exhausted(attempt, expected):
    assert decide(503, attempt=attempt, max_retries=2) is expected
    assert decide(connection_error=True, attempt=attempt, max_retries=2) is expected


def test_zero_retries_never_retries():
    assert decide(503, {"Stripe-Should-Retry": "true"}, max_retries=0) is False
    assert decide(connection_error=True, max_retries=0) is False


def delay(attempt=0, headers=None, *, rand=lambda: 1.0, initial=0.5, maximum=5.0, cap=60.0):
    return retry_delay(
        attempt=attempt,
        headers=headers or {},
        initial=initial,
        maximum=maximum,
        max_retry_after=cap,
        rand=rand,
    )


def test_exponential_growth_without_jitter():
    assert [delay(n) for n in range(4)] == [0.5, 1.0, 2.0, 4.0]


def test_capped_at_maximum():
    assert delay(4) == 5.0
    assert delay(10) == 5.0
    assert delay(10_000) == 5.0


def test_jitter_bounds():
    assert delay(1, rand=lambda: 0.0) == pytest.approx(0.75)
    assert delay(1, rand=lambda: 0.5) == pytest.approx(0.875)
    assert delay(1, rand=lambda: 1.0) == pytest.approx(1.0)
    assert delay(10, rand=lambda: 0.0) == pytest.approx(3.75)


def test_default_jitter_stays_in_bounds():
    delays = [
        retry_delay(attempt=2, headers={}, initial=0.5, maximum=5.0, max_retry_after=60.0)
        for _ in range(200)
    ]
    assert all(1.5 <= d <= 2.0 for d in delays)


def test_retry_after_raises_the_delay():
    assert delay(0, {"Retry-After": "3"}) == 3.0
    assert delay(0, {"retry-after": "2.5"}) == 2.5


def test_retry_after_below_the_backoff_keeps_the_backoff():
    assert delay(3, {"Retry-After": "1"}) == 4.0


def test_retry_after_at_the_cap_is_honoured():
    assert delay(0, {"Retry-After": "60"}) == 60.0


def test_retry_after_over_the_cap_is_ignored():
    assert delay(0, {"Retry-After": "61"}) == 0.5
    assert delay(0, {"Retry-After": "3"}, cap=2.0) == 0.5


@pytest.mark.parametrize(
    "value", ["soon", "", "Wed, 21 Oct 2015 07:28:00 GMT", "nan", "inf", "-5", "0"]
)
def test_malformed_or_non_positive_retry_after_is_ignored(value):
    assert delay(1, {"Retry-After": value}) == 1.0


@pytest.mark.parametrize("status", [None, 200, 400, 402, 404, 409, 429, 500, 502, 503])
@pytest.mark.parametrize("header", [None, "true", "false"])
def test_is_transient_and_should_retry_never_disagree(status, header):
    """Reported (issue 21's review): "transient" was decided in two places that disagreed on a
    5xx with ``Stripe-Should-Retry: false`` (the client stopped, the push raised it as
    transient and the task retried it)."""
    headers = {} if header is None else {"Stripe-Should-Retry": header}
    error = (
        APIConnectionError("no answer", headers=headers)
        if status is None
        else error_from_response(status, b"{}", headers)
    )
    connection = status is None
    retried = should_retry(
        attempt=0, max_retries=1, status=status, headers=headers, connection_error=connection
    )
    assert error.is_transient is retried
