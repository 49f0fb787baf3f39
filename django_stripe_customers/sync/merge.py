"""Three-way merge of a row's local edits, its last synced snapshot and fresh remote data.

Pure functions over plain dicts of column values: a field the row changed since the snapshot
(``base``) keeps its local value (it is still to be pushed); every other field takes the remote
value. Metadata merges key by key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

_ABSENT: Any = object()


Metadata = Mapping[str, Any] | None


def merge_metadata(local: Metadata, base: Metadata, remote: Metadata) -> dict[str, Any]:
    """Key by key: keys set, changed or removed locally keep the local state; others remote's."""
    local, base, remote = local or {}, base or {}, remote or {}
    merged = dict(remote)
    for key in set(local) | set(base):
        if local.get(key, _ABSENT) == base.get(key, _ABSENT):
            continue  # not edited locally: remote's value (or its removal) stands
        if key in local:
            merged[key] = local[key]
        else:
            merged.pop(key, None)
    return merged


def merge(
    local: Mapping[str, Any],
    base: Mapping[str, Any],
    remote: Mapping[str, Any],
    writable: Iterable[str],
) -> dict[str, Any]:
    """Column values to store: ``remote``, with the local edits of ``writable`` fields kept.

    ``local`` holds the row's current values, ``base`` the values of its last synced snapshot
    and ``remote`` the fresh object's; only fields present in ``remote`` are returned (and the
    locally edited ones).
    """
    merged = dict(remote)
    for name in writable:
        if name == "metadata" and ("metadata" in remote or "metadata" in base):
            merged[name] = merge_metadata(local.get(name), base.get(name), remote.get(name))
        elif name in local and name in base and local[name] != base[name]:
            merged[name] = local[name]
    return merged
