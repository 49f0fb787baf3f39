"""The real client against the real ``localstripe`` server, over HTTP, with the proxy recording
what went on the wire.

localstripe is an independent implementation and deviates from Stripe in places; the tests say
so where they meet a deviation and assert only what both agree on, or what the wire carried:
- no ``Request-Id`` header on responses;
- error bodies carry only ``type`` and ``message`` (no ``code``/``param``; 404 is
  "Not Found", an unknown parameter "Unexpected <name>");
- ``metadata[key]=""`` stores ``""`` instead of removing the key;
- a deleted customer is gone (404) instead of ``{"deleted": true}`` on GET;
- lists come oldest first (Stripe: newest first), carry ``total_count``, do not cap ``limit``
  at 100, and refuse filters such as ``email`` (400 "Unexpected email");
- ``balance`` comes back as ``account_balance`` (negated); only ``sk_`` keys are accepted
  (restricted ``rk_`` keys get 401);
- ``Stripe-Version``, ``Stripe-Account`` and ``Idempotency-Key`` are ignored.
"""

from __future__ import annotations

import re
import uuid

import pytest
import requests

from django_stripe_customers import __version__, schema
from django_stripe_customers.stripe import (
    AuthenticationError,
    InvalidRequestError,
    StripeClient,
)
from tests.conftest import LOCAL_KEY, LocalStripeServer, make_client
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.localstripe

CARD = {"number": "4242424242424242", "exp_month": "12", "exp_year": "2034", "cvc": "123"}


def _payment_method(client: StripeClient) -> str:
    """A card PaymentMethod, created through the client's generic ``request``."""
    pm = client.request("POST", "/v1/payment_methods", {"type": "card", "card": CARD})
    return str(pm["id"])


def test_create_stores_nested_params(localstripe_client: StripeClient) -> None:
    created = localstripe_client.customers.create(
        {
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "description": "first programmer",
            "phone": "+44 20 7946 0000",
            "metadata": {"order": "42", "tier": "gold"},
            "address": {"line1": "12 St James's Sq", "city": "London", "country": "GB"},
            "preferred_locales": ["en", "fr"],
        }
    )
    assert created["object"] == "customer"
    assert created["id"].startswith("cus_")
    fetched = localstripe_client.customers.retrieve(created["id"])
    for customer in (created, fetched):
        assert customer["email"] == "ada@example.com"
        assert customer["name"] == "Ada Lovelace"
        assert customer["description"] == "first programmer"
        assert customer["phone"] == "+44 20 7946 0000"
        assert customer["metadata"] == {"order": "42", "tier": "gold"}
        assert customer["address"] == {
            "line1": "12 St James's Sq",
            "city": "London",
            "country": "GB",
        }
        assert customer["preferred_locales"] == ["en", "fr"]


def test_nested_params_are_form_encoded_with_brackets(
    proxied_client: StripeClient, fault_proxy: FaultProxy
) -> None:
    proxied_client.customers.create(
        {"metadata": {"a": "1"}, "address": {"city": "Paris"}, "preferred_locales": ["fr", "de"]}
    )
    [sent] = fault_proxy.requests
    assert sent.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert sent.form == [
        ("metadata[a]", "1"),
        ("address[city]", "Paris"),
        ("preferred_locales[0]", "fr"),
        ("preferred_locales[1]", "de"),
    ]


def test_update_changes_fields_and_merges_metadata(localstripe_client: StripeClient) -> None:
    customer = localstripe_client.customers.create(
        {"email": "old@example.com", "metadata": {"a": "1"}}
    )
    updated = localstripe_client.customers.update(
        customer["id"], {"email": "new@example.com", "metadata": {"b": "2"}}
    )
    assert updated["id"] == customer["id"]
    assert updated["email"] == "new@example.com"
    assert updated["metadata"] == {"a": "1", "b": "2"}
    assert localstripe_client.customers.retrieve(customer["id"])["email"] == "new@example.com"


def test_metadata_key_unset_with_empty_string(
    proxied_client: StripeClient, fault_proxy: FaultProxy
) -> None:
    """Stripe removes a metadata key sent as ``""``; localstripe stores ``""`` instead (a
    deviation), so only "no value left" is asserted on the server, and the exact wire form."""
    customer = proxied_client.customers.create({"metadata": {"a": "1", "b": "2"}})
    updated = proxied_client.customers.update(customer["id"], {"metadata": {"a": ""}})
    assert fault_proxy.requests[-1].form == [("metadata[a]", "")]
    assert updated["metadata"].get("a", "") == ""
    assert updated["metadata"]["b"] == "2"


