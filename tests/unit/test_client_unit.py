"""``StripeClient`` without a network: validation, secrecy of the key, and the request loop
driven through a fake ``requests`` transport adapter."""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from django.core.exceptions import ImproperlyConfigured
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from django_stripe_customers import __version__, schema
from django_stripe_customers.clients import clear_client_cache, get_client
from django_stripe_customers.stripe import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    InvalidRequestError,
    RateLimitError,
    StripeClient,
)

KEY = "sk_test_DONOTLEAK1234567890"
SECRET_PART = "DONOTLEAK"


class FakeTransport(BaseAdapter):
    """Answers each request with the next scripted reply: (status, body, headers) or an error."""

    def __init__(self, *replies):
        super().__init__()
        self.replies = list(replies)
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request, **kwargs):
        self.sent.append(request)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        status, body, headers = reply
        response = requests.Response()
        response.status_code = status
        response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response.headers = CaseInsensitiveDict(headers)
        response.request = request
        response.url = request.url
        return response

    def close(self):
        pass


def make_client(*replies, **options):
    options = {"initial_retry_delay": 0.001, "max_retry_delay": 0.002, **options}
    client = StripeClient(KEY, **options)
    transport = FakeTransport(*replies)
    client._session().mount("https://", transport)
    return client, transport


def ok(body=None, request_id="req_ok"):
    return (200, body if body is not None else {"id": "cus_1", "object": "customer"},
            {"Request-Id": request_id})  # fmt: skip


def fail(status, error_type="api_error", headers=None, **fields):
    return (status, {"error": {"type": error_type, **fields}}, headers or {})


def query(request):
    return parse_qsl(urlsplit(request.url).query, keep_blank_values=True)


def form(request):
    return parse_qsl(request.body or "", keep_blank_values=True)


# Constructor validation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"api_key": ""}, "api_key"),
        ({"api_key": "   "}, "api_key"),
        ({"api_base": "ftp://api.stripe.com"}, "api_base"),
        ({"api_base": "api.stripe.com"}, "api_base"),
        ({"api_base": "https://"}, "api_base"),
        ({"api_version": ""}, "api_version"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1.0}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"stripe_account": ""}, "stripe_account"),
        ({"initial_retry_delay": -0.1}, "retry"),
        ({"initial_retry_delay": 2.0, "max_retry_delay": 1.0}, "retry"),
        ({"max_retry_after": -1}, "retry"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs, message):
    kwargs = {"api_key": KEY, **kwargs}
    with pytest.raises(ValueError, match=message):
        StripeClient(**kwargs)


@pytest.mark.parametrize("bad_key", [f"{KEY}\n", f" {KEY}", f"{KEY} x", f"{KEY}\x00"])
def test_key_with_whitespace_is_refused_without_echoing_it(bad_key):
    with pytest.raises(ValueError) as caught:
        StripeClient(bad_key)
    assert SECRET_PART not in str(caught.value)


def test_defaults():
    client = StripeClient(KEY)
    assert client.api_base == "https://api.stripe.com"
    assert client.api_version == schema.API_VERSION
    assert client.max_retries == 2
    assert client.timeout == 30.0


def test_api_base_trailing_slash_is_dropped():
    assert StripeClient(KEY, api_base="http://127.0.0.1:8420/").api_base == "http://127.0.0.1:8420"


# The key stays secret


def test_repr_shows_only_the_kind_of_key():
    client = StripeClient(KEY, stripe_account="acct_1")
    for text in (repr(client), str(client), repr(client._auth), repr(vars(client))):
        assert SECRET_PART not in text
    assert "api_key='sk_test_…'" in repr(client)
    assert "https://api.stripe.com" in repr(client)
    assert schema.API_VERSION in repr(client)
    assert "acct_1" in repr(client)


@pytest.mark.parametrize(
    ("key", "shown"),
    [("rk_live_abcdef123", "'rk_live_…'"), ("sk_abcdef", "'…'"), ("whatever", "'…'")],
)
def test_repr_never_shows_more_than_the_prefix(key, shown):
    assert f"api_key={shown}" in repr(StripeClient(key))


