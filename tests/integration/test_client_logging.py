"""What the client logs, and that the secret key is nowhere: not in log records (message, args,
``extra`` fields, formatted tracebacks), exceptions (``str``, ``repr``, attributes, the chained
causes) or the client's ``repr``. Every logger is captured at DEBUG (requests and urllib3 too).

Tests that reach a server run against both (``stripe_backend``). Stripe sends a ``Request-Id``
on every response (README, "Responses carry Request-Id"), and so does the emulator, whose ids
the INFO lines must show; localstripe sends none (a deviation), so there the proxy adds one
(``inject_request_id``), as Stripe would. The emulator runs in this process, so its own log
records are captured and checked for the key too.
"""

from __future__ import annotations

import logging
import pickle
import re
import socket
import traceback
from collections.abc import Iterator

import pytest

from django_stripe_customers.stripe import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    InvalidRequestError,
    StripeClient,
    StripeError,
)
from tests.support.faultproxy import STALL, STATUS, FaultProxy
from tests.support.stripe_servers import EMULATOR_ONLY, StripeBackend, make_client

MARKER = "DONOTLEAK"
TAIL = "q7Zx81LmPw3RtY5uVb0n"  # 20 random characters
SECRET = f"{MARKER}_{TAIL}"
KEY = f"sk_test_{SECRET}"
#: A leak of any part of the key worth hiding (a prefix-truncated or tail-only copy) is caught.
FRAGMENTS = (MARKER, TAIL[:12], TAIL[-12:])
LOGGER = "django_stripe_customers.stripe"
_LOG_RECORD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))


@pytest.fixture
def capture(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # root: requests, urllib3, everything
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    return caplog


@pytest.fixture
def proxy(stripe_backend: StripeBackend) -> Iterator[FaultProxy]:
    with FaultProxy(stripe_backend.url, inject_request_id=True) as proxy:
        yield proxy


def _request_ids(backend: StripeBackend, proxy: FaultProxy) -> list[str]:
    """The Request-Id of each forwarded response, in order: the emulator's own ids (Stripe
    sends one, README "Responses carry Request-Id"); on localstripe, which sends none, the
    proxy's ``req_faultproxy_<seq>``."""
    if backend.emulator is not None:
        return [r.request_id for r in backend.emulator.requests]
    return [f"req_faultproxy_{r.seq}" for r in proxy.requests if r.forwarded]


@pytest.fixture
def client(proxy: FaultProxy) -> StripeClient:
    return make_client(proxy.url, api_key=KEY)


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _assert_no_secret(text: str, where: str) -> None:
    for fragment in FRAGMENTS:
        assert fragment not in text, f"key leaked in {where}: {text}"


def _assert_no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    assert caplog.records, "nothing was logged"
    for record in caplog.records:
        texts = [record.getMessage(), repr(record.args), formatter.format(record)]
        texts += [repr(v) for k, v in vars(record).items() if k not in _LOG_RECORD_ATTRS]
        for text in texts:
            _assert_no_secret(text, f"a {record.name} log record")


def _assert_no_secret_in_error(error: BaseException) -> None:
    _assert_no_secret("".join(traceback.format_exception(error)), "the formatted traceback")
    seen: BaseException | None = error
    while seen is not None:
        for text in (str(seen), repr(seen), repr(vars(seen)), repr(seen.args)):
            _assert_no_secret(text, type(seen).__name__)
        seen = seen.__cause__ or seen.__context__


def _stripe_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == level]


def test_client_repr_hides_the_key() -> None:
    client = StripeClient(KEY, api_base="http://127.0.0.1:9")
    _assert_no_secret(repr(client), "repr(client)")
    _assert_no_secret(str(client), "str(client)")
    assert "sk_test" in repr(client)  # the kind of key is useful, the key is not