def test_field_cleared_with_empty_string(localstripe_client: StripeClient) -> None:
    pm = _payment_method(localstripe_client)
    customer = localstripe_client.customers.create(
        {"payment_method": pm, "invoice_settings": {"default_payment_method": pm}}
    )
    assert customer["invoice_settings"]["default_payment_method"] == pm
    cleared = localstripe_client.customers.update(
        customer["id"], {"invoice_settings": {"default_payment_method": ""}}
    )
    assert cleared["invoice_settings"]["default_payment_method"] is None


def test_expand_on_retrieve_create_and_update(
    proxied_client: StripeClient, fault_proxy: FaultProxy
) -> None:
    path = "invoice_settings.default_payment_method"
    pm = _payment_method(proxied_client)
    created = proxied_client.customers.create(
        {"payment_method": pm, "invoice_settings": {"default_payment_method": pm}},
        expand=[path],
    )
    assert created["invoice_settings"]["default_payment_method"]["id"] == pm
    assert ("expand[0]", path) in fault_proxy.requests[-1].form

    plain = proxied_client.customers.retrieve(created["id"])
    assert plain["invoice_settings"]["default_payment_method"] == pm

    expanded = proxied_client.customers.retrieve(created["id"], expand=[path])
    assert expanded["invoice_settings"]["default_payment_method"]["object"] == "payment_method"
    assert fault_proxy.requests[-1].query_params == [("expand[0]", path)]

    updated = proxied_client.customers.update(created["id"], {"name": "X"}, expand=[path])
    assert updated["invoice_settings"]["default_payment_method"]["card"]["last4"] == "4242"


def test_delete_then_gone(localstripe_client: StripeClient, localstripe: LocalStripeServer) -> None:
    """Stripe answers a later GET with ``{"deleted": true}``; localstripe with 404 (deviation)."""
    customer = localstripe_client.customers.create({"email": "gone@example.com"})
    deleted = localstripe_client.customers.delete(customer["id"])
    assert deleted == {"id": customer["id"], "object": "customer", "deleted": True}
    assert customer["id"] not in localstripe.customer_ids()
    with pytest.raises(InvalidRequestError) as excinfo:
        localstripe_client.customers.retrieve(customer["id"])
    assert excinfo.value.http_status == 404


def test_list_returns_one_raw_page(localstripe_client: StripeClient) -> None:
    ids = {localstripe_client.customers.create({"name": f"c{i}"})["id"] for i in range(3)}
    page = localstripe_client.customers.list(limit=2)
    assert page["object"] == "list"
    assert page["url"] == "/v1/customers"
    assert page["has_more"] is True
    assert len(page["data"]) == 2
    assert {c["id"] for c in page["data"]} <= ids
    rest = localstripe_client.customers.list({"starting_after": page["data"][-1]["id"]}, limit=2)
    assert rest["has_more"] is False
    assert {c["id"] for c in page["data"] + rest["data"]} == ids


def test_list_all_follows_starting_after(
    proxied_client: StripeClient, fault_proxy: FaultProxy
) -> None:
    created = [proxied_client.customers.create({"name": f"n{i}"})["id"] for i in range(25)]
    fault_proxy.clear()

    listed = [c["id"] for c in proxied_client.customers.list_all(limit=10)]

    assert sorted(listed) == sorted(created)
    pages = fault_proxy.requests
    assert [(r.method, r.path) for r in pages] == [("GET", "/v1/customers")] * 3
    queries = [dict(r.query_params) for r in pages]
    assert all(q["limit"] == "10" for q in queries)
    assert "starting_after" not in queries[0]
    assert queries[1]["starting_after"] == listed[9]
    assert queries[2]["starting_after"] == listed[19]


def test_list_all_is_lazy_and_default_page_is_100(
    proxied_client: StripeClient, fault_proxy: FaultProxy
) -> None:
    for i in range(3):
        proxied_client.customers.create({"name": f"n{i}"})
    fault_proxy.clear()
    customers = proxied_client.customers.list_all()
    assert fault_proxy.requests == []  # nothing fetched until iterated
    assert len(list(customers)) == 3
    [page] = fault_proxy.requests
    assert dict(page.query_params)["limit"] == "100"


def test_list_all_of_nothing(proxied_client: StripeClient, fault_proxy: FaultProxy) -> None:
    assert list(proxied_client.customers.list_all(limit=10)) == []
    assert len(fault_proxy.requests) == 1


def test_unknown_customer_is_404_invalid_request(localstripe_client: StripeClient) -> None:
    with pytest.raises(InvalidRequestError) as excinfo:
        localstripe_client.customers.retrieve("cus_doesnotexist")
    error = excinfo.value
    assert error.http_status == 404
    assert error.type == "invalid_request_error"
    assert error.message == "Not Found"
    assert error.is_transient is False