def test_key_is_in_no_log_line_or_error(caplog):
    client, _ = make_client(fail(503), fail(503), fail(400, "invalid_request_error", message="m"))
    with caplog.at_level(logging.DEBUG, logger="django_stripe_customers.stripe"):
        with pytest.raises(InvalidRequestError) as caught:
            client.customers.create({"email": "ada@example.com"})
    logged = [record.getMessage() + repr(vars(record)) for record in caplog.records]
    assert len(caplog.records) >= 3
    for text in [*logged, str(caught.value), repr(caught.value)]:
        assert SECRET_PART not in text
        assert "ada@example.com" not in text


# Headers and encoding


def test_headers_on_every_request():
    client, transport = make_client(ok(), stripe_account="acct_123")
    client.customers.retrieve("cus_1")
    headers = transport.sent[0].headers
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["Stripe-Version"] == schema.API_VERSION
    assert headers["Stripe-Account"] == "acct_123"
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"] == (
        f"django-stripe-customers/{__version__} python-requests/{requests.__version__}"
    )


def test_no_stripe_account_header_by_default():
    client, transport = make_client(ok())
    client.customers.retrieve("cus_1")
    assert "Stripe-Account" not in transport.sent[0].headers


def test_post_is_form_encoded():
    client, transport = make_client(ok())
    client.customers.create({"metadata": {"order": 1}, "description": ""}, expand=["tax"])
    request = transport.sent[0]
    assert request.method == "POST"
    assert request.url == "https://api.stripe.com/v1/customers"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form(request) == [("metadata[order]", "1"), ("description", ""), ("expand[0]", "tax")]


def test_get_params_go_in_the_query_string():
    client, transport = make_client(ok({"object": "list", "data": [], "has_more": False}))
    client.customers.list({"created": {"gte": 1700000000}, "email": "a@b.c"}, limit=3,
                          expand=["data.tax"])  # fmt: skip
    request = transport.sent[0]
    assert request.method == "GET"
    assert request.body is None
    assert query(request) == [
        ("created[gte]", "1700000000"),
        ("email", "a@b.c"),
        ("limit", "3"),
        ("expand[0]", "data.tax"),
    ]


def test_expand_adds_to_expand_in_params():
    client, transport = make_client(ok())
    client.request("GET", "/v1/customers/cus_1", {"expand": ["a"]}, expand=["b"])
    assert query(transport.sent[0]) == [("expand[0]", "a"), ("expand[1]", "b")]


def test_expand_as_a_string_is_refused():
    client, transport = make_client()
    with pytest.raises(TypeError, match="expand"):
        client.customers.retrieve("cus_1", expand="tax")
    assert transport.sent == []


def test_request_validates_method_and_path():
    client, _ = make_client()
    with pytest.raises(ValueError, match="method"):
        client.request("PATCH", "/v1/customers")
    with pytest.raises(ValueError, match="path"):
        client.request("GET", "v1/customers")


# Idempotency keys


def test_post_and_delete_get_a_generated_idempotency_key_get_does_not():
    client, transport = make_client(ok(), ok(), ok())
    client.customers.create({})
    client.customers.delete("cus_1")
    client.customers.retrieve("cus_1")
    create, delete, retrieve = transport.sent
    assert len(create.headers["Idempotency-Key"]) == 36
    assert len(delete.headers["Idempotency-Key"]) == 36
    assert create.headers["Idempotency-Key"] != delete.headers["Idempotency-Key"]
    assert "Idempotency-Key" not in retrieve.headers


def test_given_idempotency_key_is_sent():
    client, transport = make_client(ok())
    client.customers.update("cus_1", {"name": "x"}, idempotency_key="k" * 255)
    assert transport.sent[0].headers["Idempotency-Key"] == "k" * 255


@pytest.mark.parametrize("bad", ["", "k" * 256, "with space", "line\nbreak", "é"])
def test_bad_idempotency_key_is_refused_before_sending(bad):
    client, transport = make_client(ok())
    with pytest.raises(ValueError, match="idempotency_key"):
        client.customers.create({"name": "x"}, idempotency_key=bad)
    assert transport.sent == []


