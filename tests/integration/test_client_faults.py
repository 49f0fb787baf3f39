"""Retries for real: the client talks to a local Stripe through the fault-injecting proxy.

Each test runs against both servers (``stripe_backend``: the emulator and localstripe), scripts
faults on the next requests and checks, from the proxy's record, how many tries were made, that
a POST/DELETE kept the SAME Idempotency-Key on every try, and what reached the server.

Stripe honours Idempotency-Key: a retry with the same key and parameters replays the first
answer (header ``Idempotent-Replayed: true``) instead of executing again (README, "Headers").
The emulator does so; localstripe ignores the key (a deviation), so the end-to-end "the request
took effect exactly once" tests for a response lost after the server committed run against the
emulator (``test_e2e_...``), and ``test_dropped_create_response_is_retried_with_the_same_key``
shows localstripe's duplicate.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

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
from tests.support.faultproxy import (
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
from tests.support.stripe_servers import EMULATOR_ONLY, StripeBackend, make_client

#: For tests whose faulted requests never reach the server (or only a final GET whose answer
#: does not matter): what they test is the client alone, so they run once, on the emulator.
SERVER_NOT_REACHED = EMULATOR_ONLY


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
    stripe_backend: StripeBackend,
) -> None:
    fault_proxy.enqueue(fault)
    customer = proxied_client.customers.create({"email": "retry@example.com"})

    first, second = fault_proxy.requests
    assert first.fault is fault.kind and not first.forwarded
    assert second.fault is None and second.forwarded
    _one_key([first, second])
    assert stripe_backend.customer_ids() == [customer["id"]]  # exactly one created


def test_given_idempotency_key_kept_across_retries(
    proxied_client: StripeClient, fault_proxy: FaultProxy
) -> None:
    fault_proxy.enqueue(RESET(), STATUS(503))
    proxied_client.customers.create({"name": "k"}, idempotency_key="push-customer-7-v3")
    assert [r.idempotency_key for r in fault_proxy.requests] == ["push-customer-7-v3"] * 3


def test_update_and_delete_retried_with_same_key(
    proxied_client: StripeClient, fault_proxy: FaultProxy, stripe_backend: StripeBackend
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
    assert stripe_backend.customer_ids() == []


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
    fault_proxy: FaultProxy, stripe_backend: StripeBackend
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
    assert stripe_backend.customer_ids() == [customer["id"]]


def test_dropped_create_response_is_retried_with_the_same_key(
    proxied_client: StripeClient, fault_proxy: FaultProxy, stripe_backend: StripeBackend
) -> None:
    """The server committed the create, the answer was lost, the client retried.

    What the client must do, asserted on both: retry, with the SAME Idempotency-Key, and return
    success. Against Stripe that key makes the retry return the first customer (README,
    "Headers"), and so it does on the emulator: exactly one customer (more in
    ``test_e2e_dropped_create_response_creates_exactly_one_customer``). localstripe ignores
    Idempotency-Key (a deviation), so there the retry creates a SECOND customer upstream.
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
    assert customer["id"] in stripe_backend.customer_ids()
    if stripe_backend.is_emulator:
        assert stripe_backend.customer_ids() == [customer["id"]]  # Stripe: exactly one
    else:
        assert len(stripe_backend.customer_ids()) == 2  # localstripe: a duplicate


def test_retries_exhausted_raise_the_last_error(
    proxied_client: StripeClient,
    fault_proxy: FaultProxy,
    stripe_backend: StripeBackend,
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
    assert stripe_backend.customer_ids() == []


@SERVER_NOT_REACHED
def test_exhausted_mixed_failures_raise_the_last_ones_class(
    proxied_client: StripeClient, fault_proxy: FaultProxy
) -> None:
    fault_proxy.enqueue(RESET(), STATUS(500), RATE_LIMIT(retry_after=None))
    with pytest.raises(RateLimitError) as excinfo:
        proxied_client.customers.create({"name": "never"})
    assert excinfo.value.http_status == 429
    assert excinfo.value.code == "rate_limit"
    assert len(fault_proxy.requests) == 3


@SERVER_NOT_REACHED
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
    proxied_client: StripeClient, fault_proxy: FaultProxy, stripe_backend: StripeBackend
) -> None:
    fault_proxy.enqueue(RESET(), REFUSE(), RESET())
    with pytest.raises(APIConnectionError) as excinfo:
        proxied_client.customers.create({"name": "never"})
    assert not isinstance(excinfo.value, APITimeoutError)
    assert excinfo.value.http_status is None
    assert excinfo.value.is_transient is True
    assert "3 attempts" in str(excinfo.value)
    assert not any(r.forwarded for r in fault_proxy.requests)
    assert stripe_backend.customer_ids() == []


