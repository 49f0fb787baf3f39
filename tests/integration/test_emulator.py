"""The emulator's Customer semantics over real HTTP: defaults, expansion, update, delete, lists.

Sources cited in docstrings: "reference" is ``shared/stripe/customers-api-reference.txt``,
"README" is ``shared/stripe/README.md``, ``schema.X`` the generated spec data.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from django_stripe_customers import schema
from django_stripe_customers.testing import Clock, StripeEmulator
from django_stripe_customers.testing.objects import DEFAULT_ATTRIBUTES, INCLUDABLE
from tests.support.fidelity.client import Api
from tests.support.stripe_reference import REFERENCE, REFERENCE_EXAMPLE


def create(emulator_api: Api, **params: Any) -> dict[str, Any]:
    return emulator_api.create_customer(params)


# -- the object ------------------------------------------------------------------------------


def test_reference_example_is_quoted_verbatim() -> None:
    """The example above is the reference's "The Customer object" (checked when present)."""
    if not REFERENCE.exists():
        pytest.skip(f"{REFERENCE} not available")
    text = REFERENCE.read_text()
    start = text.index('{  "id": "cus_NffrFeUfNV2Hib"')
    example = json.JSONDecoder().raw_decode(text[start:])[0]
    assert example == REFERENCE_EXAMPLE


def test_new_customer_matches_the_reference_example(emulator_api: Api) -> None:
    """Reference, "The Customer object": every key and default of the example object."""
    customer = create(emulator_api, name="Jenny Rosen", email="jennyrosen@example.com")
    for key, value in REFERENCE_EXAMPLE.items():
        if key not in ("id", "created", "invoice_prefix"):
            assert customer[key] == value, key


def test_every_default_attribute_present_and_includables_omitted(emulator_api: Api) -> None:
    """schema.OBJECT_ATTRIBUTES: all present but ``deleted`` and the includable ones
    (expandable objects/lists, which Stripe omits unless expanded)."""
    customer = create(emulator_api)
    assert list(customer) == list(DEFAULT_ATTRIBUTES)
    assert set(DEFAULT_ATTRIBUTES) | INCLUDABLE | {"deleted"} == set(schema.OBJECT_ATTRIBUTES)
    assert INCLUDABLE == {
        "cash_balance",
        "invoice_credit_balance",
        "sources",
        "subscriptions",
        "tax",
        "tax_ids",
    }
    assert set(schema.SEED_ATTRIBUTES) <= set(DEFAULT_ATTRIBUTES) | INCLUDABLE
    for name in ("business_name", "customer_account", "individual_name"):
        assert customer[name] is None


def test_ids_and_invoice_prefix_shaped_like_stripe(emulator_api: Api) -> None:
    """Ids like the reference's ``cus_NffrFeUfNV2Hib``; prefixes like ``0759376C``."""
    customers = [create(emulator_api) for _ in range(20)]
    for customer in customers:
        assert re.fullmatch(r"cus_[A-Za-z0-9]{14}", customer["id"])
        assert re.fullmatch(r"[0-9A-F]{8}", customer["invoice_prefix"])
    assert len({c["id"] for c in customers}) == 20


def test_created_comes_from_the_clock(stripe_emulator: StripeEmulator, emulator_api: Api) -> None:
    """``created``: timestamp (schema.OBJECT_ATTRIBUTES), from a clock the test moves."""
    stripe_emulator.clock.set(1_700_000_000)
    assert create(emulator_api)["created"] == 1_700_000_000
    stripe_emulator.clock.advance(60)
    assert create(emulator_api)["created"] == 1_700_000_060


EXPANDED_SHAPES: dict[str, Any] = {
    "cash_balance": lambda cid: {
        "object": "cash_balance",
        "available": None,
        "customer": cid,
        "livemode": False,
        "settings": {"reconciliation_mode": "automatic", "using_merchant_default": True},
    },
    "invoice_credit_balance": lambda cid: {},
    "sources": lambda cid: {
        "object": "list",
        "data": [],
        "has_more": False,
        "total_count": 0,
        "url": f"/v1/customers/{cid}/sources",
    },
    "subscriptions": lambda cid: {
        "object": "list",
        "data": [],
        "has_more": False,
        "total_count": 0,
        "url": f"/v1/customers/{cid}/subscriptions",
    },
    "tax": lambda cid: {
        "automatic_tax": "unrecognized_location",
        "ip_address": None,
        "location": None,
        "provider": "stripe",
    },
    "tax_ids": lambda cid: {
        "object": "list",
        "data": [],
        "has_more": False,
        "total_count": 0,
        "url": f"/v1/customers/{cid}/tax_ids",
    },
}