def test_same_idempotency_key_on_every_retry():
    client, transport = make_client(fail(500), fail(409), ok())
    client.customers.create({"name": "x"})
    keys = {request.headers["Idempotency-Key"] for request in transport.sent}
    assert len(transport.sent) == 3
    assert len(keys) == 1


# Resource ids


@pytest.mark.parametrize(
    ("customer_id", "path"),
    [
        ("cus_123", "/v1/customers/cus_123"),
        ("cus/../../v1/charges", "/v1/customers/cus%2F..%2F..%2Fv1%2Fcharges"),
        ("a b?c#d", "/v1/customers/a%20b%3Fc%23d"),
    ],
)
def test_ids_are_url_quoted(customer_id, path):
    client, transport = make_client(ok(), ok(), ok())
    client.customers.retrieve(customer_id)
    client.customers.update(customer_id, {"name": "x"})
    client.customers.delete(customer_id)
    assert [urlsplit(r.url).path for r in transport.sent] == [path] * 3
    assert [r.method for r in transport.sent] == ["GET", "POST", "DELETE"]


@pytest.mark.parametrize("call", ["retrieve", "update", "delete"])
def test_empty_id_is_refused(call):
    client, transport = make_client()
    method = getattr(client.customers, call)
    with pytest.raises(ValueError, match="customer_id"):
        method("", {"name": "x"}) if call == "update" else method("")
    assert transport.sent == []


# The request loop


def test_transient_failures_are_retried_then_succeed(caplog):
    client, transport = make_client(fail(503), fail(429, "invalid_request_error"), ok())
    with caplog.at_level(logging.INFO, logger="django_stripe_customers.stripe"):
        assert client.customers.retrieve("cus_1")["id"] == "cus_1"
    assert len(transport.sent) == 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.stripe_attempt for r in warnings] == [1, 2]
    assert "retrying in" in warnings[0].getMessage()
    info = [r for r in caplog.records if r.levelno == logging.INFO]
    assert info[-1].getMessage().startswith("stripe GET /v1/customers/cus_1 -> 200 req_ok in ")
    assert info[-1].getMessage().endswith("(attempt 3/3)")
    assert (info[-1].stripe_method, info[-1].stripe_status) == ("GET", 200)
    assert info[-1].stripe_request_id == "req_ok"
    assert info[-1].stripe_duration_ms >= 0


def test_last_error_is_raised_when_retries_run_out():
    client, transport = make_client(fail(429, "invalid_request_error"), fail(429), fail(429),
                                    max_retries=2)  # fmt: skip
    with pytest.raises(RateLimitError):
        client.customers.retrieve("cus_1")
    assert len(transport.sent) == 3


def test_permanent_errors_are_not_retried():
    client, transport = make_client(
        fail(400, "invalid_request_error", {"Stripe-Should-Retry": "true"}, param="foo")
    )
    with pytest.raises(InvalidRequestError) as caught:
        client.customers.create({"foo": "x"})
    assert caught.value.param == "foo"
    assert len(transport.sent) == 1


def test_should_retry_false_header_stops_retries():
    client, transport = make_client(fail(500, headers={"Stripe-Should-Retry": "false"}))
    with pytest.raises(APIError):
        client.customers.retrieve("cus_1")
    assert len(transport.sent) == 1


def test_connection_errors_are_retried_and_reported():
    client, transport = make_client(
        requests.ConnectionError("refused"),
        requests.exceptions.ChunkedEncodingError("reset"),
        requests.ConnectionError("Max retries exceeded with url: /v1/customers?email=a%40b.c"),
    )
    with pytest.raises(APIConnectionError) as caught:
        client.customers.list({"email": "a@b.c"})
    assert len(transport.sent) == 3
    assert type(caught.value) is APIConnectionError
    message = str(caught.value)
    assert "GET /v1/customers" in message
    assert "3 attempts" in message
    assert "ConnectionError" in message
    assert "a%40b.c" not in message
    assert caught.value.http_status is None
    assert isinstance(caught.value.__cause__, requests.ConnectionError)