@SERVER_NOT_REACHED
def test_exhausted_timeouts_raise_timeout_error(fault_proxy: FaultProxy) -> None:
    client = make_client(fault_proxy.url, timeout=0.3, max_retries=1)
    fault_proxy.enqueue(STALL(2), STALL(2))
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as excinfo:
        client.customers.retrieve("cus_slow")
    assert time.monotonic() - started < 1.5
    assert "2 attempts" in str(excinfo.value)
    assert len(fault_proxy.requests) == 2


@SERVER_NOT_REACHED
def test_max_retries_zero_tries_once(fault_proxy: FaultProxy) -> None:
    client = make_client(fault_proxy.url, max_retries=0)
    fault_proxy.enqueue(STATUS(503))
    with pytest.raises(APIError):
        client.customers.list()
    assert len(fault_proxy.requests) == 1


@SERVER_NOT_REACHED
def test_stripe_should_retry_false_stops_retries(
    proxied_client: StripeClient, fault_proxy: FaultProxy
) -> None:
    fault_proxy.enqueue(STATUS(503, headers={"Stripe-Should-Retry": "false"}))
    with pytest.raises(APIError) as excinfo:
        proxied_client.customers.create({"name": "no"})
    assert excinfo.value.http_status == 503
    assert len(fault_proxy.requests) == 1


@SERVER_NOT_REACHED
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


@SERVER_NOT_REACHED
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


@SERVER_NOT_REACHED
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


# -- end to end on the emulator: a lost answer, a retry, and the effect happens exactly once --


@pytest.fixture
def client_responses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[requests.Response]]:
    """Every HTTP response the client received (through ``requests``), in order.

    The proxy records what the upstream answered but not its headers, and the client does not
    expose them; this shows the headers of the answer the client actually got.
    """
    seen: list[requests.Response] = []
    send = requests.Session.send

    def recording_send(self: requests.Session, request: Any, **kwargs: Any) -> Any:
        response = send(self, request, **kwargs)
        seen.append(response)
        return response

    monkeypatch.setattr(requests.Session, "send", recording_send)
    yield seen


def _emulator(backend: StripeBackend) -> Any:
    assert backend.emulator is not None
    return backend.emulator


def _events(backend: StripeBackend, event_type: str) -> list[dict[str, Any]]:
    return [e for e in _emulator(backend).events if e["type"] == event_type]


@EMULATOR_ONLY
def test_e2e_dropped_create_response_creates_exactly_one_customer(
    proxied_client: StripeClient,
    fault_proxy: FaultProxy,
    stripe_backend: StripeBackend,
    client_responses: list[requests.Response],
) -> None:
    """The emulator commits the create, the proxy drops the answer, the client retries with
    the same key: the retry is answered from the first execution (``Idempotent-Replayed``),
    and exactly one customer exists, the one the client got back."""
    fault_proxy.enqueue(DROP_RESPONSE())
    customer = proxied_client.customers.create({"email": "once@example.com"})

    first, second = fault_proxy.requests
    assert first.fault is FaultKind.DROP_RESPONSE and first.upstream_status == 200
    assert first.response_status is None and second.response_status == 200
    key = _one_key([first, second])

    assert stripe_backend.customer_ids() == [customer["id"]]
    assert customer["email"] == "once@example.com"
    assert _emulator(stripe_backend).customers[customer["id"]]["email"] == "once@example.com"

    # Both tries reached the emulator with the key; only the first executed.
    logged = _emulator(stripe_backend).requests
    assert [(r.method, r.path, r.headers.get("Idempotency-Key")) for r in logged] == [
        ("POST", "/v1/customers", key)
    ] * 2
    [created] = _events(stripe_backend, "customer.created")
    assert created["data"]["object"]["id"] == customer["id"]
    assert created["request"] == {"id": logged[0].request_id, "idempotency_key": key}

    [answer] = client_responses  # the first answer never reached the client
    assert answer.headers["Idempotent-Replayed"] == "true"
    assert answer.headers["Original-Request"] == logged[0].request_id
    assert answer.headers["Request-Id"] == logged[1].request_id


