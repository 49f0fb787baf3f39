"""The Customer object: Stripe's defaults, how validated params change it, how it is rendered.

Present in every response: each attribute of ``schema.OBJECT_ATTRIBUTES`` except ``deleted``
(only on deleted customers) and the includable ones. Includable (omitted unless named in
``expand[]``, as Stripe does): the expandable attributes that are objects or lists, i.e.
``cash_balance``, ``invoice_credit_balance``, ``sources``, ``subscriptions``, ``tax``,
``tax_ids``. Expandable ids (``default_source``, ``test_clock``) are always present and become
objects when expanded.

Update semantics: only passed params change. A nested object that ``accepts_empty``
(``address``, ``shipping``, ``invoice_settings[rendering_options]``) is replaced whole and
cleared by ``""``; one that does not (``invoice_settings``, ``tax``, ``cash_balance``) is a bag of
settings, merged key by key. ``""`` for a string clears it to its default (``None``, or
``"none"`` for ``tax_exempt``); ``metadata[key]=`` unsets a key, ``metadata=`` all of them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, Final

from .. import schema
from .params import check_metadata_size

if TYPE_CHECKING:
    from .store import Store

Spec = dict[str, Any]

INCLUDABLE: Final[frozenset[str]] = frozenset(
    name
    for name, spec in schema.OBJECT_ATTRIBUTES.items()
    if spec.get("expandable") and spec["type"] != "string"
)
ID_EXPANDABLE: Final[frozenset[str]] = schema.EXPANDABLE_ATTRIBUTES - INCLUDABLE
#: Attributes a live customer carries in a default response, in Stripe's order.
DEFAULT_ATTRIBUTES: Final[tuple[str, ...]] = (
    "id",
    "object",
    *sorted(set(schema.OBJECT_ATTRIBUTES) - INCLUDABLE - {"id", "object", "deleted"}),
)
_STORED_ATTRIBUTES: Final[tuple[str, ...]] = (
    "id",
    "object",
    *sorted(set(schema.OBJECT_ATTRIBUTES) - {"id", "object", "deleted"}),
)
#: What ``""`` restores; anything else clears to ``None``.
CLEARED_TO: Final[dict[str, Any]] = {"tax_exempt": "none"}
#: Params that are not attributes, or whose shape differs from the attribute they feed.
SPECIAL_PARAMS: Final[frozenset[str]] = frozenset(
    {"cash_balance", "expand", "payment_method", "source", "tax", "tax_id_data", "validate"}
)


def fill(fields: dict[str, Spec], value: dict[str, Any]) -> dict[str, Any]:
    """An object with every field of its spec: given ones converted, the others ``None``."""
    return {
        key: convert(value[key], spec) if key in value else None for key, spec in fields.items()
    }


def convert(value: Any, spec: Spec) -> Any:
    """A validated param value as it appears on the object."""
    if value is None or value == "":
        return None
    if spec["type"] == "object":
        if spec.get("list"):
            return [fill(spec["fields"], item) for item in value]
        return fill(spec["fields"], value)
    return value


def _list_object(customer_id: str, name: str) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [],
        "has_more": False,
        "total_count": 0,
        "url": f"/v1/customers/{customer_id}/{name}",
    }


def new_customer(customer_id: str, created: int, invoice_prefix: str) -> dict[str, Any]:
    """A customer with Stripe's defaults (the example object of the API reference)."""
    defaults: dict[str, Any] = {
        "id": customer_id,
        "object": "customer",
        "balance": 0,
        "created": created,
        "delinquent": False,
        "invoice_prefix": invoice_prefix,
        "invoice_settings": fill(schema.CREATE_PARAMS["invoice_settings"]["fields"], {}),
        "livemode": False,
        "metadata": {},
        "next_invoice_sequence": 1,
        "preferred_locales": [],
        "tax_exempt": "none",
        "cash_balance": {
            "object": "cash_balance",
            "available": None,
            "customer": customer_id,
            "livemode": False,
            "settings": {"reconciliation_mode": "automatic", "using_merchant_default": True},
        },
        "invoice_credit_balance": {},
        "sources": _list_object(customer_id, "sources"),
        "subscriptions": _list_object(customer_id, "subscriptions"),
        "tax": {
            "automatic_tax": "unrecognized_location",
            "ip_address": None,
            "location": None,
            "provider": "stripe",
        },
        "tax_ids": _list_object(customer_id, "tax_ids"),
    }
    return {name: defaults.get(name) for name in _STORED_ATTRIBUTES}


def apply_params(
    customer: dict[str, Any],
    params: dict[str, Any],
    specs: dict[str, Spec],
    *,
    now: int,
    new_id: Callable[[str, int], str],
) -> None:
    """Set what ``params`` (validated against ``specs``) say on ``customer``, in place.

    Raises before changing anything if the merged metadata would exceed the key limit.
    """
    if "metadata" in params:
        metadata = merge_metadata(customer["metadata"], params["metadata"])
        check_metadata_size(metadata)
        params = {**params, "metadata": metadata}
    for name, value in params.items():
        if name in SPECIAL_PARAMS:
            _apply_special(customer, name, value, now=now, new_id=new_id)
        elif name in customer:
            _set_attribute(customer, name, value, specs[name])


