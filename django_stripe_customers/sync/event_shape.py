"""What a Stripe event must look like before it is stored or applied.

A valid signature says who sent the bytes, not that they are the data they claim to be (a bug on
either side, a replayed test fixture, a payload hand-signed with a leaked secret). Each event is
checked as data: an object with a string ``id`` and ``type`` within the columns' lengths, an
integer ``created`` no later than the delivery was signed (Stripe creates an event before it
delivers it; ``MAX_AHEAD`` allows for its clocks), ``livemode`` a boolean, ``data.object`` an
object whose ``id`` fits, and no NUL character anywhere (PostgreSQL cannot store one). What is
not is refused (400 at the webhook, recorded as ``refused``), never stored as received.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Final

#: The longest event id, type and object id stored (the columns' lengths).
MAX_ID: Final = 255
MAX_TYPE: Final = 100
MAX_VERSION: Final = 64
#: How far an event's ``created`` may be ahead of the moment its delivery was signed (or, for
#: the Events API, of our clock), in seconds.
MAX_AHEAD: Final = 300
#: Before Stripe existed: no event is older.
EARLIEST: Final = int(datetime(2010, 1, 1, tzinfo=timezone.utc).timestamp())


def event_problem(payload: Any, *, not_after: float) -> str | None:
    """Why ``payload`` is not a Stripe event to store, or None. ``not_after``: the latest
    believable ``created`` (the signature's timestamp, or our clock, plus ``MAX_AHEAD``)."""
    if not isinstance(payload, Mapping):
        return "the body is not a JSON object"
    for name, limit in (("id", MAX_ID), ("type", MAX_TYPE)):
        value = payload.get(name)
        if not isinstance(value, str) or not value:
            return f"{name}: must be a non-empty string"
        if len(value) > limit:
            return f"{name}: at most {limit} characters (got {len(value)})"
    created = payload.get("created")
    if not isinstance(created, int) or isinstance(created, bool):
        return f"created: must be an integer (unix seconds), got {type(created).__name__}"
    if not EARLIEST <= created <= not_after + MAX_AHEAD:
        return f"created: {created} is not a time this event can have been created at"
    if not isinstance(payload.get("livemode", False), bool):
        return "livemode: must be true or false"
    version = payload.get("api_version")
    if version is not None and (not isinstance(version, str) or len(version) > MAX_VERSION):
        return f"api_version: must be a string of at most {MAX_VERSION} characters"
    data = payload.get("data")
    if not isinstance(data, Mapping) or not isinstance(data.get("object"), Mapping):
        return "data.object: must be an object"
    object_id = data["object"].get("id")
    if not isinstance(object_id, str) or not 0 < len(object_id) <= MAX_ID:
        return f"data.object.id: must be a string of 1 to {MAX_ID} characters"
    where = _nul_in(payload, "")
    if where is not None:
        return f"{where or 'the event'}: contains a NUL character"
    return None


def _nul_in(value: Any, path: str) -> str | None:
    """The path of the first string (key or value) holding a NUL, or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return inner
            found = _nul_in(item, inner)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_in(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def created_at(payload: Mapping[str, Any]) -> datetime:
    """When Stripe created the event (its ``created``), as an aware datetime in UTC."""
    return datetime.fromtimestamp(int(payload["created"]), tz=timezone.utc)
