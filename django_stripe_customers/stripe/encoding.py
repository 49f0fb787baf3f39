"""Stripe's form encoding of nested parameters: ``metadata[k]=v``, ``preferred_locales[0]=fr``.

Rules: ``None`` is left out at any depth; ``""`` is sent as is (it unsets a field, or a metadata
key); an empty dict or list encodes nothing (as in stripe-python), so to clear something send
``""``. Booleans become ``true``/``false``, datetimes a unix timestamp (naive ones are local time,
as ``datetime.timestamp`` reads them). Keys keep their order.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode


def encode_params(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Flatten ``params`` into the ``(key, value)`` pairs Stripe expects, in order."""
    if params is None:
        return []
    return list(_encode_mapping("", params))


def urlencode_params(params: Mapping[str, Any] | None) -> str:
    """The form-encoded string (brackets are percent-encoded; Stripe accepts both)."""
    return urlencode(encode_params(params))


def _encode_mapping(prefix: str, mapping: Mapping[Any, Any]) -> Iterator[tuple[str, str]]:
    for key, value in mapping.items():
        if not isinstance(key, str):
            where = prefix or "the top level"
            raise TypeError(f"Stripe parameter keys must be str, got {key!r} in {where}")
        yield from _encode_value(f"{prefix}[{key}]" if prefix else key, value)


def _encode_value(path: str, value: Any) -> Iterator[tuple[str, str]]:
    if value is None:
        return
    if isinstance(value, Mapping):
        yield from _encode_mapping(path, value)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _encode_value(f"{path}[{index}]", item)
    else:
        yield path, _encode_scalar(path, value)


def _encode_scalar(path: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float | Decimal):
        return str(value)
    if isinstance(value, datetime.datetime):
        return str(int(value.timestamp()))
    raise TypeError(
        f"Stripe parameter {path!r} has unsupported type {type(value).__name__}; "
        "use str, int, float, Decimal, bool, datetime, None, a dict or a list"
    )
