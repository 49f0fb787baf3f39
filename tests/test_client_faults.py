"""Retries for real: the client talks to localstripe through the fault-injecting proxy.

Each test scripts faults on the next requests and checks, from the proxy's record, how many
tries were made, that a POST/DELETE kept the SAME Idempotency-Key on every try, and what reached
the server. localstripe ignores Idempotency-Key (see ``test_dropped_create_response_...``).
"""

from __future__ import annotations

import itertools
import logging
import re
import time

import pytest

from django_stripe_customers.stripe import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    RateLimitError,
    StripeClient,
    StripeError,
)
from tests.conftest import LocalStripeServer, make_client
from tests.faultproxy import (
    CONFLICT,
    DROP_RESPONSE,
    RATE_LIMIT,
    REFUSE,
    RESET,
    STALL,
    STATUS,
    Fault,
    FaultKind,
    FaultProxy,
    RecordedRequest,
)

pytestmark = pytest.mark.localstripe


def _one_key(tries: list[RecordedRequest]) -> str:
    keys = {r.idempotency_key for r in tries}
    assert len(keys) == 1, f"Idempotency-Key changed between tries: {keys}"
    [key] = keys
    assert key
    return key


@pytest.mark.parametrize(
    "fault",
    [RESET(), REFUSE(), STATUS(500), STATUS(502), STATUS(503), CONFLICT()],
    ids=["reset", "refuse", "500", "502", "503", "409-lock_timeout"],
)
def test_create_retried_after_transient_failure(
    fault: Fault,
    proxied_client: StripeClient,
    fault_proxy: FaultProxy,
    localstripe: LocalStripeServer,
) -> None:
    fault_proxy.enqueue(fault)
    customer = proxied_client.customers.create({"email": "retry@example.com"})

    first, second = fault_proxy.requests
    assert first.fault is fault.kind and not first.forwarded
    assert second.fault is None and second.forwarded
    _one_key([first, second])
    assert localstripe.customer_ids() == [customer["id"]]  # exactly one created


def test_given_idempotency_key_kept_across_retries(
    proxied_client: StripeClient, fault_proxy: FaultProxy
) -> None:
    fault_proxy.enqueue(RESET(), STATUS(503))
    proxied_client.customers.create({"name": "k"}, idempotency_key="push-customer-7-v3")
    assert [r.idempotency_key for r in fault_proxy.requests] == ["push-customer-7-v3"] * 3


def test_update_and_delete_retried_with_same_key(
    proxied_client: StripeClient, fault_proxy: FaultProxy, localstripe: LocalStripeServer
) -> None:
    customer = proxied_client.customers.create({"name": "before"})
    fault_proxy.clear()

    fault_proxy.enqueue(STATUS(500, method="POST"), RESET(method="DELETE"))
    assert proxied_client.customers.update(customer["id"], {"name": "after"})["name"] == "after"
    assert proxied_client.customers.delete(customer["id"])["deleted"] is True

    update_tries, delete_tries = fault_proxy.requests[:2], fault_proxy.requests[2:]
    assert [r.method for r in update_tries] == ["POST", "POST"]
    assert [r.method for r in delete_tries] == ["DELETE", "DELETE"]
    assert _one_key(update_tries) != _one_key(delete_tries)
    assert localstripe.customer_ids() == []


def test_get_retried_on_5xx_and_connection_errors(
    proxied_client: StripeClient, fault_proxy: FaultProxy
) -> None:
    customer = proxied_client.customers.create({"name": "g"})
    fault_proxy.clear()
    fault_proxy.enqueue(STATUS(503), RESET())
    assert proxied_client.customers.retrieve(customer["id"])["name"] == "g"
    tries = fault_proxy.requests
    assert [r.method for r in tries] == ["GET"] * 3
    assert all(r.idempotency_key is None for r in tries)
    assert [r.fault for r in tries] == [FaultKind.STATUS, FaultKind.RESET, None]


def test_list_all_page_retried(proxied_client: StripeClient, fault_proxy: FaultProxy) -> None:
    for i in range(5):
        proxied_client.customers.create({"name": f"p{i}"})
    fault_proxy.clear()
    fault_proxy.enqueue(STATUS(500, method="GET"))
    assert len(list(proxied_client.customers.list_all(limit=2))) == 5
    pages = fault_proxy.requests
    assert len(pages) == 4  # 3 pages, the first tried twice
    assert pages[0].query == pages[1].query


