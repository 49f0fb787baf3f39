"""Can Stripe take this edit? One pure function: a row's values in, the request (or why not) out.

``check_edit`` compares the pushable values with the last object Stripe sent, checks each value
that would be sent against Stripe's rules (``validation``: types without coercion, lengths,
choices, metadata limits) and whether Stripe can express the change (some values cannot be
cleared once set), and returns the request: a create with every value set, or an update with
only what differs. Objects Stripe replaces (``address``, ``shipping``: their parameter accepts
``""``) are sent whole, others (``invoice_settings``) key by key, metadata key by key with
removed keys as ``""``, a cleared value as ``""``.

The model's ``clean`` (so the admin form), the API's serializer and the push all call it, once
per save, so they can never disagree on what is sent or refused.

``check_one_shot`` does the same for Stripe's write-only parameters (``payment_method``,
``source``, ``tax_id_data``, ``tax``, ``cash_balance``, ``validate``: parameters that are no
attribute, so no column holds them), sent once with a customer's next push.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from django.core.exceptions import ValidationError

from . import schema
from .mirror import fields_from_stripe
from .validation import FIELD_VALIDATORS, check

#: Write-only parameters of each request: what Stripe takes that is no attribute of the object.
ONE_SHOT: Final[dict[str, dict[str, Spec]]] = {
    method: {
        name: spec
        for name, spec in params.items()
        if name not in schema.PUSHABLE and name != "expand"
    }
    for method, params in (("create", schema.CREATE_PARAMS), ("update", schema.UPDATE_PARAMS))
}

Spec = dict[str, Any]
CANNOT_CLEAR: Final = "%(field)s: Stripe cannot clear this value once it is set"


@dataclass(frozen=True)
class Edit:
    """The request a row's values call for: ``create`` or ``update``, and its params."""

    method: str
    params: dict[str, Any]


def check_edit(
    values: Mapping[str, Any],
    snapshot: Mapping[str, Any] | None,
    *,
    stripe_id: str | None,
    defaults: Mapping[str, Any] | None = None,
) -> Edit:
    """The request for ``values`` (pushable attribute -> value) against ``snapshot`` (the last
    Stripe object, for a customer with ``stripe_id``); on create, values equal to their column
    ``defaults`` are not sent. Raises one ``ValidationError`` keyed by field otherwise."""
    method = "update" if stripe_id else "create"
    params_spec = schema.UPDATE_PARAMS if method == "update" else schema.CREATE_PARAMS
    remote = fields_from_stripe(snapshot or {}) if method == "update" else {}
    params: dict[str, Any] = {}
    errors: dict[str, list[ValidationError]] = {}
    for name in schema.PUSHABLE:
        spec = params_spec.get(name)
        if spec is None or name not in values:
            continue  # default_source exists on update only, test_clock on create only
        local, old = values[name], remote.get(name)
        if method == "create" and (_is_empty(local) or _same(local, (defaults or {}).get(name))):
            continue
        if _same(local, old) or (_is_empty(local) and _is_empty(old)):
            continue
        try:
            for validator in FIELD_VALIDATORS[name]:
                validator(local)
            if (param := _param(name, local, old, spec)) is not None:
                params[name] = param
        except ValidationError as exc:
            errors[name] = exc.error_list
    if errors:
        raise ValidationError(errors)
    return Edit(method, params)


def check_one_shot(params: Mapping[str, Any], *, stripe_id: str | None) -> dict[str, Any]:
    """``params`` checked as the request they ride with takes them (a create when the
    customer has no ``stripe_id``, else an update); raises one ``ValidationError`` keyed by
    parameter naming Stripe's rule (an attribute, an unknown parameter, a bad value)."""
    method = "update" if stripe_id else "create"
    allowed = ONE_SHOT[method]
    errors: dict[str, list[ValidationError]] = {}
    for name, value in params.items():
        spec = allowed.get(name)
        if spec is None:
            errors[name] = [_not_one_shot(name, method)]
            continue
        problems = check(value, spec, name)
        if value is None:
            problems = [ValidationError("%(field)s: give a value", "null", {"field": name})]
        if problems:
            errors[name] = problems
    if errors:
        raise ValidationError(errors)
    return dict(params)


def _not_one_shot(name: str, method: str) -> ValidationError:
    if name in schema.PUSHABLE:
        why = "is an attribute: set the customer's field instead"
    elif name in ONE_SHOT["create"]:
        why = "is taken when the customer is created only"
    else:
        why = f"is not a parameter Stripe takes on {method} (API version {schema.API_VERSION})"
    known = ", ".join(sorted(ONE_SHOT[method]))
    return ValidationError(
        "%(field)s: %(why)s; write-only parameters on %(method)s: %(known)s",
        code="unknown_param",
        params={"field": name, "why": why, "method": method, "known": known},
    )


def _param(name: str, local: Any, old: Any, spec: Spec) -> Any:
    """The parameter for a changed value (None: nothing to send after all)."""
    if name == "metadata":
        return metadata_diff(local, old) or None
    if _is_empty(local):
        clearable = spec.get("accepts_empty") or (spec["type"] == "string" and not spec.get("list"))
        if not clearable:
            raise ValidationError(CANNOT_CLEAR, code="cannot_clear", params={"field": name})
        return ""
    if isinstance(local, dict) and spec.get("fields") and not spec.get("accepts_empty"):
        return _object_diff(name, local, old or {}, spec) or None
    return as_param(local, spec)


def as_param(value: Any, spec: Spec) -> Any:
    """A column value shaped as the parameter: keys Stripe does not accept and nulls dropped."""
    fields = spec.get("fields")
    if isinstance(value, dict) and fields:
        return {
            key: as_param(item, fields[key])
            for key, item in value.items()
            if key in fields and item is not None
        }
    if isinstance(value, list) and fields:
        return [as_param(item, spec) for item in value]
    return value


def _object_diff(name: str, local: dict[str, Any], remote: dict[str, Any], spec: Spec) -> Any:
    """Changed keys of an object Stripe merges key by key (``invoice_settings``)."""
    changes: dict[str, Any] = {}
    for key, sub_spec in (spec.get("fields") or {}).items():
        new, old = local.get(key), remote.get(key)
        if new == old:
            continue
        if _is_empty(new):
            if not sub_spec.get("accepts_empty"):
                raise ValidationError(
                    CANNOT_CLEAR, code="cannot_clear", params={"field": f"{name}[{key}]"}
                )
            changes[key] = ""
        else:
            changes[key] = as_param(new, sub_spec)
    return changes


def metadata_diff(local: dict[str, Any] | None, remote: dict[str, Any] | None) -> dict[str, Any]:
    """Metadata keys to send: set or changed ones with their value, removed ones as ``""``."""
    local, remote = local or {}, remote or {}
    changes = {key: value for key, value in local.items() if remote.get(key) != value}
    changes.update({key: "" for key in remote if key not in local})
    return changes


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _same(a: Any, b: Any) -> bool:
    """Equal and of one type: ``True`` is not ``1``, nor ``1.0`` ``1`` (each is an edit)."""
    return type(a) is type(b) and bool(a == b)