def test_success_logs_one_info_line_per_response(
    client: StripeClient,
    proxy: FaultProxy,
    stripe_backend: StripeBackend,
    capture: pytest.LogCaptureFixture,
) -> None:
    customer = client.customers.create({"email": "log@example.com", "metadata": {"k": "v"}})
    client.customers.retrieve(customer["id"])
    client.customers.update(customer["id"], {"name": "Logged"})
    client.customers.list(limit=3)
    client.customers.delete(customer["id"])

    infos = _stripe_records(capture, logging.INFO)
    expected = [
        ("POST", "/v1/customers", 0),
        ("GET", f"/v1/customers/{customer['id']}", 1),
        ("POST", f"/v1/customers/{customer['id']}", 2),
        ("GET", "/v1/customers", 3),
        ("DELETE", f"/v1/customers/{customer['id']}", 4),
    ]
    assert len(infos) == len(expected)
    request_ids = _request_ids(stripe_backend, proxy)
    assert len(set(request_ids)) == len(expected)
    for record, (method, path, seq) in zip(infos, expected, strict=True):
        message = record.getMessage()
        assert re.search(rf"\b{method} {re.escape(path)}\b", message), message
        assert re.search(r"\b200\b", message), message
        assert request_ids[seq] in message  # the response's Request-Id
        assert record.stripe_request_id == request_ids[seq]  # type: ignore[attr-defined]
        assert re.search(r"\d+(\.\d+)?\s*ms", message), message  # duration
        assert re.search(r"attempt 1\b", message), message
    assert not _stripe_records(capture, logging.WARNING)
    for text in (r.getMessage() for r in capture.records):
        assert "log@example.com" not in text  # parameter values are not logged
    _assert_no_secret_in_logs(capture)


def test_info_line_straight_from_the_server(
    stripe_backend: StripeBackend, capture: pytest.LogCaptureFixture
) -> None:
    """No proxy. The emulator sends a Request-Id, as Stripe does (README, "Responses carry
    Request-Id"), and the line shows it; localstripe sends none (a deviation): the line is
    still written, with ``-`` for the id."""
    make_client(stripe_backend.url, api_key=KEY).customers.list()
    [info] = _stripe_records(capture, logging.INFO)
    assert "GET /v1/customers" in info.getMessage()
    assert "200" in info.getMessage()
    if stripe_backend.emulator is not None:
        [logged] = stripe_backend.emulator.requests
        assert logged.request_id.startswith("req_")
        assert logged.request_id in info.getMessage()
        assert info.stripe_request_id == logged.request_id  # type: ignore[attr-defined]
    else:
        assert re.search(r"-> 200 - in", info.getMessage()), info.getMessage()
        assert info.stripe_request_id is None  # type: ignore[attr-defined]
    _assert_no_secret_in_logs(capture)