def test_rate_limit_honours_retry_after(
    proxied_client: StripeClient, fault_proxy: FaultProxy
) -> None:
    fault_proxy.enqueue(RATE_LIMIT(retry_after=1))
    started = time.monotonic()
    proxied_client.customers.create({"name": "patient"})
    elapsed = time.monotonic() - started

    first, second = fault_proxy.requests
    assert first.response_status == 429
    assert second.received_at - first.received_at >= 0.95
    assert elapsed < 2.5  # waited Retry-After, not much more
    _one_key([first, second])


def test_retry_after_beyond_the_cap_is_not_waited(fault_proxy: FaultProxy) -> None:
    client = make_client(fault_proxy.url, max_retry_after=0.5)
    fault_proxy.enqueue(RATE_LIMIT(retry_after=30))
    started = time.monotonic()
    client.customers.create({"name": "impatient"})
    assert time.monotonic() - started < 1.5  # own backoff (<= 0.05 s), not 30 s
    assert len(fault_proxy.requests) == 2


def test_stall_past_timeout_then_retry_succeeds(
    fault_proxy: FaultProxy, localstripe: LocalStripeServer
) -> None:
    client = make_client(fault_proxy.url, timeout=0.5)
    fault_proxy.enqueue(STALL(2))
    started = time.monotonic()
    customer = client.customers.create({"name": "slow"})
    elapsed = time.monotonic() - started

    assert 0.45 <= elapsed < 1.9  # gave up on the stall at the timeout, not after it
    first, second = fault_proxy.requests
    assert first.fault is FaultKind.STALL and second.forwarded
    _one_key([first, second])
    assert localstripe.customer_ids() == [customer["id"]]


def test_dropped_create_response_is_retried_with_the_same_key(
    proxied_client: StripeClient, fault_proxy: FaultProxy, localstripe: LocalStripeServer
) -> None:
    """The server committed the create, the answer was lost, the client retried.

    What the client must do, asserted here: retry, with the SAME Idempotency-Key, and return
    success. Against Stripe that key makes the retry return the first customer. localstripe
    ignores Idempotency-Key, so here the retry creates a SECOND customer upstream; the
    end-to-end "exactly one customer" check runs against the emulator, which honours the key.
    """
    fault_proxy.enqueue(DROP_RESPONSE())
    customer = proxied_client.customers.create({"email": "once@example.com"})

    first, second = fault_proxy.requests
    assert first.fault is FaultKind.DROP_RESPONSE
    assert first.forwarded and first.upstream_status == 200  # committed upstream
    assert first.response_status is None  # ...but the client never got the answer
    assert second.forwarded and second.response_status == 200
    assert first.form == second.form
    _one_key([first, second])
    assert customer["email"] == "once@example.com"
    assert customer["id"] in localstripe.customer_ids()