@pytest.mark.parametrize("name", sorted(INCLUDABLE))
def test_expand_includable_attribute(emulator_api: Api, name: str) -> None:
    """Reference, "More attributes": cash_balance, invoice_credit_balance, sources,
    subscriptions, tax, tax_ids are "Expandable"; ``expand[]`` gives them in shape."""
    customer = create(emulator_api)
    for path in (f"/v1/customers/{customer['id']}", "/v1/customers"):
        response = emulator_api.get(
            path, [("expand[]", name if "cus_" in path else f"data.{name}")]
        )
        assert response.status_code == 200, response.text
        body = response.json()
        shown = body if "cus_" in path else body["data"][0]
        assert shown[name] == EXPANDED_SHAPES[name](customer["id"])
    created = emulator_api.post("/v1/customers", [("expand[0]", name)]).json()
    assert created[name] == EXPANDED_SHAPES[name](created["id"])


def test_expand_ids_become_objects(emulator_api: Api) -> None:
    """Reference: default_source and test_clock are "nullable string Expandable"."""
    customer = create(emulator_api, source="tok_visa", test_clock="clock_123")
    assert customer["default_source"] == "tok_visa"
    expanded = emulator_api.get(
        f"/v1/customers/{customer['id']}",
        [("expand[]", "default_source"), ("expand[]", "test_clock")],
    ).json()
    assert expanded["default_source"]["id"] == "tok_visa"
    assert expanded["test_clock"] == {"id": "clock_123", "object": "test_helpers.test_clock"}
    plain = create(emulator_api)
    assert (
        emulator_api.get(f"/v1/customers/{plain['id']}", {"expand[]": "test_clock"}).json()[
            "test_clock"
        ]
        is None
    )


@pytest.mark.parametrize("path", ["email", "data.tax", "tax.ip_address"])
def test_expand_of_something_not_expandable_is_refused(emulator_api: Api, path: str) -> None:
    """schema.EXPANDABLE_ATTRIBUTES is the list of what ``expand[]`` may name."""
    customer = create(emulator_api)
    response = emulator_api.get(f"/v1/customers/{customer['id']}", {"expand[]": path})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == f"This property cannot be expanded ({path})."
    assert emulator_api.get("/v1/customers", {"expand[]": "tax"}).status_code == 400


def test_write_only_params_are_reflected(emulator_api: Api) -> None:
    """schema.CREATE_PARAMS tax, cash_balance, tax_id_data, source, payment_method, validate:
    accepted and shown where the object has room for them."""
    customer = emulator_api.post(
        "/v1/customers",
        {
            "tax": {"ip_address": "203.0.113.7", "validate_location": "deferred"},
            "cash_balance": {"settings": {"reconciliation_mode": "merchant_default"}},
            "tax_id_data": [
                {"type": "eu_vat", "value": "FR1"},
                {"type": "gb_vat", "value": "GB2"},
            ],
            "source": "tok_visa",
            "payment_method": "pm_card_visa",
            "validate": True,
            "expand": ["tax", "cash_balance", "tax_ids", "sources"],
        },
    ).json()
    assert customer["tax"]["ip_address"] == "203.0.113.7"
    assert customer["cash_balance"]["settings"] == {
        "reconciliation_mode": "automatic",
        "using_merchant_default": True,
    }
    tax_ids = customer["tax_ids"]
    assert [(t["type"], t["value"]) for t in tax_ids["data"]] == [
        ("gb_vat", "GB2"),
        ("eu_vat", "FR1"),
    ]
    assert tax_ids["total_count"] == 2
    assert all(
        re.fullmatch(r"txi_\w+", t["id"]) and t["customer"] == customer["id"]
        for t in tax_ids["data"]
    )
    assert customer["default_source"] == "tok_visa"
    assert customer["sources"]["data"][0]["id"] == "tok_visa"
    assert "payment_method" not in customer and "validate" not in customer
    updated = emulator_api.post(
        f"/v1/customers/{customer['id']}",
        {
            "tax": {"ip_address": ""},
            "cash_balance": {"settings": {"reconciliation_mode": "manual"}},
            "expand": ["tax", "cash_balance"],
        },
    ).json()
    assert updated["tax"]["ip_address"] is None
    assert updated["cash_balance"]["settings"] == {
        "reconciliation_mode": "manual",
        "using_merchant_default": False,
    }


# -- update semantics --------------------------------------------------------------------------