def test_timeouts_raise_a_timeout_error():
    client, transport = make_client(requests.ReadTimeout("slow"), max_retries=0)
    with pytest.raises(APITimeoutError, match=r"POST /v1/customers timed out after 1 attempt: "):
        client.customers.create({})
    assert len(transport.sent) == 1


def test_timeout_is_passed_as_connect_and_read():
    seen = {}

    class Recording(FakeTransport):
        def send(self, request, **kwargs):
            seen.update(kwargs)
            return super().send(request, **kwargs)

    client = StripeClient(KEY, timeout=7.5)
    client._session().mount("https://", Recording(ok()))
    client.customers.retrieve("cus_1")
    assert seen["timeout"] == (7.5, 7.5)


def test_non_json_success_is_an_api_error():
    client, _ = make_client((200, b"<html>oops</html>", {}))
    with pytest.raises(APIError, match="not JSON"):
        client.customers.retrieve("cus_1")


def test_json_success_that_is_not_an_object_is_an_api_error():
    client, _ = make_client((200, [1, 2], {}))
    with pytest.raises(APIError, match="not an object"):
        client.customers.retrieve("cus_1")


def test_close_keeps_the_client_usable():
    client, _ = make_client()
    first = client._session()
    client.close()
    assert client._session() is not first


# Paging


def page(ids, has_more):
    return ok({"object": "list", "data": [{"id": i} for i in ids], "has_more": has_more})


def test_list_all_follows_starting_after():
    client, transport = make_client(page(["c5", "c4"], True), page(["c3", "c2"], True),
                                    page(["c1"], False))  # fmt: skip
    found = client.customers.list_all({"email": "a@b.c"}, limit=2)
    assert transport.sent == []  # lazy: nothing fetched until iterated
    assert [c["id"] for c in found] == ["c5", "c4", "c3", "c2", "c1"]
    assert [dict(query(r)) for r in transport.sent] == [
        {"email": "a@b.c", "limit": "2"},
        {"email": "a@b.c", "limit": "2", "starting_after": "c4"},
        {"email": "a@b.c", "limit": "2", "starting_after": "c2"},
    ]


def test_list_all_fetches_one_page_at_a_time():
    client, transport = make_client(page(["c2"], True), page(["c1"], False))
    found = client.customers.list_all(limit=1)
    assert next(found)["id"] == "c2"
    assert len(transport.sent) == 1


def test_list_all_stops_on_an_empty_page():
    client, transport = make_client(page([], True))
    assert list(client.customers.list_all()) == []
    assert len(transport.sent) == 1


@pytest.mark.parametrize("limit", [0, 101, -1, True, 10.0])
def test_limit_is_validated(limit):
    client, transport = make_client()
    with pytest.raises(ValueError, match="limit"):
        client.customers.list_all(limit=limit)
    with pytest.raises(ValueError, match="limit"):
        client.customers.list(limit=limit)
    assert transport.sent == []


def test_list_all_refuses_ending_before():
    client, _ = make_client()
    with pytest.raises(ValueError, match="ending_before"):
        client.customers.list_all({"ending_before": "cus_1"})


# factory.get_client (settings from tests/support/settings.py; no database)


@pytest.fixture
def fresh_cache():
    clear_client_cache()
    yield
    clear_client_cache()


def test_get_client_reads_settings_and_caches(settings, fresh_cache):
    settings.STRIPE_CUSTOMERS = {"API_KEY": KEY, "API_BASE": "http://127.0.0.1:9", "TIMEOUT": 3}
    client = get_client()
    assert client is get_client()
    assert (client.api_base, client.timeout) == ("http://127.0.0.1:9", 3)
    assert get_client(stripe_account="acct_9").stripe_account == "acct_9"
    settings.STRIPE_CUSTOMERS = {"API_KEY": KEY, "API_BASE": "http://127.0.0.1:10"}
    assert get_client().api_base == "http://127.0.0.1:10"


def test_get_client_without_key_is_improperly_configured(settings, fresh_cache, monkeypatch):
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    settings.STRIPE_CUSTOMERS = {}
    with pytest.raises(ImproperlyConfigured, match="API_KEY"):
        get_client()