def merge_metadata(current: dict[str, str], update: dict[str, str] | None) -> dict[str, str]:
    """``None`` (``metadata=``) unsets all; a ``""`` value unsets that key."""
    if update is None:
        return {}
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _set_attribute(customer: dict[str, Any], name: str, value: Any, spec: Spec) -> None:
    if name == "metadata":
        customer[name] = value
    elif value == "":
        customer[name] = copy.deepcopy(CLEARED_TO.get(name))
    elif spec["type"] == "object" and not spec.get("list") and value is not None:
        if spec.get("accepts_empty"):
            customer[name] = fill(spec["fields"], value)
        else:
            current = customer[name] or fill(spec["fields"], {})
            current.update(fill_given(spec["fields"], value))
            customer[name] = current
    else:
        customer[name] = convert(value, spec)


def fill_given(fields: dict[str, Spec], value: dict[str, Any]) -> dict[str, Any]:
    """Only the given keys, converted (a merge into a bag of settings)."""
    return {key: convert(item, fields[key]) for key, item in value.items()}


def _apply_special(
    customer: dict[str, Any],
    name: str,
    value: Any,
    *,
    now: int,
    new_id: Callable[[str, int], str],
) -> None:
    customer_id = customer["id"]
    if name == "source" and value:
        # An opaque token or source id: attached, and it becomes the default source.
        sources = customer["sources"]
        if not any(item["id"] == value for item in sources["data"]):
            sources["data"].insert(0, {"id": value, "object": "source", "customer": customer_id})
            sources["total_count"] = len(sources["data"])
        customer["default_source"] = value
    elif name == "tax" and "ip_address" in value:
        customer["tax"]["ip_address"] = value["ip_address"] or None
    elif name == "cash_balance" and value.get("settings", {}).get("reconciliation_mode"):
        mode = value["settings"]["reconciliation_mode"]
        customer["cash_balance"]["settings"] = {
            "reconciliation_mode": "automatic" if mode == "merchant_default" else mode,
            "using_merchant_default": mode == "merchant_default",
        }
    elif name == "tax_id_data":
        tax_ids = customer["tax_ids"]
        for item in value:
            tax_ids["data"].insert(0, _tax_id(new_id("txi_", 24), customer_id, now, item))
        tax_ids["total_count"] = len(tax_ids["data"])
    # payment_method (attached to the customer, not shown on it), validate and expand change
    # nothing on the object.


def _tax_id(tax_id: str, customer_id: str, now: int, data: dict[str, str]) -> dict[str, Any]:
    return {
        "id": tax_id,
        "object": "tax_id",
        "country": None,
        "created": now,
        "customer": customer_id,
        "livemode": False,
        "type": data["type"],
        "value": data["value"],
        "verification": {"status": "pending", "verified_address": None, "verified_name": None},
    }


def deleted_stub(customer_id: str) -> dict[str, Any]:
    """What DELETE answers and a later GET retrieves."""
    return {"id": customer_id, "object": "customer", "deleted": True}


def render(customer: dict[str, Any], expand: Collection[str] = ()) -> dict[str, Any]:
    """The customer as the API shows it (shares nested values with the stored object)."""
    if customer.get("deleted"):
        return deleted_stub(customer["id"])
    shown = {
        name: value
        for name, value in customer.items()
        if name != "deleted" and (name not in INCLUDABLE or name in expand)
    }
    for name in ID_EXPANDABLE.intersection(expand):
        if shown[name] is not None:
            shown[name] = _expand_id(customer, name, shown[name])
    return shown


def _expand_id(customer: dict[str, Any], name: str, object_id: str) -> dict[str, Any]:
    if name == "default_source":
        for source in customer["sources"]["data"]:
            if source["id"] == object_id:
                return dict(source)
        return {"id": object_id, "object": "source", "customer": customer["id"]}
    if name == "test_clock":
        return {"id": object_id, "object": "test_helpers.test_clock"}
    return {"id": object_id}


def previous_attributes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Previous values of the top-level attributes that changed (``customer.updated``)."""
    return {
        name: before.get(name)
        for name, value in after.items()
        if name not in ("id", "object") and before.get(name) != value
    }


def set_livemode(customer: dict[str, Any], livemode: bool) -> None:
    """Mark the customer and its nested objects as live or test mode objects."""
    customer["livemode"] = livemode
    if customer.get("cash_balance"):
        customer["cash_balance"]["livemode"] = livemode
    for tax_id in (customer.get("tax_ids") or {}).get("data", []):
        tax_id["livemode"] = livemode


def seed(store: Store, count: int, spacing: int) -> list[str]:
    """``count`` plain customers in ``store`` (lock held), oldest first, ``spacing`` seconds
    apart up to now; no events. Returns their ids."""
    now = store.clock.now()
    ids: list[str] = []
    for number in range(1, count + 1):
        customer_id = store.new_id("cus_")
        while customer_id in store.customers:
            customer_id = store.new_id("cus_")
        customer = new_customer(
            customer_id, now - (count - number) * spacing, store.new_invoice_prefix()
        )
        customer.update(
            name=f"Seed Customer {number}",
            email=f"seed{number}@example.com",
            metadata={"seed": str(number)},
        )
        set_livemode(customer, store.livemode)
        store.add_customer(customer)
        ids.append(customer_id)
    return ids