def test_update_changes_only_passed_params(emulator_api: Api) -> None:
    """Reference, Update: "Any parameters not provided will be left unchanged."."""
    customer = create(
        emulator_api,
        name="Jenny",
        email="j@example.com",
        phone="+331",
        metadata={"a": "1"},
        address={"city": "Paris"},
        preferred_locales=["fr"],
        invoice_settings={"footer": "Thanks"},
    )
    updated = emulator_api.post(f"/v1/customers/{customer['id']}", {"description": "new"}).json()
    assert updated == {**customer, "description": "new"}
    assert emulator_api.post(f"/v1/customers/{customer['id']}").json() == updated


def test_metadata_unset_one_key_and_all(emulator_api: Api) -> None:
    """Reference: "Individual keys can be unset by posting an empty value to them. All keys
    can be unset by posting an empty value to metadata."."""
    customer = create(emulator_api, metadata={"a": "1", "b": "2"})
    path = f"/v1/customers/{customer['id']}"
    assert emulator_api.post(path, {"metadata": {"c": "3"}}).json()["metadata"] == {
        "a": "1",
        "b": "2",
        "c": "3",
    }
    assert emulator_api.post(path, {"metadata": {"a": ""}}).json()["metadata"] == {
        "b": "2",
        "c": "3",
    }
    assert emulator_api.post(path, {"metadata": {"zzz": ""}}).json()["metadata"] == {
        "b": "2",
        "c": "3",
    }
    assert emulator_api.post(path, {"metadata": ""}).json()["metadata"] == {}


def test_metadata_key_limit_counts_the_merged_result(emulator_api: Api) -> None:
    """schema.METADATA_LIMITS['max_keys'] = 50, for the metadata the customer ends up with."""
    max_keys = schema.METADATA_LIMITS["max_keys"]
    customer = create(emulator_api, metadata={f"k{i}": "v" for i in range(max_keys)})
    path = f"/v1/customers/{customer['id']}"
    refused = emulator_api.post(path, {"metadata": {"one_more": "v"}})
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "metadata"
    swapped = emulator_api.post(path, {"metadata": {"k0": "", "one_more": "v"}})
    assert swapped.status_code == 200
    assert len(swapped.json()["metadata"]) == max_keys
    assert (
        emulator_api.post(
            "/v1/customers", {"metadata": {f"k{i}": "v" for i in range(51)}}
        ).status_code
        == 400
    )


NULLABLE_STRINGS = sorted(
    name
    for name, spec in schema.UPDATE_PARAMS.items()
    if spec["type"] == "string"
    and not spec.get("list")
    and not spec.get("enum")
    and schema.OBJECT_ATTRIBUTES.get(name, {}).get("nullable")
)


@pytest.mark.parametrize("name", NULLABLE_STRINGS)
def test_empty_string_clears_a_nullable_string(emulator_api: Api, name: str) -> None:
    """README: ``""`` unsets a value; schema.OBJECT_ATTRIBUTES[name].nullable."""
    path = f"/v1/customers/{create(emulator_api)['id']}"
    assert emulator_api.post(path, {name: "X1"}).json()[name] == "X1"
    assert emulator_api.post(path, {name: ""}).json()[name] is None


def test_empty_tax_exempt_restores_none(emulator_api: Api) -> None:
    """schema.UPDATE_PARAMS['tax_exempt'].accepts_empty; "none" is the default (reference)."""
    customer = create(emulator_api, tax_exempt="exempt")
    assert (
        emulator_api.post(f"/v1/customers/{customer['id']}", {"tax_exempt": ""}).json()[
            "tax_exempt"
        ]
        == "none"
    )


@pytest.mark.parametrize(
    "name",
    sorted(
        name
        for name, spec in schema.UPDATE_PARAMS.items()
        if spec["type"] == "object"
        and spec.get("accepts_empty")
        and name in schema.OBJECT_ATTRIBUTES
    ),
)
def test_empty_string_clears_an_object(emulator_api: Api, name: str) -> None:
    """schema.UPDATE_PARAMS[name].accepts_empty: ``name=""`` sets it to null."""
    value = {"address": {"city": "Paris"}, "shipping": {"name": "J", "address": {"city": "P"}}}[
        name
    ]
    customer = create(emulator_api, **{name: value})
    assert customer[name] is not None
    assert emulator_api.post(f"/v1/customers/{customer['id']}", {name: ""}).json()[name] is None


