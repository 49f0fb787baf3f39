"""Which columns ``save()`` of a loaded instance writes: those its caller changed.

Code keeps model instances across a push (a view, a form, a loop); the push writes the Stripe
id, the snapshot and what Stripe filled in to the database, not to those instances. Saving one
afterwards must be an ordinary edit: it writes the fields its caller assigned (even to the
value they had) or edited in place since the instance was loaded or last saved, and leaves
every other column as the database has it.

Loading must stay cheap (a pull loads thousands of rows): scalars are kept by reference (they
are immutable), JSON values as ``marshal`` bytes (a C copy, so in-place edits are seen).
"""

from __future__ import annotations

import marshal
from collections.abc import Collection, Iterable
from typing import Any

from django.db import models

#: Instance attribute holding ``{attname: value as loaded or last saved}`` (JSON values as
#: ``_Frozen`` bytes).
LOADED_ATTRIBUTE = "_saved_fields_loaded"
#: Instance attribute holding the attnames assigned since (even to the value they had).
ASSIGNED_ATTRIBUTE = "_saved_fields_assigned"

_JSON_CONTAINERS = (dict, list)


class _Frozen(bytes):
    """A JSON value as ``marshal`` bytes."""


def _freeze(value: Any) -> Any:
    if type(value) in _JSON_CONTAINERS:
        try:
            return _Frozen(marshal.dumps(value))
        except ValueError:  # not plain JSON (set in code): compared as it is
            return value
    return value


def _differs(current: Any, kept: Any) -> bool:
    if type(kept) is _Frozen:
        try:
            if marshal.dumps(current) == kept:
                return False
        except ValueError:
            return True
        # bytes this module made from loaded JSON: the same data, maybe in another order
        return bool(marshal.loads(kept) != current)  # noqa: S302
    return bool(current != kept)


def note_assignment(instance: models.Model, attname: str) -> None:
    """Record that ``attname`` was assigned after the instance was loaded (``__setattr__``).

    The set is replaced, never changed in place, so a ``copy.copy`` of the instance keeps its
    own."""
    state = instance.__dict__
    if LOADED_ATTRIBUTE in state:
        state[ASSIGNED_ATTRIBUTE] = state.get(ASSIGNED_ATTRIBUTE, frozenset()) | {attname}


def tracked_fields(
    model: type[models.Model], untracked: Collection[str]
) -> list[models.Field[Any, Any]]:
    """The concrete, non-primary-key fields a save may write (``untracked`` names excluded)."""
    return [
        field
        for field in model._meta.concrete_fields
        if not field.primary_key and field.name not in untracked
    ]


def remember(
    instance: models.Model, fields: Iterable[models.Field[Any, Any]], *, replace: bool = False
) -> None:
    """Record the current values of ``fields`` (those loaded) as the instance's loaded state."""
    data = instance.__dict__
    current: dict[str, Any] = {} if replace else dict(data.get(LOADED_ATTRIBUTE) or {})
    remembered = []
    for field in fields:
        attname = field.attname
        if attname in data:  # absent: deferred, not loaded
            current[attname] = _freeze(data[attname])
            remembered.append(attname)
    data[LOADED_ATTRIBUTE] = current
    assigned = data.get(ASSIGNED_ATTRIBUTE, frozenset())
    data[ASSIGNED_ATTRIBUTE] = frozenset() if replace else assigned.difference(remembered)


def loaded_state(instance: models.Model) -> dict[str, Any] | None:
    """What ``remember`` recorded, or ``None`` for an instance never loaded nor saved."""
    state: dict[str, Any] | None = instance.__dict__.get(LOADED_ATTRIBUTE)
    return state


def loaded_value(instance: models.Model, attname: str, default: Any = None) -> Any:
    """The value ``attname`` had when the instance was loaded or last saved (a copy)."""
    kept = (loaded_state(instance) or {}).get(attname, default)
    return marshal.loads(kept) if type(kept) is _Frozen else kept  # noqa: S302 (our own bytes)


def changed_fields(
    instance: models.Model, fields: Iterable[models.Field[Any, Any]]
) -> list[str] | None:
    """Names of ``fields`` assigned since the instance was loaded, or whose value differs
    from the loaded state (a JSON value edited in place); ``None`` when the instance has no
    loaded state (then every field is to be written)."""
    state = loaded_state(instance)
    if state is None:
        return None
    data = instance.__dict__
    assigned = data.get(ASSIGNED_ATTRIBUTE, frozenset())
    changed = []
    for field in fields:
        attname = field.attname
        if attname in assigned:
            changed.append(field.name)
        elif attname in state:
            if _differs(getattr(instance, attname), state[attname]):
                changed.append(field.name)
        elif attname in data:  # loaded deferred, then assigned: the caller's value
            changed.append(field.name)
    return changed