def test_404_and_400_are_logged_and_raised_without_the_key(
    client: StripeClient,
    proxy: FaultProxy,
    stripe_backend: StripeBackend,
    capture: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(InvalidRequestError) as not_found:
        client.customers.retrieve("cus_missing")
    with pytest.raises(InvalidRequestError) as bad_param:
        client.customers.create({"bogus": "1"})

    request_ids = _request_ids(stripe_backend, proxy)
    if stripe_backend.is_emulator:
        assert request_ids[0].startswith("req_")
    else:
        assert request_ids[0] == "req_faultproxy_0"
    assert not_found.value.http_status == 404
    assert not_found.value.request_id == request_ids[0]
    assert request_ids[0] in str(not_found.value)
    assert bad_param.value.http_status == 400
    assert bad_param.value.request_id == request_ids[1]
    infos = [r.getMessage() for r in _stripe_records(capture, logging.INFO)]
    assert len(infos) == 2
    assert "GET /v1/customers/cus_missing" in infos[0] and "404" in infos[0]
    assert "POST /v1/customers" in infos[1] and "400" in infos[1]
    assert not _stripe_records(capture, logging.WARNING)
    _assert_no_secret_in_error(not_found.value)
    _assert_no_secret_in_error(bad_param.value)
    _assert_no_secret_in_logs(capture)


def test_restricted_key_does_not_leak(
    proxy: FaultProxy, stripe_backend: StripeBackend, capture: pytest.LogCaptureFixture
) -> None:
    """Stripe accepts a restricted ``rk_`` key (README, "Auth"), and so does the emulator;
    localstripe refuses it with 401 (a deviation). Either way the key is nowhere."""
    client = make_client(proxy.url, api_key=f"rk_test_{SECRET}")
    _assert_no_secret(repr(client), "repr(client)")
    if stripe_backend.is_emulator:
        assert client.customers.list()["object"] == "list"
    else:
        with pytest.raises(AuthenticationError) as excinfo:
            client.customers.list()
        _assert_no_secret_in_error(excinfo.value)
    _assert_no_secret_in_logs(capture)


def test_401_with_a_publishable_key_does_not_leak(
    proxy: FaultProxy, capture: pytest.LogCaptureFixture
) -> None:
    """A key both servers refuse: 401, and the key is in neither the error nor the logs.
    Stripe's message quotes the key masked (the emulator keeps its first 8 and last 4
    characters, none of them a secret fragment); localstripe's does not quote it."""
    client = make_client(proxy.url, api_key=f"pk_test_{SECRET}")
    with pytest.raises(AuthenticationError) as excinfo:
        client.customers.list()
    assert excinfo.value.http_status == 401
    _assert_no_secret(repr(client), "repr(client)")
    _assert_no_secret_in_error(excinfo.value)
    _assert_no_secret_in_logs(capture)


def test_retried_503_logs_a_warning_per_retry(
    client: StripeClient, proxy: FaultProxy, capture: pytest.LogCaptureFixture
) -> None:
    proxy.enqueue(STATUS(503), STATUS(503))
    client.customers.create({"name": "eventually"})

    warnings = [r.getMessage() for r in _stripe_records(capture, logging.WARNING)]
    assert len(warnings) == 2
    for number, message in enumerate(warnings, start=1):
        assert "POST /v1/customers" in message
        assert "503" in message
        assert re.search(rf"attempt {number}\b", message), message
    infos = [r.getMessage() for r in _stripe_records(capture, logging.INFO)]
    assert len(infos) == 3  # one per response: 503, 503, 200
    assert [bool(re.search(rf"attempt {n}\b", m)) for n, m in enumerate(infos, 1)] == [True] * 3
    assert "503" in infos[0] and "200" in infos[2]
    _assert_no_secret_in_logs(capture)


def test_exhausted_503_error_does_not_leak(
    client: StripeClient, proxy: FaultProxy, capture: pytest.LogCaptureFixture
) -> None:
    proxy.enqueue(STATUS(503), STATUS(503), STATUS(503))
    with pytest.raises(APIError) as excinfo:
        client.customers.create({"name": "never"})
    assert len(_stripe_records(capture, logging.WARNING)) == 2  # the last failure is raised
    _assert_no_secret_in_error(excinfo.value)
    _assert_no_secret_in_logs(capture)


def test_connection_failure_to_closed_port(capture: pytest.LogCaptureFixture) -> None:
    client = make_client(_closed_port_url(), api_key=KEY, max_retries=1)
    with pytest.raises(APIConnectionError) as excinfo:
        client.customers.create({"name": "nowhere"})
    assert excinfo.value.http_status is None
    [warning] = [r.getMessage() for r in _stripe_records(capture, logging.WARNING)]
    assert "POST /v1/customers" in warning and re.search(r"attempt 1\b", warning)
    assert not _stripe_records(capture, logging.INFO)  # no response, no INFO line
    _assert_no_secret_in_error(excinfo.value)
    _assert_no_secret_in_logs(capture)


@EMULATOR_ONLY  # nothing reaches the server: the client alone is tested
def test_timeout(proxy: FaultProxy, capture: pytest.LogCaptureFixture) -> None:
    client = make_client(proxy.url, api_key=KEY, timeout=0.3, max_retries=1)
    proxy.enqueue(STALL(2), STALL(2))
    with pytest.raises(APITimeoutError) as excinfo:
        client.customers.retrieve("cus_slow")
    assert len(_stripe_records(capture, logging.WARNING)) == 1
    _assert_no_secret_in_error(excinfo.value)
    _assert_no_secret_in_logs(capture)


def test_query_string_values_are_not_logged(
    client: StripeClient, stripe_backend: StripeBackend, capture: pytest.LogCaptureFixture
) -> None:
    """A cursor naming no customer: the emulator answers as Stripe does, 400
    ``resource_missing`` with ``param="starting_after"`` (not spelled out in
    /work/shared/stripe); localstripe ignores it and returns a page (a deviation). Either way
    the value is not logged."""
    if stripe_backend.is_emulator:
        with pytest.raises(InvalidRequestError) as excinfo:
            client.customers.list({"starting_after": "cus_PRIVATEVALUE"}, limit=2)
        assert excinfo.value.http_status == 400
        assert excinfo.value.param == "starting_after"
    else:
        client.customers.list({"starting_after": "cus_PRIVATEVALUE"}, limit=2)
    assert _stripe_records(capture, logging.INFO)
    for record in capture.records:
        if record.name == LOGGER:
            assert "cus_PRIVATEVALUE" not in record.getMessage()


def test_errors_pickle_without_the_key(client: StripeClient) -> None:
    with pytest.raises(StripeError) as excinfo:
        client.customers.retrieve("cus_missing")
    restored = pickle.loads(pickle.dumps(excinfo.value))
    assert type(restored) is type(excinfo.value)
    assert restored.http_status == 404
    _assert_no_secret(repr(pickle.dumps(excinfo.value)), "the pickled error")