def test_object_params_replace_and_settings_merge(emulator_api: Api) -> None:
    """Objects that accept "" (address, shipping, rendering_options) are replaced whole; the
    bags of settings that do not (invoice_settings) merge key by key (schema.UPDATE_PARAMS)."""
    customer = create(
        emulator_api, address={"city": "Paris", "line1": "1 rue"}, invoice_settings={"footer": "F"}
    )
    path = f"/v1/customers/{customer['id']}"
    moved = emulator_api.post(path, {"address": {"city": "Lyon"}}).json()
    assert moved["address"] == {
        "city": "Lyon",
        "country": None,
        "line1": None,
        "line2": None,
        "postal_code": None,
        "state": None,
    }
    merged = emulator_api.post(
        path,
        {
            "invoice_settings": {
                "default_payment_method": "pm_1",
                "rendering_options": {"template": "t1"},
                "custom_fields": [{"name": "PO", "value": "1"}],
            }
        },
    ).json()["invoice_settings"]
    assert merged == {
        "custom_fields": [{"name": "PO", "value": "1"}],
        "default_payment_method": "pm_1",
        "footer": "F",
        "rendering_options": {"amount_tax_display": None, "template": "t1"},
    }
    cleared = emulator_api.post(
        path,
        {"invoice_settings": {"custom_fields": "", "rendering_options": "", "footer": ""}},
    ).json()["invoice_settings"]
    assert cleared == {
        "custom_fields": None,
        "default_payment_method": "pm_1",
        "footer": None,
        "rendering_options": None,
    }


def test_update_of_unknown_customer_is_404(emulator_api: Api) -> None:
    """Stripe's resource_missing: ``No such customer: 'cus_x'`` with param ``id``."""
    response = emulator_api.post("/v1/customers/cus_missing", {"name": "x"})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "resource_missing"
    assert error["param"] == "id"
    assert error["message"] == "No such customer: 'cus_missing'"
    assert error["type"] == "invalid_request_error"
    assert emulator_api.get("/v1/customers/cus_missing").status_code == 404
    assert emulator_api.delete("/v1/customers/cus_missing").status_code == 404


# -- delete ------------------------------------------------------------------------------------


def test_deleted_customer_retrieves_as_stub_and_404s_on_update(
    stripe_emulator: StripeEmulator, emulator_api: Api
) -> None:
    """Reference, Retrieve: "If it's for a deleted Customer, a subset of the customer's
    information is returned, including a deleted property that's set to true."; README:
    DELETE returns and later GET returns ``{"id", "object": "customer", "deleted": true}``."""
    customer = create(emulator_api, email="gone@example.com")
    path = f"/v1/customers/{customer['id']}"
    stub = {"id": customer["id"], "object": "customer", "deleted": True}
    assert emulator_api.delete(path).json() == stub
    assert emulator_api.get(path).json() == stub
    assert emulator_api.get(path, {"expand[]": "tax"}).json() == stub
    assert emulator_api.post(path, {"name": "x"}).status_code == 404
    assert emulator_api.delete(path).status_code == 404
    assert customer["id"] not in [c["id"] for c in emulator_api.get("/v1/customers").json()["data"]]
    assert stripe_emulator.customers[customer["id"]]["deleted"] is True


# -- lists -------------------------------------------------------------------------------------


def ids(response: Any) -> list[str]:
    return [item["id"] for item in response.json()["data"]]


def test_list_is_newest_first_ties_by_insertion(
    stripe_emulator: StripeEmulator, emulator_api: Api
) -> None:
    """README: lists are "newest first"; same ``created``: the later insert first."""
    stripe_emulator.clock.set(1_000)
    a, b = create(emulator_api)["id"], create(emulator_api)["id"]
    stripe_emulator.clock.set(500)
    older = create(emulator_api)["id"]
    stripe_emulator.clock.set(2_000)
    newest = create(emulator_api)["id"]
    response = emulator_api.get("/v1/customers")
    assert ids(response) == [newest, b, a, older]
    body = response.json()
    assert body["object"] == "list"
    assert body["url"] == "/v1/customers"
    assert body["has_more"] is False


def test_list_limit_default_and_bounds(stripe_emulator: StripeEmulator, emulator_api: Api) -> None:
    """README: ``limit`` 1-100 (default 10); schema.LIST_PARAMS['limit'] is an integer."""
    stripe_emulator.seed(120)
    assert len(ids(emulator_api.get("/v1/customers"))) == 10
    assert len(ids(emulator_api.get("/v1/customers", {"limit": 100}))) == 100
    assert len(ids(emulator_api.get("/v1/customers", {"limit": 1}))) == 1
    for bad in ("0", "101", "-1"):
        response = emulator_api.get("/v1/customers", {"limit": bad})
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "limit"
    wrong = emulator_api.get("/v1/customers", {"limit": "ten"}).json()["error"]
    assert (wrong["code"], wrong["param"]) == ("parameter_invalid_integer", "limit")


