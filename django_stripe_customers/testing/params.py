"""Stripe's nested form encoding decoded, and request parameters checked against ``schema``.

Every parameter, nested key, type, ``maxLength``, enum, ``required`` and ``accepts_empty`` flag
comes from ``django_stripe_customers.schema`` (generated from ``shared/stripe/customer.json``).
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import parse_qsl

from .. import schema
from .errors import ApiError, invalid

Spec = dict[str, Any]

#: ``expand`` is accepted by every Stripe endpoint; its spec is the list endpoint's.
COMMON_PARAMS: Final[dict[str, Spec]] = {"expand": schema.LIST_PARAMS["expand"]}
CUSTOMER_CREATE_PARAMS: Final[dict[str, Spec]] = {**schema.CREATE_PARAMS, **COMMON_PARAMS}
CUSTOMER_UPDATE_PARAMS: Final[dict[str, Spec]] = {**schema.UPDATE_PARAMS, **COMMON_PARAMS}
CUSTOMER_LIST_PARAMS: Final[dict[str, Spec]] = schema.LIST_PARAMS
#: GET /v1/events is not part of the Customer data; its paging params are the same as
#: the customer list's, plus Stripe's event filters ``type`` (``customer.*`` wildcard allowed),
#: ``types[]`` and ``delivery_success``.
EVENT_LIST_PARAMS: Final[dict[str, Spec]] = {
    **{
        name: schema.LIST_PARAMS[name]
        for name in ("created", "ending_before", "expand", "limit", "starting_after")
    },
    "delivery_success": {"type": "boolean"},
    "type": {"type": "string", "maxLength": 5000},
    "types": {"type": "string", "list": True, "maxLength": 5000},
}

_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
_INTEGER = re.compile(r"[+-]?\d{1,19}")
_INT64 = 2**63


def decode_form(encoded: str) -> dict[str, Any]:
    """Decode ``a[b][0]=x&c[]=y`` into nested dicts and lists, as Stripe's server does.

    ``[]`` appends to a list; ``[0]`` makes a dict with digit keys, turned into a list when the
    parameter's spec says it is one. Later duplicates of a scalar key win.
    """
    tree: dict[str, Any] = {}
    for key, value in parse_qsl(encoded, keep_blank_values=True):
        _insert(tree, split_key(key), value, key)
    return tree


def split_key(key: str) -> list[str]:
    """``shipping[address][city]`` -> ``["shipping", "address", "city"]``; ``[]`` -> ``""``."""
    start = key.find("[")
    if start <= 0:
        return [key]
    head, rest = key[:start], key[start:]
    segments: list[str] = []
    pos = 0
    while pos < len(rest):
        match = _SEGMENT.match(rest, pos)
        if match is None:
            # Brackets inside a key (``metadata[a[b]]``): the whole bracketed part is one key,
            # so the validator can name it (metadata keys may not contain brackets).
            return [head, rest[1:-1] if rest.endswith("]") else rest[1:]]
        segments.append(match.group(1))
        pos = match.end()
    return [head, *segments]


def _conflict(full_key: str) -> ApiError:
    return invalid(f"Invalid value for parameter {full_key!r}: mixes a value and nested keys")


def _insert(node: dict[str, Any], segments: list[str], value: str, full_key: str) -> None:
    key, rest = segments[0], segments[1:]
    if not rest:
        if isinstance(node.get(key), dict | list):
            raise _conflict(full_key)
        node[key] = value
        return
    child = node.get(key)
    if rest[0] == "":
        if child is None:
            child = node[key] = []
        if not isinstance(child, list):
            raise _conflict(full_key)
        if len(rest) == 1:
            child.append(value)
            return
        if not child or not isinstance(child[-1], dict) or rest[1] in child[-1]:
            child.append({})
        _insert(child[-1], rest[1:], value, full_key)
        return
    if child is None:
        child = node[key] = {}
    if not isinstance(child, dict):
        raise _conflict(full_key)
    _insert(child, rest, value, full_key)


def validate(tree: dict[str, Any], specs: dict[str, Spec]) -> dict[str, Any]:
    """Check decoded params against ``specs``; return them typed (ints, bools, lists).

    ``""`` survives where it means "unset": a string, a key of a map, or any param whose spec
    ``accepts_empty`` (objects and lists then come back as ``None``).
    """
    cleaned: dict[str, Any] = {}
    for name, value in tree.items():
        spec = specs.get(name)
        if spec is None:
            raise unknown_parameter(name)
        cleaned[name] = clean(value, spec, name)
    return cleaned


def unknown_parameter(param: str) -> ApiError:
    return invalid(f"Received unknown parameter: {param}", param=param, code="parameter_unknown")


def empty_not_allowed(param: str) -> ApiError:
    return invalid(
        f"You passed an empty string for '{param}'. We assume empty values are an attempt to "
        f"unset a parameter; however '{param}' cannot be unset. You should remove '{param}' "
        "from your request or supply a non-empty value.",
        param=param,
        code="parameter_invalid_empty",
    )


def missing_parameter(param: str) -> ApiError:
    return invalid(f"Missing required param: {param}.", param=param, code="parameter_missing")


def string_too_long(param: str, value: str, max_length: int) -> ApiError:
    preview = value if len(value) <= 40 else value[:40] + "..."
    return invalid(
        f"Invalid string: {preview}; must be at most {max_length} characters",
        param=param,
        code="parameter_invalid_string_too_long",
    )


def one_of(values: list[str]) -> str:
    """``["exempt", "none", "reverse"]`` -> ``"exempt, none, or reverse"``."""
    if len(values) <= 2:
        return " or ".join(values)
    return ", ".join(values[:-1]) + ", or " + values[-1]


def clean(value: Any, spec: Spec, param: str) -> Any:
    """One parameter (list or not) checked against its spec."""
    if spec.get("list"):
        return _clean_list(value, spec, param)
    return _clean_one(value, spec, param)


def _clean_list(value: Any, spec: Spec, param: str) -> list[Any] | None:
    if value == "":
        if spec.get("accepts_empty"):
            return None
        raise empty_not_allowed(param)
    if isinstance(value, dict):
        if not all(key.isdigit() for key in value):
            raise invalid("Invalid array", param=param)
        items = [value[key] for key in sorted(value, key=int)]
    elif isinstance(value, list):
        items = value
    else:
        raise invalid("Invalid array", param=param)
    return [_clean_one(item, spec, f"{param}[{index}]") for index, item in enumerate(items)]


def _clean_one(value: Any, spec: Spec, param: str) -> Any:
    kind = spec["type"]
    if kind == "string":
        return _clean_string(value, spec, param)
    if kind == "object":
        return _clean_object(value, spec, param)
    if kind.startswith("map"):
        return _clean_map(value, spec, param)
    if value == "":
        if spec.get("accepts_empty"):
            return None
        raise empty_not_allowed(param)
    if kind == "integer":
        return _clean_integer(value, param)
    if kind == "boolean":
        if value in ("true", "false"):
            return value == "true"
        raise invalid(f"Invalid boolean: {value}", param=param)
    raise AssertionError(f"spec type {kind!r} of {param} is not handled")


def _clean_string(value: Any, spec: Spec, param: str) -> str:
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {value!r}", param=param)
    enum = spec.get("enum")
    if value == "":
        if spec.get("required") or (enum and not spec.get("accepts_empty")):
            raise empty_not_allowed(param)
        return value
    max_length = spec.get("maxLength")
    if max_length is not None and len(value) > max_length:
        raise string_too_long(param, value, max_length)
    if enum and value not in enum:
        raise invalid(f"Invalid {param}: must be one of {one_of(enum)}", param=param)
    return value


def _clean_integer(value: Any, param: str) -> int:
    if not isinstance(value, str) or not _INTEGER.fullmatch(value):
        raise invalid(f"Invalid integer: {value}", param=param, code="parameter_invalid_integer")
    number = int(value)
    if not -_INT64 <= number < _INT64:
        raise invalid(f"Invalid integer: {value}", param=param, code="parameter_invalid_integer")
    return number


def _is_unset(value: Any, spec: Spec, param: str) -> bool:
    """``""`` unsets an object that ``accepts_empty``; anything else must be an object."""
    if value == "":
        if spec.get("accepts_empty"):
            return True
        raise empty_not_allowed(param)
    if not isinstance(value, dict):
        raise invalid("Invalid object", param=param)
    return False


def _clean_object(value: Any, spec: Spec, param: str) -> dict[str, Any] | None:
    if _is_unset(value, spec, param):
        return None
    fields: dict[str, Spec] = spec.get("fields", {})
    cleaned: dict[str, Any] = {}
    for key, item in value.items():
        field = fields.get(key)
        if field is None:
            raise unknown_parameter(f"{param}[{key}]")
        cleaned[key] = clean(item, field, f"{param}[{key}]")
    for key, field in fields.items():
        if field.get("required") and key not in value:
            raise missing_parameter(f"{param}[{key}]")
    return cleaned


def _clean_map(value: Any, spec: Spec, param: str) -> dict[str, str] | None:
    """Metadata: string keys and values within ``schema.METADATA_LIMITS``."""
    limits = schema.METADATA_LIMITS
    if _is_unset(value, spec, param):
        return None
    for key, item in value.items():
        where = f"{param}[{key}]"
        if any(char in key for char in limits["key_forbidden_chars"]):
            raise invalid(
                "Metadata keys may not contain square brackets ('[' or ']').", param=where
            )
        _check_metadata_length("key", key, limits["key_max_length"], where)
        if not isinstance(item, str):
            raise invalid(f"Invalid string: {item!r}", param=where)
        _check_metadata_length("value", item, limits["value_max_length"], where)
    check_metadata_size({key: item for key, item in value.items() if item != ""}, param)
    return dict(value)


def _check_metadata_length(what: str, text: str, limit: int, where: str) -> None:
    if len(text) > limit:
        raise invalid(
            f"Metadata {what}s can have up to {limit} characters, but you passed in a {what} "
            f"that is {len(text)} characters.",
            param=where,
            code="parameter_invalid_string_too_long",
        )


def check_metadata_size(metadata: dict[str, Any], param: str = "metadata") -> None:
    """At most ``max_keys`` keys (counted after a merge too)."""
    max_keys = schema.METADATA_LIMITS["max_keys"]
    if len(metadata) > max_keys:
        raise invalid(
            f"Metadata can have up to {max_keys} keys, but you passed in {len(metadata)} keys.",
            param=param,
        )
