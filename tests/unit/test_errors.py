"""Mapping Stripe's error responses to the ``StripeError`` hierarchy (``stripe/errors.py``)."""

from __future__ import annotations

import json
import pickle

import pytest

from django_stripe_customers.stripe import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    CardError,
    ConflictError,
    IdempotencyError,
    InvalidRequestError,
    PermissionDeniedError,
    RateLimitError,
    StripeError,
)
from django_stripe_customers.stripe.errors import error_from_response

HEADERS = {"Request-Id": "req_123"}


def body(error_type="invalid_request_error", **fields):
    return json.dumps({"error": {"type": error_type, **fields}}).encode()


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (400, "invalid_request_error", InvalidRequestError),
        (401, "invalid_request_error", AuthenticationError),
        (402, "card_error", CardError),
        (403, "invalid_request_error", PermissionDeniedError),
        (404, "invalid_request_error", InvalidRequestError),
        (409, "invalid_request_error", ConflictError),
        (410, "invalid_request_error", InvalidRequestError),
        (429, "invalid_request_error", RateLimitError),
        (500, "api_error", APIError),
        (503, "api_error", APIError),
        (302, "api_error", APIError),
        (400, "idempotency_error", IdempotencyError),
        (409, "idempotency_error", IdempotencyError),
    ],
)
def test_status_and_type_map_to_class(status, error_type, expected):
    error = error_from_response(status, body(error_type, message="m"), HEADERS)
    assert type(error) is expected
    assert isinstance(error, StripeError)
    assert error.http_status == status
    assert error.type == error_type


def test_attributes_carry_stripe_error_object():
    payload = body(
        code="parameter_unknown",
        message="Received unknown parameter: foo",
        param="foo",
        doc_url="https://stripe.com/docs/error-codes/parameter-unknown",
    )
    error = error_from_response(400, payload, {"Request-Id": "req_123", "X-Other": "1"})
    assert error.message == "Received unknown parameter: foo"
    assert error.code == "parameter_unknown"
    assert error.param == "foo"
    assert error.request_id == "req_123"
    assert error.doc_url == "https://stripe.com/docs/error-codes/parameter-unknown"
    assert error.json_body == json.loads(payload)
    assert error.headers == {"Request-Id": "req_123", "X-Other": "1"}


@pytest.mark.parametrize("payload", [body(message="m"), body(message="m").decode()])
def test_body_as_bytes_or_str(payload):
    assert error_from_response(404, payload, HEADERS).message == "m"


def test_body_as_dict():
    error = error_from_response(402, {"error": {"type": "card_error", "code": "x"}}, {})
    assert isinstance(error, CardError)
    assert error.code == "x"


def test_request_id_header_is_case_insensitive():
    assert error_from_response(400, body(), {"request-id": "req_lower"}).request_id == "req_lower"
    assert error_from_response(400, body(), {}).request_id is None


def test_non_json_body_is_an_api_error():
    html = "<html>" + "x" * 500 + "</html>"
    error = error_from_response(502, html.encode(), HEADERS)
    assert type(error) is APIError
    assert error.http_status == 502
    assert "502" in error.message
    assert "not JSON" in error.message
    assert "<html>" in error.message
    assert "x" * 300 not in error.message
    assert error.json_body is None
    assert error.request_id == "req_123"


def test_non_json_4xx_is_an_api_error_too():
    assert type(error_from_response(400, b"Bad Request", {})) is APIError


def test_json_without_error_object_maps_by_status():
    error = error_from_response(404, b'{"detail": "nope"}', {})
    assert type(error) is InvalidRequestError
    assert error.json_body == {"detail": "nope"}
    assert "404" in error.message


def test_no_body():
    error = error_from_response(503, None, {})
    assert type(error) is APIError
    assert error.http_status == 503


def test_str_carries_the_context():
    payload = body(code="parameter_unknown", message="Received unknown parameter: foo", param="foo")
    error = error_from_response(400, payload, HEADERS)
    assert str(error) == (
        "Stripe 400 invalid_request_error (parameter_unknown, param: foo): "
        "Received unknown parameter: foo [Request-Id: req_123]"
    )


def test_str_leaves_out_what_is_missing():
    assert str(error_from_response(500, body("api_error", message="boom"), {})) == (
        "Stripe 500 api_error: boom"
    )
    assert str(APIConnectionError("GET /v1/customers timed out")) == (
        "Stripe: GET /v1/customers timed out"
    )


def test_repr_starts_with_class_name():
    error = error_from_response(
        402, body("card_error", code="card_declined", message="no"), HEADERS
    )
    text = repr(error)
    assert text.startswith("CardError(")
    assert "'card_declined'" in text
    assert "402" in text
    assert "req_123" in text


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (APIConnectionError("x"), True),
        (APITimeoutError("x"), True),
        (ConflictError("x", http_status=409), True),
        (RateLimitError("x", http_status=429), True),
        (APIError("x", http_status=500), True),
        (APIError("x", http_status=503), True),
        (APIError("x", http_status=200), False),
        (APIError("x"), False),
        (InvalidRequestError("x", http_status=400), False),
        (InvalidRequestError("x", http_status=404), False),
        (AuthenticationError("x", http_status=401), False),
        (PermissionDeniedError("x", http_status=403), False),
        (CardError("x", http_status=402), False),
        (IdempotencyError("x", http_status=400), False),
    ],
)
def test_is_transient(error, transient):
    assert error.is_transient is transient


def test_non_json_proxy_statuses_stay_transient():
    assert error_from_response(429, b"slow down", {}).is_transient is True
    assert error_from_response(502, b"Bad Gateway", {}).is_transient is True


def test_timeout_is_a_connection_error():
    assert issubclass(APITimeoutError, APIConnectionError)
    assert APIConnectionError("x").http_status is None


def test_pickle_keeps_the_attributes():
    error = error_from_response(400, body(code="c", param="p", message="m"), HEADERS)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is InvalidRequestError
    assert (copy.http_status, copy.code, copy.param, copy.request_id) == (400, "c", "p", "req_123")
    assert str(copy) == str(error)