def test_list_paging_with_cursors(stripe_emulator: StripeEmulator, emulator_api: Api) -> None:
    """README: "cursor with ``starting_after`` / ``ending_before``"; ``has_more``."""
    seeded = stripe_emulator.seed(25)[::-1]  # newest first
    collected: list[str] = []
    params: dict[str, Any] = {"limit": 10}
    pages = 0
    while True:
        body = emulator_api.get("/v1/customers", params).json()
        pages += 1
        collected += [c["id"] for c in body["data"]]
        if not body["has_more"]:
            break
        params = {"limit": 10, "starting_after": collected[-1]}
    assert (collected, pages) == (seeded, 3)
    before = emulator_api.get("/v1/customers", {"limit": 5, "ending_before": seeded[12]}).json()
    assert [c["id"] for c in before["data"]] == seeded[7:12]
    assert before["has_more"] is True
    first = emulator_api.get("/v1/customers", {"limit": 5, "ending_before": seeded[3]}).json()
    assert [c["id"] for c in first["data"]] == seeded[:3]
    assert first["has_more"] is False


def test_list_cursor_errors(stripe_emulator: StripeEmulator, emulator_api: Api) -> None:
    """An unknown cursor is resource_missing on that param; both cursors are exclusive."""
    seeded = stripe_emulator.seed(3)
    unknown = emulator_api.get("/v1/customers", {"starting_after": "cus_nope"})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "resource_missing"
    assert unknown.json()["error"]["param"] == "starting_after"
    both = emulator_api.get(
        "/v1/customers", {"starting_after": seeded[0], "ending_before": seeded[1]}
    )
    assert both.status_code == 400
    assert both.json()["error"]["code"] == "parameters_exclusive"
    emulator_api.delete(f"/v1/customers/{seeded[1]}")
    assert ids(emulator_api.get("/v1/customers", {"starting_after": seeded[1]})) == [seeded[0]]


def test_list_created_and_email_filters(stripe_emulator: StripeEmulator, emulator_api: Api) -> None:
    """schema.LIST_PARAMS: ``created`` with gt/gte/lt/lte, ``email`` (exact, case-sensitive)."""
    made = {}
    for at in (100, 200, 300, 400):
        stripe_emulator.clock.set(at)
        made[at] = create(emulator_api, email=f"c{at}@example.com")["id"]

    def created(**bounds: int) -> list[str]:
        return ids(emulator_api.get("/v1/customers", {"created": bounds}))

    assert created(gt=200) == [made[400], made[300]]
    assert created(gte=200) == [made[400], made[300], made[200]]
    assert created(lt=200) == [made[100]]
    assert created(lte=200, gt=100) == [made[200]]
    assert created(gte=250, lte=350) == [made[300]]
    assert created(gt=400) == []
    assert ids(emulator_api.get("/v1/customers", {"email": "c300@example.com"})) == [made[300]]
    assert ids(emulator_api.get("/v1/customers", {"email": "C300@example.com"})) == []
    assert ids(emulator_api.get("/v1/customers", {"limit": 1, "email": "c100@example.com"})) == [
        made[100]
    ]


def test_seed_spreads_created_times(stripe_emulator: StripeEmulator, emulator_api: Api) -> None:
    """``seed(n)``: n customers, oldest first, a minute apart up to now."""
    stripe_emulator.clock.set(10_000)
    seeded = stripe_emulator.seed(5)
    body = emulator_api.get("/v1/customers").json()["data"]
    assert [c["id"] for c in body] == seeded[::-1]
    assert [c["created"] for c in body] == [10_000, 9_940, 9_880, 9_820, 9_760]
    assert body[0]["email"] == "seed5@example.com"


# -- events --------------------------------------------------------------------------------------


