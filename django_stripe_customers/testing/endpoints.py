"""The Customer and Event endpoints, and the routes (the Account ones are in ``accounts``): each
takes the app and a ``Call`` (whose ``store`` is the mode's and account's), and returns
``(status, JSON-able body)`` or raises ``ApiError``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from .. import schema
from . import objects
from .accounts import create_account, list_accounts, retrieve_account, retrieve_own_account
from .errors import invalid, no_such
from .params import (
    COMMON_PARAMS,
    CUSTOMER_CREATE_PARAMS,
    CUSTOMER_LIST_PARAMS,
    CUSTOMER_UPDATE_PARAMS,
    EVENT_LIST_PARAMS,
    validate,
)
from .store import Page

if TYPE_CHECKING:
    from collections.abc import Callable

    from .app import Call, EmulatorApp

    Endpoint = Callable[[EmulatorApp, Call], tuple[int, Any]]


def _list_body(data: list[dict[str, Any]], page: Page, url: str) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": page.has_more, "url": url}


# -- endpoints ------------------------------------------------------------------------------


#: Ids the emulator takes as existing objects (it stores no PaymentMethods, tokens or
#: sources): the prefixes Stripe gives them. Any other value is ``resource_missing``, as
#: Stripe answers an id it does not know.
REFERENCES: Final = {
    "payment_method": ("PaymentMethod", ("pm_", "card_", "src_")),
    "source": ("token", ("tok_", "btok_", "src_", "card_", "ba_")),
    "test_clock": ("test clock", ("clock_",)),
}


def check_references(params: dict[str, Any]) -> None:
    for name, (kind, prefixes) in REFERENCES.items():
        value = params.get(name)
        if isinstance(value, str) and value and not value.startswith(prefixes):
            raise no_such(kind, value, param=name, status=400)


def create_customer(app: EmulatorApp, call: Call) -> tuple[int, Any]:
    params = validate(call.params, CUSTOMER_CREATE_PARAMS)
    check_references(params)
    expand = app.expansions(params, schema.EXPANDABLE_ATTRIBUTES)
    store = call.store
    with store.lock:
        now = store.clock.now()
        customer_id = store.new_id("cus_")
        while customer_id in store.customers:
            customer_id = store.new_id("cus_")
        customer = objects.new_customer(customer_id, now, store.new_invoice_prefix())
        objects.apply_params(customer, params, schema.CREATE_PARAMS, now=now, new_id=store.new_id)
        objects.set_livemode(customer, store.livemode)
        store.add_customer(customer)
        app.emit("customer.created", customer, call)
        return 200, objects.render(customer, expand)


def retrieve_customer(app: EmulatorApp, call: Call) -> tuple[int, Any]:
    params = validate(call.params, COMMON_PARAMS)
    expand = app.expansions(params, schema.EXPANDABLE_ATTRIBUTES)
    assert call.object_id is not None
    with call.store.lock:
        customer = call.store.customers.get(call.object_id)
        if customer is None:
            raise no_such("customer", call.object_id)
        return 200, objects.render(customer, expand)


def update_customer(app: EmulatorApp, call: Call) -> tuple[int, Any]:
    params = validate(call.params, CUSTOMER_UPDATE_PARAMS)
    check_references(params)
    expand = app.expansions(params, schema.EXPANDABLE_ATTRIBUTES)
    assert call.object_id is not None
    store = call.store
    with store.lock:
        customer = app.live_customer(call.store, call.object_id)
        updated = json.loads(json.dumps(customer))
        objects.apply_params(
            updated, params, schema.UPDATE_PARAMS, now=store.clock.now(), new_id=store.new_id
        )
        if updated != customer:
            before = json.loads(json.dumps(objects.render(customer)))
            customer.clear()
            customer.update(updated)
            previous = objects.previous_attributes(before, objects.render(customer))
            app.emit("customer.updated", customer, call, previous)
        return 200, objects.render(customer, expand)


def delete_customer(app: EmulatorApp, call: Call) -> tuple[int, Any]:
    validate(call.params, {})
    assert call.object_id is not None
    store = call.store
    with store.lock:
        customer = app.live_customer(call.store, call.object_id)
        app.emit("customer.deleted", customer, call)
        store.mark_deleted(call.object_id)
        return 200, objects.deleted_stub(call.object_id)


def list_customers(app: EmulatorApp, call: Call) -> tuple[int, Any]:
    params = validate(call.params, CUSTOMER_LIST_PARAMS)
    expand = app.expansions(params, schema.EXPANDABLE_ATTRIBUTES, prefix="data.")
    store = call.store
    with store.lock:
        window = app.list_window(params, store.customer_index, "customer")
        filters = {name: params[name] for name in ("email", "test_clock") if name in params}
        customers = store.customers

        def match(customer_id: str) -> bool:
            customer = customers[customer_id]
            return all(customer[name] == value for name, value in filters.items())

        page = store.customer_index.page(**window, match=match if filters else None)
        data = [objects.render(customers[customer_id], expand) for customer_id in page.ids]
        return 200, _list_body(data, page, "/v1/customers")


def list_events(app: EmulatorApp, call: Call) -> tuple[int, Any]:
    params = validate(call.params, EVENT_LIST_PARAMS)
    app.expansions(params, frozenset(), prefix="data.")
    if "type" in params and "types" in params:
        raise invalid(
            "You may only specify one of these parameters: type, types.",
            code="parameters_exclusive",
        )
    wanted_type: str | None = params.get("type")
    wanted_types = set(params.get("types") or ())
    delivered: bool | None = params.get("delivery_success")
    store = call.store
    with store.lock:
        window = app.list_window(params, store.event_index, "event")
        events = store.events

        def match(event_id: str) -> bool:
            event = events[event_id]
            if wanted_type is not None:
                if wanted_type.endswith("*"):
                    if not event["type"].startswith(wanted_type[:-1]):
                        return False
                elif event["type"] != wanted_type:
                    return False
            if wanted_types and event["type"] not in wanted_types:
                return False
            return delivered is None or (event["pending_webhooks"] == 0) == delivered

        page = store.event_index.page(**window, match=match)
        return 200, _list_body([events[event_id] for event_id in page.ids], page, "/v1/events")


def retrieve_event(app: EmulatorApp, call: Call) -> tuple[int, Any]:
    params = validate(call.params, COMMON_PARAMS)
    app.expansions(params, frozenset())
    assert call.object_id is not None
    with call.store.lock:
        event = call.store.events.get(call.object_id)
        if event is None:
            raise no_such("event", call.object_id)
        return 200, event


#: Paging params of Stripe's list endpoints, as the customer list publishes them.
_PAGING_PARAMS = {
    name: schema.LIST_PARAMS[name]
    for name in ("created", "ending_before", "expand", "limit", "starting_after")
}


def list_customer_sources(app: EmulatorApp, call: Call) -> tuple[int, Any]:
    """``GET /v1/customers/{id}/sources[?object=card]``: the sources attached to a customer
    (opaque ids given as ``source``); dj-stripe asks for them while syncing customers."""
    params = validate(call.params, {**_PAGING_PARAMS, "object": {"type": "string"}})
    assert call.object_id is not None
    with call.store.lock:
        customer = call.store.customers.get(call.object_id)
        if customer is None or customer.get("deleted"):
            raise no_such("customer", call.object_id)
        data = [
            dict(source)
            for source in customer["sources"]["data"]
            if params.get("object") in (None, source.get("object"))
        ]
    url = f"/v1/customers/{call.object_id}/sources"
    return 200, _list_body(data, Page([item["id"] for item in data], False), url)


COLLECTION_ROUTES: dict[tuple[str, str], Endpoint] = {
    ("POST", "customers"): create_customer,
    ("GET", "customers"): list_customers,
    ("GET", "events"): list_events,
    ("GET", "account"): retrieve_own_account,
    ("POST", "accounts"): create_account,
    ("GET", "accounts"): list_accounts,
}
OBJECT_ROUTES: dict[tuple[str, str], Endpoint] = {
    ("GET", "customers"): retrieve_customer,
    ("POST", "customers"): update_customer,
    ("DELETE", "customers"): delete_customer,
    ("GET", "events"): retrieve_event,
    ("GET", "accounts"): retrieve_account,
}
#: ``/v1/{collection}/{id}/{sub}``.
NESTED_ROUTES: dict[tuple[str, str, str], Endpoint] = {
    ("GET", "customers", "sources"): list_customer_sources,
}