def test_retries_exhausted_raise_the_last_error(
    proxied_client: StripeClient,
    fault_proxy: FaultProxy,
    localstripe: LocalStripeServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fault_proxy.enqueue(STATUS(503), STATUS(500), STATUS(502))
    with (
        caplog.at_level(logging.INFO, logger="django_stripe_customers.stripe"),
        pytest.raises(APIError) as excinfo,
    ):
        proxied_client.customers.create({"name": "never"})
    # The error has no attempt counter; the log shows the tries (one line per response).
    responses = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert [bool(re.search(rf"attempt {n}\b", m)) for n, m in enumerate(responses, 1)] == [True] * 3
    assert excinfo.value.http_status == 502  # the last try's error
    assert excinfo.value.type == "api_error"
    assert excinfo.value.request_id == "req_faultproxy_2"
    assert excinfo.value.is_transient is True
    assert len(fault_proxy.requests) == 3  # max_retries=2: three tries
    _one_key(fault_proxy.requests)
    assert localstripe.customer_ids() == []


def test_exhausted_mixed_failures_raise_the_last_ones_class(
    proxied_client: StripeClient, fault_proxy: FaultProxy
) -> None:
    fault_proxy.enqueue(RESET(), STATUS(500), RATE_LIMIT(retry_after=None))
    with pytest.raises(RateLimitError) as excinfo:
        proxied_client.customers.create({"name": "never"})
    assert excinfo.value.http_status == 429
    assert excinfo.value.code == "rate_limit"
    assert len(fault_proxy.requests) == 3


def test_exhausted_conflicts_raise_conflict_error(
    proxied_client: StripeClient, fault_proxy: FaultProxy
) -> None:
    fault_proxy.enqueue(CONFLICT(), CONFLICT(), CONFLICT())
    with pytest.raises(ConflictError) as excinfo:
        proxied_client.customers.update("cus_x", {"name": "x"})
    assert excinfo.value.http_status == 409
    assert excinfo.value.code == "lock_timeout"
    assert len(fault_proxy.requests) == 3


def test_exhausted_connection_errors_say_how_many_tries(
    proxied_client: StripeClient, fault_proxy: FaultProxy, localstripe: LocalStripeServer
) -> None:
    fault_proxy.enqueue(RESET(), REFUSE(), RESET())
    with pytest.raises(APIConnectionError) as excinfo:
        proxied_client.customers.create({"name": "never"})
    assert not isinstance(excinfo.value, APITimeoutError)
    assert excinfo.value.http_status is None
    assert excinfo.value.is_transient is True
    assert "3 attempts" in str(excinfo.value)
    assert not any(r.forwarded for r in fault_proxy.requests)
    assert localstripe.customer_ids() == []


def test_exhausted_timeouts_raise_timeout_error(fault_proxy: FaultProxy) -> None:
    client = make_client(fault_proxy.url, timeout=0.3, max_retries=1)
    fault_proxy.enqueue(STALL(2), STALL(2))
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as excinfo:
        client.customers.retrieve("cus_slow")
    assert time.monotonic() - started < 1.5
    assert "2 attempts" in str(excinfo.value)
    assert len(fault_proxy.requests) == 2


def test_max_retries_zero_tries_once(fault_proxy: FaultProxy) -> None:
    client = make_client(fault_proxy.url, max_retries=0)
    fault_proxy.enqueue(STATUS(503))
    with pytest.raises(APIError):
        client.customers.list()
    assert len(fault_proxy.requests) == 1


def test_stripe_should_retry_false_stops_retries(
    proxied_client: StripeClient, fault_proxy: FaultProxy
) -> None:
    fault_proxy.enqueue(STATUS(503, headers={"Stripe-Should-Retry": "false"}))
    with pytest.raises(APIError) as excinfo:
        proxied_client.customers.create({"name": "no"})
    assert excinfo.value.http_status == 503
    assert len(fault_proxy.requests) == 1


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(400, InvalidRequestError), (401, AuthenticationError), (404, InvalidRequestError)],
)
def test_injected_4xx_not_retried(
    status: int,
    error_class: type[StripeError],
    proxied_client: StripeClient,
    fault_proxy: FaultProxy,
) -> None:
    fault_proxy.enqueue(STATUS(status))
    with pytest.raises(error_class) as excinfo:
        proxied_client.customers.create({"name": "no"})
    assert excinfo.value.http_status == status
    assert excinfo.value.is_transient is False
    assert len(fault_proxy.requests) == 1


def test_transient_then_permanent_stops_at_permanent(
    proxied_client: StripeClient, fault_proxy: FaultProxy
) -> None:
    fault_proxy.enqueue(STATUS(503), STATUS(400))
    with pytest.raises(InvalidRequestError):
        proxied_client.customers.create({"name": "no"})
    assert len(fault_proxy.requests) == 2


def test_real_404_not_retried(proxied_client: StripeClient, fault_proxy: FaultProxy) -> None:
    with pytest.raises(InvalidRequestError) as excinfo:
        proxied_client.customers.retrieve("cus_missing")
    assert excinfo.value.http_status == 404
    [only] = fault_proxy.requests
    assert only.forwarded and only.upstream_status == 404


def test_real_400_not_retried(proxied_client: StripeClient, fault_proxy: FaultProxy) -> None:
    with pytest.raises(InvalidRequestError) as excinfo:
        proxied_client.customers.create({"unknown_param": "x"})
    assert excinfo.value.http_status == 400
    [only] = fault_proxy.requests
    assert only.upstream_status == 400


def test_real_401_not_retried(fault_proxy: FaultProxy) -> None:
    client = make_client(fault_proxy.url, api_key="pk_test_wrong_kind")
    with pytest.raises(AuthenticationError) as excinfo:
        client.customers.list()
    assert excinfo.value.http_status == 401
    [only] = fault_proxy.requests
    assert only.upstream_status == 401


def test_backoff_grows_and_stays_capped(fault_proxy: FaultProxy) -> None:
    client = make_client(
        fault_proxy.url, max_retries=3, initial_retry_delay=0.1, max_retry_delay=0.15
    )
    fault_proxy.enqueue(STATUS(500), STATUS(500), STATUS(500))
    client.customers.list()
    times = [r.received_at for r in fault_proxy.requests]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # initial*2**n with jitter in [0.75, 1], capped: ~[0.075-0.1], [0.1125-0.15], [0.1125-0.15]
    assert len(gaps) == 3
    assert 0.07 <= gaps[0] < 0.6
    assert all(0.11 <= gap < 0.65 for gap in gaps[1:])