def test_events_for_create_update_delete(
    stripe_emulator: StripeEmulator, emulator_api: Api
) -> None:
    """README, Webhooks: events ``{"id": "evt_...", "object": "event", "type", "created",
    "api_version", "livemode", "data": {"object", "previous_attributes"}}``."""
    stripe_emulator.clock.set(5_000)
    customer = create(emulator_api, name="Before", metadata={"a": "1"})
    stripe_emulator.clock.advance(10)
    response = emulator_api.post(
        f"/v1/customers/{customer['id']}",
        {"name": "After", "metadata": {"b": "2"}},
        headers={"Idempotency-Key": "update-1"},
    )
    stripe_emulator.clock.advance(10)
    emulator_api.delete(f"/v1/customers/{customer['id']}")
    listed = emulator_api.get("/v1/events").json()
    created_event, updated_event, deleted_event = listed["data"][::-1]
    assert listed["url"] == "/v1/events"
    assert [e["type"] for e in listed["data"]] == [
        "customer.deleted",
        "customer.updated",
        "customer.created",
    ]
    for event in listed["data"]:
        assert re.fullmatch(r"evt_[A-Za-z0-9]{24}", event["id"])
        assert event["object"] == "event"
        assert event["api_version"] == schema.API_VERSION
        assert event["livemode"] is False
        assert event["pending_webhooks"] == 0
        assert event["data"]["object"]["id"] == customer["id"]
    assert [e["created"] for e in listed["data"]] == [5_020, 5_010, 5_000]
    assert "previous_attributes" not in created_event["data"]
    assert updated_event["data"]["previous_attributes"] == {
        "metadata": {"a": "1"},
        "name": "Before",
    }
    assert updated_event["data"]["object"]["name"] == "After"
    assert updated_event["request"] == {
        "id": response.headers["Request-Id"],
        "idempotency_key": "update-1",
    }
    assert deleted_event["data"]["object"]["name"] == "After"
    assert "deleted" not in deleted_event["data"]["object"]
    assert emulator_api.get(f"/v1/events/{updated_event['id']}").json() == updated_event
    assert [e["id"] for e in stripe_emulator.events] == [
        created_event["id"],
        updated_event["id"],
        deleted_event["id"],
    ]


def test_no_event_for_an_update_that_changes_nothing(
    stripe_emulator: StripeEmulator, emulator_api: Api
) -> None:
    """Only changes make ``customer.updated`` (``previous_attributes`` would be empty)."""
    customer = create(emulator_api, name="Same")
    emulator_api.post(f"/v1/customers/{customer['id']}", {"name": "Same"})
    assert [e["type"] for e in stripe_emulator.events] == ["customer.created"]


def test_events_filters_and_paging(stripe_emulator: StripeEmulator, emulator_api: Api) -> None:
    """GET /v1/events: ``type`` (with ``*`` wildcard), ``types[]``, ``created``, cursors."""
    stripe_emulator.clock.set(100)
    customer = create(emulator_api)
    stripe_emulator.clock.set(200)
    emulator_api.post(f"/v1/customers/{customer['id']}", {"name": "x"})
    stripe_emulator.clock.set(300)
    emulator_api.delete(f"/v1/customers/{customer['id']}")

    def types(params: Any) -> list[str]:
        return [e["type"] for e in emulator_api.get("/v1/events", params).json()["data"]]

    assert types({"type": "customer.updated"}) == ["customer.updated"]
    assert types({"type": "customer.*"}) == [
        "customer.deleted",
        "customer.updated",
        "customer.created",
    ]
    assert types({"type": "invoice.*"}) == []
    assert types([("types[]", "customer.created"), ("types[]", "customer.deleted")]) == [
        "customer.deleted",
        "customer.created",
    ]
    assert types({"created": {"gte": 150, "lt": 300}}) == ["customer.updated"]
    first = emulator_api.get("/v1/events", {"limit": 1}).json()
    assert first["has_more"] is True
    rest = types({"starting_after": first["data"][0]["id"]})
    assert rest == ["customer.updated", "customer.created"]
    assert types({"delivery_success": "true"}) == types({})
    both = emulator_api.get(
        "/v1/events", [("type", "customer.created"), ("types[]", "customer.created")]
    )
    assert both.status_code == 400
    assert (
        emulator_api.get("/v1/events/evt_missing").json()["error"]["message"]
        == "No such event: 'evt_missing'"
    )


# -- account, auth, routing ----------------------------------------------------------------------