@EMULATOR_ONLY
def test_e2e_dropped_update_response_is_applied_once(
    proxied_client: StripeClient,
    fault_proxy: FaultProxy,
    stripe_backend: StripeBackend,
    client_responses: list[requests.Response],
) -> None:
    """An update whose answer was lost is retried with the same key and applied once: one
    ``customer.updated`` event, and the retry's answer is the replayed first one."""
    customer = proxied_client.customers.create({"name": "before", "metadata": {"a": "1"}})
    fault_proxy.clear()
    client_responses.clear()

    fault_proxy.enqueue(DROP_RESPONSE(method="POST"))
    updated = proxied_client.customers.update(
        customer["id"], {"name": "after", "metadata": {"b": "2"}}
    )

    first, second = fault_proxy.requests
    assert first.fault is FaultKind.DROP_RESPONSE and first.upstream_status == 200
    assert first.form == second.form
    key = _one_key([first, second])
    assert updated["name"] == "after" and updated["metadata"] == {"a": "1", "b": "2"}
    assert _emulator(stripe_backend).customers[customer["id"]]["name"] == "after"
    [event] = _events(stripe_backend, "customer.updated")
    assert event["request"]["idempotency_key"] == key
    assert event["data"]["previous_attributes"] == {"metadata": {"a": "1"}, "name": "before"}
    [answer] = client_responses
    assert answer.headers["Idempotent-Replayed"] == "true"
    assert answer.headers["Original-Request"] == event["request"]["id"]
    assert stripe_backend.customer_ids() == [customer["id"]]


@EMULATOR_ONLY
def test_e2e_retry_replays_and_does_not_reapply_over_a_later_change(
    proxied_client: StripeClient,
    fault_proxy: FaultProxy,
    stripe_backend: StripeBackend,
    emulator_client: StripeClient,
) -> None:
    """Applied once, shown by its effect: while the client waits to retry a lost update ("A"),
    another writer sets "B". The retry replays "A"'s first answer and does not execute again, so
    "B" stays (re-executing it would silently undo "B")."""
    customer = proxied_client.customers.create({"name": "start"})
    fault_proxy.clear()

    def other_writer_then_sleep(delay: float) -> None:
        emulator_client.customers.update(customer["id"], {"name": "B"})
        time.sleep(delay)

    proxied_client.sleep = other_writer_then_sleep
    fault_proxy.enqueue(DROP_RESPONSE(method="POST"))
    answer = proxied_client.customers.update(customer["id"], {"name": "A"})

    assert answer["name"] == "A"  # the first execution's answer, replayed
    assert proxied_client.customers.retrieve(customer["id"])["name"] == "B"
    names = [e["data"]["object"]["name"] for e in _events(stripe_backend, "customer.updated")]
    assert names == ["A", "B"]
    assert len(fault_proxy.requests) == 3  # update, its retry, the retrieve


@EMULATOR_ONLY
def test_e2e_create_committed_after_the_client_timed_out_exists_once(
    fault_proxy: FaultProxy, stripe_backend: StripeBackend
) -> None:
    """A slow server: the create reaches the emulator, which stalls past the client's timeout
    (a test thread holds its store lock until the retry has been sent) and then executes. The
    client's retry carries the same key, so exactly one customer exists, the returned one."""
    emulator = _emulator(stripe_backend)
    client = make_client(fault_proxy.url, timeout=0.5)
    held, done = threading.Event(), threading.Event()

    def stall_the_emulator() -> None:
        with emulator.store.lock:
            held.set()
            deadline = time.monotonic() + 5
            while len(fault_proxy.requests) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)  # until the client gave up and sent its retry
        done.set()

    staller = threading.Thread(target=stall_the_emulator, daemon=True)
    staller.start()
    assert held.wait(5)
    started = time.monotonic()
    customer = client.customers.create({"name": "slow"})
    elapsed = time.monotonic() - started
    staller.join(5)
    assert done.is_set()

    assert 0.45 <= elapsed < 2.0  # one timeout, then the retry
    first, second = fault_proxy.requests
    assert first.fault is None and second.fault is None
    assert first.forwarded and second.forwarded
    key = _one_key([first, second])
    deadline = time.monotonic() + 5
    while first.upstream_status is None and time.monotonic() < deadline:
        time.sleep(0.01)  # the abandoned first try is answered upstream too
    assert first.upstream_status == 200 and second.upstream_status == 200

    assert stripe_backend.customer_ids() == [customer["id"]]
    [created] = _events(stripe_backend, "customer.created")
    assert created["data"]["object"]["id"] == customer["id"]
    assert created["request"]["idempotency_key"] == key
    logged = [r for r in emulator.requests if r.method == "POST"]
    assert [r.headers.get("Idempotency-Key") for r in logged] == [key, key]
