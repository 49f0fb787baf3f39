"""Which columns ``save()`` of a loaded instance writes: those its caller changed.

Code keeps model instances across a push (a view, a form, a loop); the push writes the Stripe
id, the snapshot and what Stripe filled in to the database, not to those instances. Saving one
afterwards must be an ordinary edit: it writes the fields its caller assigned (even to the
value they had) or edited in place since the instance was loaded or last saved, and leaves
every other column as the database has it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from django.db import models

#: Instance attribute holding ``{attname: value as loaded or last saved}``.
LOADED_ATTRIBUTE = "_saved_fields_loaded"
#: Instance attribute holding the attnames assigned since (even to the value they had).
ASSIGNED_ATTRIBUTE = "_saved_fields_assigned"


def note_assignment(instance: models.Model, attname: str) -> None:
    """Record that ``attname`` was assigned after the instance was loaded (``__setattr__``).

    The set is replaced, never changed in place, so a ``copy.copy`` of the instance keeps its
    own."""
    state = instance.__dict__
    if LOADED_ATTRIBUTE in state:
        state[ASSIGNED_ATTRIBUTE] = state.get(ASSIGNED_ATTRIBUTE, frozenset()) | {attname}


def json_copy(value: Any) -> Any:
    """A copy of a JSON value deep enough that editing the original in place leaves it alone."""
    if isinstance(value, dict):
        return {key: json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_copy(item) for item in value]
    return value


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
    """Record the current values of ``fields`` (not deferred) as the instance's loaded state."""
    deferred = instance.get_deferred_fields()
    current: dict[str, Any] = {} if replace else dict(loaded_state(instance) or {})
    remembered = set()
    for field in fields:
        if field.attname not in deferred:
            current[field.attname] = json_copy(getattr(instance, field.attname))
            remembered.add(field.attname)
    state = instance.__dict__
    state[LOADED_ATTRIBUTE] = current
    assigned = state.get(ASSIGNED_ATTRIBUTE, frozenset())
    state[ASSIGNED_ATTRIBUTE] = frozenset() if replace else assigned - remembered


def loaded_state(instance: models.Model) -> dict[str, Any] | None:
    """What ``remember`` recorded, or ``None`` for an instance never loaded nor saved."""
    state: dict[str, Any] | None = instance.__dict__.get(LOADED_ATTRIBUTE)
    return state


def changed_fields(
    instance: models.Model, fields: Iterable[models.Field[Any, Any]]
) -> list[str] | None:
    """Names of ``fields`` assigned since the instance was loaded, or whose value differs
    from the loaded state (a JSON value edited in place); ``None`` when the instance has no
    loaded state (then every field is to be written)."""
    state = loaded_state(instance)
    if state is None:
        return None
    deferred = instance.get_deferred_fields()
    assigned = instance.__dict__.get(ASSIGNED_ATTRIBUTE, frozenset())
    return [
        field.name
        for field in fields
        if field.attname in assigned
        or (field.attname in state and getattr(instance, field.attname) != state[field.attname])
        # loaded deferred, then assigned: the caller's value
        or (field.attname not in state and field.attname not in deferred)
    ]