def test_account_is_a_fixed_test_mode_platform(emulator_api: Api) -> None:
    """Issue 4: ``GET /v1/account`` answers a fixed test-mode platform account."""
    first = emulator_api.get("/v1/account")
    assert first.status_code == 200
    account = first.json()
    assert account["object"] == "account"
    assert account["id"].startswith("acct_")
    assert account["charges_enabled"] is True
    assert account == emulator_api.get("/v1/account").json()
    assert Api(emulator_api.base_url, api_key=None).get("/v1/account").status_code == 401


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Token sk_test_abc",
        "Bearer sk_live_abcdef123456",
        "Bearer pk_test_abc123",
    ],
)
def test_requests_without_a_test_secret_key_are_401(
    emulator_api: Api, authorization: str | None
) -> None:
    """README: "Auth: ``Authorization: Bearer sk_test_...``"; the emulator is test mode only."""
    headers = {} if authorization is None else {"Authorization": authorization}
    anonymous = Api(emulator_api.base_url, api_key=None)
    response = anonymous.get("/v1/customers", headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert response.headers["Request-Id"].startswith("req_")
    assert "WWW-Authenticate" in response.headers
    if authorization and "sk_live_abcdef123456" in authorization:
        assert error["message"] == "Invalid API Key provided: sk_live_********3456"


def test_basic_auth_and_restricted_test_keys_accepted(emulator_api: Api) -> None:
    """The reference's curl uses ``-u "sk_test_...:"`` (HTTP Basic); README: ``rk_...``."""
    anonymous = Api(emulator_api.base_url, api_key=None)
    assert (
        anonymous.get(
            "/v1/customers", headers={"Authorization": "Basic c2tfdGVzdF94eXo6"}
        ).status_code
        == 200
    )
    assert Api(emulator_api.base_url, api_key="rk_test_abc").get("/v1/customers").status_code == 200


def test_configured_key_is_the_only_one_accepted() -> None:
    """Issue 4: "any key accepted unless the emulator is given one"."""
    with StripeEmulator(api_key="sk_test_right") as emulator:
        assert Api(emulator.url, "sk_test_right").get("/v1/customers").status_code == 200
        wrong = Api(emulator.url, "sk_test_wrong_key_123").get("/v1/customers")
        assert wrong.status_code == 401
        assert "sk_test_wrong_key_123" not in wrong.text
        assert wrong.json()["error"]["message"] == "Invalid API Key provided: sk_test_*********_123"


def test_unrecognized_urls_and_methods(emulator_api: Api) -> None:
    """Stripe's 404: ``Unrecognized request URL (GET: /v1/foo)``."""
    for method, path in [
        ("GET", "/v1/foo"),
        ("PUT", "/v1/customers"),
        ("DELETE", "/v1/customers"),
        ("GET", "/v1/customers/cus_1/tax_ids"),
        ("POST", "/v1/customers/cus_1/sources"),
        ("GET", "/v2/customers"),
        ("POST", "/v1/events"),
    ]:
        response = emulator_api.request(method, path)
        assert response.status_code == 404, (method, path)
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["message"].startswith(f"Unrecognized request URL ({method}: {path})")


def test_every_response_carries_request_id_and_version(emulator_api: Api) -> None:
    """README: "Responses carry ``Request-Id``"; ``Stripe-Version`` pins the version."""
    ok = emulator_api.get("/v1/customers")
    assert re.fullmatch(r"req_[A-Za-z0-9]{14}", ok.headers["Request-Id"])
    assert ok.headers["Stripe-Version"] == schema.API_VERSION
    assert ok.headers["Content-Type"] == "application/json"
    pinned = emulator_api.get("/v1/customers", headers={"Stripe-Version": "2024-06-20"})
    assert pinned.headers["Stripe-Version"] == "2024-06-20"
    error = emulator_api.get("/v1/customers/cus_nope")
    assert error.headers["Request-Id"] != ok.headers["Request-Id"]
    assert error.json()["error"]["request_log_url"].endswith(error.headers["Request-Id"])


def test_json_bodies_are_refused(emulator_api: Api) -> None:
    """README: "Requests are ``application/x-www-form-urlencoded``"."""
    response = emulator_api.session.post(
        emulator_api.base_url + "/v1/customers",
        data=json.dumps({"email": "a@example.com"}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400


# -- introspection -----------------------------------------------------------------------------


def test_request_log_redacts_the_key(stripe_emulator: StripeEmulator) -> None:
    """Issue 4: request log (method, path, params, headers), Authorization never stored."""
    secret = "sk_test_do_not_log_me_1234"
    emulator_api = Api(stripe_emulator.url, secret)
    emulator_api.post("/v1/customers", {"email": "a@example.com", "metadata": {"k": "v"}})
    emulator_api.get("/v1/customers", {"limit": 3})
    first, second = stripe_emulator.requests
    assert (first.method, first.path, first.status) == ("POST", "/v1/customers", 200)
    assert first.params == {"email": "a@example.com", "metadata": {"k": "v"}}
    assert first.headers["Authorization"] == "REDACTED"
    assert (second.method, second.params) == ("GET", {"limit": "3"})
    assert secret not in repr(stripe_emulator.requests)
    assert secret[8:] not in repr(stripe_emulator.requests)


def test_count_and_reset(stripe_emulator: StripeEmulator, emulator_api: Api) -> None:
    """Issue 4: counts, ``reset()``, direct access to stored objects."""
    customer = create(emulator_api)
    emulator_api.get(f"/v1/customers/{customer['id']}")
    emulator_api.get(f"/v1/customers/{customer['id']}")
    assert stripe_emulator.count() == 3
    assert stripe_emulator.count("GET") == 2
    assert stripe_emulator.count("post", "/v1/customers") == 1
    assert stripe_emulator.count(path="/v1/customers/*") == 2
    stripe_emulator.customers[customer["id"]]["delinquent"] = True
    assert emulator_api.get(f"/v1/customers/{customer['id']}").json()["delinquent"] is True
    stripe_emulator.clock.set(42)
    stripe_emulator.reset()
    assert stripe_emulator.customers == {}
    assert stripe_emulator.events == []
    assert stripe_emulator.requests == []
    assert stripe_emulator.clock.now() != 42
    assert emulator_api.get(f"/v1/customers/{customer['id']}").status_code == 404


def test_clock_control() -> None:
    """``Clock``: real time by default; ``set`` freezes, ``advance`` moves, ``reset`` undoes."""
    clock = Clock()
    real = clock.now()
    clock.advance(3600)
    assert clock.now() - real in (3600, 3601)
    clock.set(1_000)
    assert clock.now() == 1_000
    assert clock.advance(5) == 1_005
    clock.reset()
    assert abs(clock.now() - real) <= 2
    frozen = Clock(start=77)
    frozen.advance(3)
    frozen.reset()
    assert frozen.now() == 77


def test_emulator_lifecycle() -> None:
    """``start``/``stop``, context manager, port 0 picks a free port, ``api_base == url``."""
    emulator = StripeEmulator()
    assert not emulator.running
    emulator.start()
    try:
        assert emulator.port != 0
        assert emulator.url == emulator.api_base == f"http://127.0.0.1:{emulator.port}"
        emulator_api = Api(emulator.url)
        assert emulator_api.get("/v1/customers").status_code == 200
    finally:
        emulator.stop()
    assert not emulator.running
    with pytest.raises(OSError):
        Api(emulator.url).get("/v1/customers")


def test_request_log_is_bounded() -> None:
    """A long-running emulator (``make demo``) keeps only the latest requests."""
    with StripeEmulator(max_logged_requests=3) as emulator:
        emulator_api = Api(emulator.url)
        for limit in range(1, 6):
            emulator_api.get("/v1/customers", {"limit": limit})
        assert [entry.params["limit"] for entry in emulator.requests] == ["3", "4", "5"]


def test_an_emulator_bug_answers_500_api_error(
    stripe_emulator: StripeEmulator, emulator_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: 5xx is "Stripe's side", type ``api_error``; the connection stays usable."""
    from django_stripe_customers.testing import endpoints

    def broken(*args: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setitem(endpoints.COLLECTION_ROUTES, ("GET", "customers"), broken)
    response = emulator_api.get("/v1/customers")
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "api_error"
    monkeypatch.undo()
    assert emulator_api.get("/v1/customers").status_code == 200


# -- what other libraries ask for -------------------------------------------------------------


def test_connected_accounts_list_is_empty(emulator_api: Api) -> None:
    """dj-stripe's sync command lists ``GET /v1/accounts`` first; a platform with no
    connected accounts answers an empty list object."""
    response = emulator_api.get("/v1/accounts", {"limit": 10})
    assert response.status_code == 200
    assert response.json() == {
        "object": "list",
        "data": [],
        "has_more": False,
        "url": "/v1/accounts",
    }
    assert emulator_api.get("/v1/accounts", {"nope": 1}).status_code == 400


def test_customer_sources_list_filters_by_object(emulator_api: Api) -> None:
    """``GET /v1/customers/{id}/sources?object=card``: the customer's sources (opaque ids)."""
    customer = create(emulator_api, source="src_opaque123")
    listed = emulator_api.get(f"/v1/customers/{customer['id']}/sources").json()
    assert listed["url"] == f"/v1/customers/{customer['id']}/sources"
    assert [s["id"] for s in listed["data"]] == ["src_opaque123"]
    cards = emulator_api.get(f"/v1/customers/{customer['id']}/sources", {"object": "card"}).json()
    assert cards["data"] == [] and cards["has_more"] is False
    missing = emulator_api.get("/v1/customers/cus_Missing0000000/sources")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "resource_missing"
