"""Stripe's Customer object onto the row's columns: which value each mirrored attribute takes.

Roles come from ``schema.ROLES``: an expanded id object is reduced to its id, a unix time
becomes an aware datetime; attributes absent from the object are absent from the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Final

from . import schema

_ID_EXPANDABLE: Final = frozenset(schema.ID_EXPANDABLE)
_TIMESTAMPS: Final = frozenset(schema.TIMESTAMPS)


def fields_from_stripe(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Column values for the mirrored attributes present in a Stripe customer object.

    Attributes absent from ``obj`` (Stripe omits includable ones such as ``tax_ids`` unless
    expanded) are absent from the result, so applying it never erases what an expanded
    retrieve stored. Attributes this version does not know stay in ``stripe_data`` only.
    """
    values: dict[str, Any] = {}
    for name in schema.MIRRORED:
        if name not in obj:
            continue
        value = obj[name]
        if name in _ID_EXPANDABLE and isinstance(value, dict):
            value = value.get("id")
        elif name in _TIMESTAMPS and value is not None:
            value = datetime.fromtimestamp(int(value), tz=timezone.utc)
        values[name] = value
    return values


def is_deleted(obj: Mapping[str, Any]) -> bool:
    """Whether ``obj`` is Stripe's answer for a deleted customer (``"deleted": true``)."""
    return obj.get("deleted") is True
