"""Metadata written key by key, in the ``UPDATE`` itself: two editors of different keys both keep
theirs.

Stripe merges ``metadata`` key by key (a key sent is set, one sent as ``""`` unset, the others
kept). A save that wrote the whole column would undo a key another process added since this
instance was loaded, locally and then in Stripe (its push would unset it). ``MetadataPatch``
makes the column's new value from its value at the moment of the write: on PostgreSQL
``(metadata - removed) || changes`` (jsonb), on SQLite ``json_patch(metadata, patch)`` (RFC 7396:
a null removes a key). No read-modify-write in Python, no lock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from django.db.models import F, Func, JSONField

#: The databases whose JSON functions make the patch (others write the whole value).
SUPPORTED: Final = frozenset({"postgresql", "sqlite"})


def key_changes(
    loaded: Mapping[str, Any] | None, current: Mapping[str, Any] | None
) -> tuple[dict[str, Any], list[str]]:
    """``(keys set or changed, keys removed)`` from the value loaded to the current one."""
    loaded, current = loaded or {}, current or {}
    changes = {key: value for key, value in current.items() if loaded.get(key) != value}
    return changes, [key for key in loaded if key not in current]


class MetadataPatch(Func):
    """The column with ``changes`` set and ``removed`` unset, computed by the database."""

    output_field = JSONField()

    def __init__(self, column: str, changes: Mapping[str, Any], removed: Iterable[str]) -> None:
        super().__init__(F(column), output_field=JSONField())
        self.changes, self.removed = dict(changes), list(removed)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.source_expressions[0])
        sql = f"((COALESCE({column}, '{{}}'::jsonb) - %s::text[]) || %s::jsonb)"
        return sql, [*params, self.removed, json.dumps(self.changes)]

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        column, params = compiler.compile(self.source_expressions[0])
        patch = {**self.changes, **dict.fromkeys(self.removed)}
        return f"json_patch(COALESCE({column}, '{{}}'), %s)", [*params, json.dumps(patch)]
