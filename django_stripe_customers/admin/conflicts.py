"""Two people on one change page: each saves what they changed, and a field both changed is a
conflict shown on the form, never a silent overwrite.

The page carries what it showed (``read``: the editable values when it was opened, signed so it
cannot be forged into another row's). On submit, against the row as it is now:

- a field the person did not change keeps what the row holds now (someone else's edit stays);
- metadata merges key by key: the keys the person set or removed are applied to the keys the
  row holds now;
- a field (or metadata key) both changed, to different values, is an error on that field naming
  both values; nothing is saved until the person reloads the page and applies their edit again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from django.core import signing

from ..metadata_patch import key_changes
from .fields import meaningful

SALT: Final = "django_stripe_customers.admin.read_values"


def sign_read(pk: int, values: Mapping[str, Any]) -> str:
    """The values a change page shows, for its hidden field."""
    shown = {name: _json(value) for name, value in values.items()}
    return signing.dumps({"pk": pk, "values": shown}, salt=SALT, compress=True)


def unsign_read(token: str, pk: int) -> dict[str, Any] | None:
    """The values the page showed, or None (no token, a forged one, another row's)."""
    try:
        read = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    if not isinstance(read, dict) or read.get("pk") != pk:
        return None
    values = read.get("values")
    return values if isinstance(values, dict) else None


@dataclass
class Resolution:
    """What a submit writes: ``values`` (field -> value) and the ``conflicts`` it cannot."""

    values: dict[str, Any] = field(default_factory=dict)
    conflicts: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field: (now, mine)


def resolve(read: Mapping[str, Any], mine: Mapping[str, Any], now: Mapping[str, Any]) -> Resolution:
    """The fields the person changed (``mine`` against ``read``), laid over the row ``now``."""
    result = Resolution()
    for name, value in mine.items():
        was, current = _json(read.get(name)), _json(now.get(name))
        if name == "metadata":
            _merge_metadata(result, was, _json(value), current)
            continue
        if _same(value, was):
            continue  # not changed on this page: the row keeps what it holds now
        if not _same(current, was) and not _same(current, value):
            result.conflicts[name] = (current, value)
            continue
        result.values[name] = value
    return result


def _merge_metadata(result: Resolution, was: Any, mine: Any, current: Any) -> None:
    changes, removed = key_changes(was, mine)
    if not changes and not removed:
        return
    was, current = dict(was or {}), dict(current or {})
    clashes = [
        key
        for key in [*changes, *removed]
        if current.get(key) != was.get(key) and current.get(key) != (mine or {}).get(key)
    ]
    if clashes:
        shown = {key: current.get(key) for key in clashes}
        yours = {key: (mine or {}).get(key) for key in clashes}
        result.conflicts["metadata"] = (shown, yours)
        return
    merged = {key: value for key, value in current.items() if key not in removed}
    merged.update(changes)
    result.values["metadata"] = merged


def _same(a: Any, b: Any) -> bool:
    return bool(meaningful(_json(a)) == meaningful(_json(b)))


def _json(value: Any) -> Any:
    """A value as the signed snapshot holds it (JSON: a user as its pk)."""
    pk = getattr(value, "pk", None)
    return pk if pk is not None else value