def test_unknown_parameter_is_400_invalid_request(localstripe_client: StripeClient) -> None:
    """Stripe would also set ``param="bogus"`` and ``code="parameter_unknown"``; localstripe
    only says so in the message."""
    with pytest.raises(InvalidRequestError) as excinfo:
        localstripe_client.customers.create({"bogus": "x"})
    assert excinfo.value.http_status == 400
    assert "bogus" in excinfo.value.message
    assert excinfo.value.is_transient is False


def test_non_secret_key_is_401_authentication_error(localstripe: LocalStripeServer) -> None:
    client = make_client(localstripe.url, api_key="pk_test_publishable")
    with pytest.raises(AuthenticationError) as excinfo:
        client.customers.list()
    assert excinfo.value.http_status == 401
    assert excinfo.value.is_transient is False


def test_headers_on_every_request(proxied_client: StripeClient, fault_proxy: FaultProxy) -> None:
    customer = proxied_client.customers.create({"email": "h@example.com"})
    proxied_client.customers.retrieve(customer["id"])
    proxied_client.customers.update(customer["id"], {"name": "H"})
    proxied_client.customers.list(limit=1)
    proxied_client.customers.delete(customer["id"])

    sent = fault_proxy.requests
    assert [(r.method, r.path) for r in sent] == [
        ("POST", "/v1/customers"),
        ("GET", f"/v1/customers/{customer['id']}"),
        ("POST", f"/v1/customers/{customer['id']}"),
        ("GET", "/v1/customers"),
        ("DELETE", f"/v1/customers/{customer['id']}"),
    ]
    user_agent = re.compile(
        rf"django-stripe-customers/{re.escape(__version__)} "
        rf"python-requests/{re.escape(requests.__version__)}"
    )
    for r in sent:
        assert r.auth_scheme == "Bearer"
        assert r.auth_is(f"Bearer {LOCAL_KEY}")
        assert r.stripe_version == schema.API_VERSION
        assert r.stripe_account is None
        assert r.user_agent is not None and user_agent.fullmatch(r.user_agent)
        if r.method == "GET":
            assert r.idempotency_key is None
        else:
            assert r.idempotency_key is not None
            assert uuid.UUID(r.idempotency_key).version == 4
    keys = [r.idempotency_key for r in sent if r.method != "GET"]
    assert len(set(keys)) == len(keys)  # a fresh key per call


def test_given_idempotency_key_is_sent(
    proxied_client: StripeClient, fault_proxy: FaultProxy
) -> None:
    customer = proxied_client.customers.create({}, idempotency_key="create-order-42")
    proxied_client.customers.update(customer["id"], {"name": "x"}, idempotency_key="upd-1")
    proxied_client.customers.delete(customer["id"], idempotency_key="del-1")
    assert [r.idempotency_key for r in fault_proxy.requests] == [
        "create-order-42",
        "upd-1",
        "del-1",
    ]


def test_stripe_account_and_api_version_headers(fault_proxy: FaultProxy) -> None:
    """localstripe ignores both headers; the wire shows the client sends them."""
    client = make_client(
        fault_proxy.url, stripe_account="acct_1Connected", api_version="2024-06-20"
    )
    client.customers.create({"name": "connected"})
    client.customers.list()
    for r in fault_proxy.requests:
        assert r.stripe_account == "acct_1Connected"
        assert r.stripe_version == "2024-06-20"


def test_generic_request_reaches_other_endpoints(localstripe_client: StripeClient) -> None:
    customer = localstripe_client.request("POST", "/v1/customers", {"name": "generic"})
    fetched = localstripe_client.request("GET", f"/v1/customers/{customer['id']}")
    assert fetched["name"] == "generic"


def test_get_client_reads_settings_lazily(
    localstripe_settings: object, localstripe: LocalStripeServer
) -> None:
    from django_stripe_customers.stripe.factory import get_client

    customer = get_client().customers.create({"email": "factory@example.com"})
    assert customer["id"] in localstripe.customer_ids()

    with FaultProxy(localstripe.url) as proxy:
        localstripe_settings.STRIPE_CUSTOMERS = {  # type: ignore[attr-defined]
            "API_KEY": LOCAL_KEY,
            "API_BASE": proxy.url,
            "API_VERSION": "2025-01-01.test",
            "MAX_RETRIES": 0,
        }
        get_client().customers.retrieve(customer["id"])
        [sent] = proxy.requests
        assert sent.stripe_version == "2025-01-01.test"
        assert sent.auth_is(f"Bearer {LOCAL_KEY}")

    localstripe_settings.STRIPE_CUSTOMERS = {  # type: ignore[attr-defined]
        "API_KEY": "pk_test_not_a_secret_key",
        "API_BASE": localstripe.url,
    }
    with pytest.raises(AuthenticationError):
        get_client().customers.retrieve(customer["id"])
