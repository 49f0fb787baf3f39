"""The real client against a real local Stripe over HTTP, with the proxy recording what went on
the wire. Every test runs against both servers (``stripe_backend``): our emulator
(``django_stripe_customers.testing``), faithful to Stripe, and ``localstripe``, an independent
implementation that cross-checks the client.

Where the two differ, a test asserts Stripe's behaviour on the emulator (as documented in
/work/shared/stripe/README.md, "Facts about the wire protocol", and
/work/shared/stripe/customers-api-reference.txt) and localstripe's documented deviation on
localstripe. localstripe's deviations met here:
- no ``Request-Id`` header on responses;
- error bodies carry only ``type`` and ``message`` (no ``code``/``param``; 404 is
  "Not Found", an unknown parameter "Unexpected <name>");
- ``metadata[key]=""`` stores ``""`` instead of removing the key;
- a deleted customer is gone (404) instead of ``{"deleted": true}`` on GET;
- lists come oldest first (Stripe: newest first), carry ``total_count``, do not cap ``limit``
  at 100, and refuse filters such as ``created`` (400 "Unexpected created"; ``email`` works);
- ``balance`` comes back as ``account_balance`` (negated); only ``sk_`` keys are accepted
  (restricted ``rk_`` keys get 401);
- ``Stripe-Version``, ``Stripe-Account`` and ``Idempotency-Key`` are ignored;
- it has ``/v1/payment_methods`` and expands ``invoice_settings.default_payment_method``, which
  the emulator (Customer API only) does not: there the tests use an opaque ``pm_`` id and
  ``default_source`` instead.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import requests

from django_stripe_customers import __version__, schema
from django_stripe_customers.stripe import (
    AuthenticationError,
    IdempotencyError,
    InvalidRequestError,
    StripeClient,
)
from tests.support.faultproxy import FaultProxy
from tests.support.stripe_servers import LOCAL_KEY, StripeBackend, make_client

CARD = {"number": "4242424242424242", "exp_month": "12", "exp_year": "2034", "cvc": "123"}


@pytest.fixture
def client(stripe_backend: StripeBackend) -> StripeClient:
    """A client straight to the backend (no proxy)."""
    return make_client(stripe_backend.url)


def _payment_method(client: StripeClient, backend: StripeBackend) -> str:
    """A PaymentMethod id to attach: on localstripe a real card PaymentMethod, created through
    the client's generic ``request``; the emulator serves only the Customer API and accepts a
    ``pm_`` id as opaque (see ``django_stripe_customers.testing``)."""
    if backend.is_emulator:
        return "pm_emulated_card_visa"
    pm = client.request("POST", "/v1/payment_methods", {"type": "card", "card": CARD})
    return str(pm["id"])


def test_create_stores_nested_params(client: StripeClient, stripe_backend: StripeBackend) -> None:
    """Stripe answers every attribute of a nested object, unset ones as ``null`` (README: the
    Customer object; customers-api-reference.txt shows ``address`` and ``invoice_settings`` in
    full); localstripe echoes only the keys that were sent (a deviation)."""
    created = client.customers.create(
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
    fetched = client.customers.retrieve(created["id"])
    unset_address_fields = (
        {"line2": None, "postal_code": None, "state": None} if stripe_backend.is_emulator else {}
    )
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
            **unset_address_fields,
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


def test_update_changes_fields_and_merges_metadata(client: StripeClient) -> None:
    customer = client.customers.create({"email": "old@example.com", "metadata": {"a": "1"}})
    updated = client.customers.update(
        customer["id"], {"email": "new@example.com", "metadata": {"b": "2"}}
    )
    assert updated["id"] == customer["id"]
    assert updated["email"] == "new@example.com"
    assert updated["metadata"] == {"a": "1", "b": "2"}
    assert client.customers.retrieve(customer["id"])["email"] == "new@example.com"


def test_metadata_key_unset_with_empty_string(
    proxied_client: StripeClient, fault_proxy: FaultProxy, stripe_backend: StripeBackend
) -> None:
    """Stripe removes a metadata key sent as ``""`` ("Individual keys can be unset by posting
    an empty value to them", customers-api-reference.txt); localstripe stores ``""`` instead (a
    deviation). Both: "no value left", and the exact wire form."""
    customer = proxied_client.customers.create({"metadata": {"a": "1", "b": "2"}})
    updated = proxied_client.customers.update(customer["id"], {"metadata": {"a": ""}})
    assert fault_proxy.requests[-1].form == [("metadata[a]", "")]
    assert updated["metadata"].get("a", "") == ""
    assert updated["metadata"]["b"] == "2"
    fetched = proxied_client.customers.retrieve(customer["id"])
    if stripe_backend.is_emulator:
        assert updated["metadata"] == fetched["metadata"] == {"b": "2"}  # Stripe: key removed
    else:
        assert updated["metadata"] == fetched["metadata"] == {"a": "", "b": "2"}  # deviation


def test_field_cleared_with_empty_string(
    client: StripeClient, stripe_backend: StripeBackend
) -> None:
    pm = _payment_method(client, stripe_backend)
    customer = client.customers.create(
        {"payment_method": pm, "invoice_settings": {"default_payment_method": pm}}
    )
    assert customer["invoice_settings"]["default_payment_method"] == pm
    cleared = client.customers.update(
        customer["id"], {"invoice_settings": {"default_payment_method": ""}}
    )
    assert cleared["invoice_settings"]["default_payment_method"] is None
    fetched = client.customers.retrieve(customer["id"])
    assert fetched["invoice_settings"]["default_payment_method"] is None


def test_expand_on_retrieve_create_and_update(
    proxied_client: StripeClient, fault_proxy: FaultProxy, stripe_backend: StripeBackend
) -> None:
    """localstripe expands ``invoice_settings.default_payment_method`` (a real PaymentMethod).
    The emulator has no PaymentMethods and expands only top-level attributes, so there the
    expanded field is ``default_source`` (an opaque source id, expanded to
    ``{"id", "object": "source", "customer"}``)."""
    params: dict[str, Any]
    if stripe_backend.is_emulator:
        path, kind, object_id = "default_source", "source", "src_emulated_card"
        params = {"source": object_id}
    else:
        path, kind = "invoice_settings.default_payment_method", "payment_method"
        object_id = _payment_method(proxied_client, stripe_backend)
        params = {
            "payment_method": object_id,
            "invoice_settings": {"default_payment_method": object_id},
        }

    def field(customer: dict[str, Any]) -> Any:
        if stripe_backend.is_emulator:
            return customer["default_source"]
        return customer["invoice_settings"]["default_payment_method"]

    created = proxied_client.customers.create(params, expand=[path])
    assert field(created)["id"] == object_id
    assert ("expand[0]", path) in fault_proxy.requests[-1].form

    plain = proxied_client.customers.retrieve(created["id"])
    assert field(plain) == object_id

    expanded = proxied_client.customers.retrieve(created["id"], expand=[path])
    assert field(expanded)["object"] == kind
    assert fault_proxy.requests[-1].query_params == [("expand[0]", path)]

    updated = proxied_client.customers.update(created["id"], {"name": "X"}, expand=[path])
    if stripe_backend.is_emulator:
        assert field(updated) == {"id": object_id, "object": "source", "customer": created["id"]}
    else:
        assert field(updated)["card"]["last4"] == "4242"


def test_delete_then_gone(client: StripeClient, stripe_backend: StripeBackend) -> None:
    """Stripe answers a later GET with ``{"id", "object": "customer", "deleted": true}``
    (README, "A deleted customer"; customers-api-reference.txt, Retrieve a customer);
    localstripe with 404 (deviation). Neither lists it any more."""
    customer = client.customers.create({"email": "gone@example.com"})
    deleted = client.customers.delete(customer["id"])
    assert deleted == {"id": customer["id"], "object": "customer", "deleted": True}
    assert customer["id"] not in stripe_backend.customer_ids()
    assert customer["id"] not in [c["id"] for c in client.customers.list_all()]
    if stripe_backend.is_emulator:
        assert client.customers.retrieve(customer["id"]) == deleted
        with pytest.raises(InvalidRequestError) as excinfo:  # a deleted customer is read-only
            client.customers.update(customer["id"], {"name": "zombie"})
        assert excinfo.value.http_status == 404
        assert excinfo.value.code == "resource_missing"
    else:
        with pytest.raises(InvalidRequestError) as excinfo:
            client.customers.retrieve(customer["id"])
        assert excinfo.value.http_status == 404


def test_list_returns_one_raw_page(client: StripeClient) -> None:
    ids = {client.customers.create({"name": f"c{i}"})["id"] for i in range(3)}
    page = client.customers.list(limit=2)
    assert page["object"] == "list"
    assert page["url"] == "/v1/customers"
    assert page["has_more"] is True
    assert len(page["data"]) == 2
    assert {c["id"] for c in page["data"]} <= ids
    rest = client.customers.list({"starting_after": page["data"][-1]["id"]}, limit=2)
    assert rest["has_more"] is False
    assert {c["id"] for c in page["data"] + rest["data"]} == ids


def test_list_order(client: StripeClient, stripe_backend: StripeBackend) -> None:
    """Stripe lists newest first (README, "Lists"; the emulator breaks ties within one second by
    creation order); localstripe lists oldest first (a deviation)."""
    created = [client.customers.create({"name": f"o{i}"})["id"] for i in range(3)]
    listed = [c["id"] for c in client.customers.list(limit=3)["data"]]
    listed_all = [c["id"] for c in client.customers.list_all(limit=2)]
    expected = created[::-1] if stripe_backend.is_emulator else created
    assert listed == listed_all == expected


def test_list_filtered_by_email_and_created(
    client: StripeClient, stripe_backend: StripeBackend
) -> None:
    """Both filter the list by ``email``. Stripe also filters by ``created`` (``created[gte]``
    etc., customers-api-reference.txt, List all customers); localstripe refuses that parameter
    (400 "Unexpected created", a deviation)."""
    wanted = client.customers.create({"email": "find@example.com"})["id"]
    other = client.customers.create({"email": "other@example.com"})
    page = client.customers.list({"email": "find@example.com"})
    assert [c["id"] for c in page["data"]] == [wanted]
    assert page["has_more"] is False

    window = {"created": {"gte": other["created"] - 60, "lte": other["created"] + 60}}
    if stripe_backend.is_emulator:
        found = client.customers.list(window)
        assert {c["id"] for c in found["data"]} == {wanted, other["id"]}
        assert client.customers.list({"created": {"gt": other["created"] + 60}})["data"] == []
    else:
        with pytest.raises(InvalidRequestError) as excinfo:
            client.customers.list(window)
        assert excinfo.value.http_status == 400
        assert "created" in excinfo.value.message


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


def test_unknown_customer_is_404_invalid_request(
    client: StripeClient, stripe_backend: StripeBackend
) -> None:
    """Stripe's error object carries ``code``/``param`` and the response a ``Request-Id``
    (README, "Errors" and "Responses carry Request-Id"); localstripe sends only ``type`` and
    ``message`` ("Not Found") and no Request-Id (deviations)."""
    with pytest.raises(InvalidRequestError) as excinfo:
        client.customers.retrieve("cus_doesnotexist")
    error = excinfo.value
    assert error.http_status == 404
    assert error.type == "invalid_request_error"
    assert error.is_transient is False
    if stripe_backend.is_emulator:
        assert error.message == "No such customer: 'cus_doesnotexist'"
        assert error.code == "resource_missing"
        assert error.param == "id"
        assert error.request_id is not None and error.request_id.startswith("req_")
    else:
        assert error.message == "Not Found"
        assert error.code is None and error.param is None
        assert error.request_id is None


def test_unknown_parameter_is_400_invalid_request(
    client: StripeClient, stripe_backend: StripeBackend
) -> None:
    """Stripe sets ``param="bogus"`` and ``code="parameter_unknown"`` (README, "Errors");
    localstripe only says so in the message (a deviation)."""
    with pytest.raises(InvalidRequestError) as excinfo:
        client.customers.create({"bogus": "x"})
    assert excinfo.value.http_status == 400
    assert "bogus" in excinfo.value.message
    assert excinfo.value.is_transient is False
    if stripe_backend.is_emulator:
        assert excinfo.value.code == "parameter_unknown"
        assert excinfo.value.param == "bogus"
    assert stripe_backend.customer_ids() == []


def test_non_secret_key_is_401_authentication_error(stripe_backend: StripeBackend) -> None:
    client = make_client(stripe_backend.url, api_key="pk_test_publishable")
    with pytest.raises(AuthenticationError) as excinfo:
        client.customers.list()
    assert excinfo.value.http_status == 401
    assert excinfo.value.is_transient is False


def test_restricted_key(stripe_backend: StripeBackend) -> None:
    """Stripe accepts a restricted ``rk_`` key (README, "Auth"); localstripe accepts only
    ``sk_`` keys and answers 401 (a deviation)."""
    client = make_client(stripe_backend.url, api_key="rk_test_restricted")
    if stripe_backend.is_emulator:
        assert client.customers.list()["object"] == "list"
    else:
        with pytest.raises(AuthenticationError) as excinfo:
            client.customers.list()
        assert excinfo.value.http_status == 401


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


def test_idempotency_key_reused(client: StripeClient, stripe_backend: StripeBackend) -> None:
    """Stripe: the same key with the same parameters returns the first result; with different
    parameters it is an ``idempotency_error`` (README, "Headers"). localstripe ignores the key
    and creates every time (a deviation)."""
    first = client.customers.create({"name": "once"}, idempotency_key="order-7")
    again = client.customers.create({"name": "once"}, idempotency_key="order-7")
    if stripe_backend.is_emulator:
        assert again == first
        with pytest.raises(IdempotencyError) as excinfo:
            client.customers.create({"name": "other"}, idempotency_key="order-7")
        assert excinfo.value.http_status == 400
        assert excinfo.value.type == "idempotency_error"
        assert excinfo.value.is_transient is False
        assert stripe_backend.customer_ids() == [first["id"]]
    else:
        assert again["id"] != first["id"]
        other = client.customers.create({"name": "other"}, idempotency_key="order-7")
        assert sorted(stripe_backend.customer_ids()) == sorted(
            [first["id"], again["id"], other["id"]]
        )


def test_stripe_account_and_api_version_headers(
    fault_proxy: FaultProxy, stripe_backend: StripeBackend
) -> None:
    """The wire shows the client sends both headers (localstripe ignores them; the emulator
    answers for a connected account only, so the account is connected first)."""
    if stripe_backend.emulator is not None:
        stripe_backend.emulator.add_account(account_id="acct_1Connected")
    client = make_client(
        fault_proxy.url, stripe_account="acct_1Connected", api_version="2024-06-20"
    )
    client.customers.create({"name": "connected"})
    client.customers.list()
    for r in fault_proxy.requests:
        assert r.stripe_account == "acct_1Connected"
        assert r.stripe_version == "2024-06-20"


def test_generic_request_reaches_other_endpoints(client: StripeClient) -> None:
    customer = client.request("POST", "/v1/customers", {"name": "generic"})
    fetched = client.request("GET", f"/v1/customers/{customer['id']}")
    assert fetched["name"] == "generic"


def test_get_client_reads_settings_lazily(stripe_backend: StripeBackend, settings: Any) -> None:
    from django_stripe_customers.clients import get_client

    settings.STRIPE_CUSTOMERS = {"API_KEY": LOCAL_KEY, "API_BASE": stripe_backend.url}
    customer = get_client().customers.create({"email": "factory@example.com"})
    assert customer["id"] in stripe_backend.customer_ids()

    with FaultProxy(stripe_backend.url) as proxy:
        settings.STRIPE_CUSTOMERS = {
            "API_KEY": LOCAL_KEY,
            "API_BASE": proxy.url,
            "API_VERSION": "2025-01-01.test",
            "MAX_RETRIES": 0,
        }
        get_client().customers.retrieve(customer["id"])
        [sent] = proxy.requests
        assert sent.stripe_version == "2025-01-01.test"
        assert sent.auth_is(f"Bearer {LOCAL_KEY}")

    settings.STRIPE_CUSTOMERS = {
        "API_KEY": "pk_test_not_a_secret_key",
        "API_BASE": stripe_backend.url,
    }
    with pytest.raises(AuthenticationError):
        get_client().customers.retrieve(customer["id"])
