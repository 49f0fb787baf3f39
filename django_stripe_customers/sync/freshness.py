"""Whether remote data is newer than what a row holds, at Stripe's one-second resolution.

Every view of a customer has a time on Stripe's clock: an event its ``created``, an answer the
``Date`` of its response. A row keeps the time of the newest view it applied
(``remote_updated_at``). Later data is applied, earlier data is stale. Within one second the
order cannot be told by Stripe's clock. Data that agrees with the row is applied (it
contradicts nothing). Data fetched by a request sent after the row was last written is newer
(``synced_at`` against the request's send time, on our clocks, with ``CLOCK_SKEW`` allowed
between hosts). Otherwise it is re-read: a retrieve sent now sees everything already written.

A customer deleted in Stripe stays deleted: nothing un-deletes a row. No time read from Stripe
counts for more than our clock plus ``CLOCK_SKEW``, and a row's time ahead of that is repaired by
the next view: a time that ran ahead cannot freeze a row.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Final

#: How far apart the clocks of two hosts writing rows may be (NTP keeps them far closer); also
#: how far ahead of ours a time read from Stripe may be (a ``Date``, an event's ``created``).
CLOCK_SKEW: Final = timedelta(seconds=1)


def bounded(at: datetime | None, now: datetime | None = None) -> datetime | None:
    """A time read from Stripe, no later than our clock plus ``CLOCK_SKEW``: a time ahead of
    that (an event created "tomorrow", a misread ``Date``) would make every later view of the
    customer look stale."""
    if at is None:
        return None
    return min(at, (now or datetime.now(timezone.utc)) + CLOCK_SKEW)


def trusted(at: datetime | None, now: datetime | None = None) -> datetime | None:
    """A row's time, or None when it is ahead of our clock (left by data read before times
    were bounded): unknown, so the next view of the customer repairs it."""
    if at is None or at > (now or datetime.now(timezone.utc)) + CLOCK_SKEW:
        return None
    return at


class Verdict(enum.Enum):
    APPLY = "apply"
    STALE = "stale"  # older than what the row holds: dropped
    REREAD = "reread"  # the same second and a different state: retrieve it again


def as_datetime(unix_time: int | None) -> datetime | None:
    return None if unix_time is None else datetime.fromtimestamp(unix_time, tz=timezone.utc)


def agrees(obj: Mapping[str, Any], snapshot: Mapping[str, Any] | None) -> bool:
    """Whether two views of a customer agree on every attribute both carry."""
    if not snapshot:
        return True
    return all(obj[name] == snapshot[name] for name in obj.keys() & snapshot.keys())


def judge(
    obj: Mapping[str, Any],
    observed_at: datetime | None,
    *,
    sent_at: datetime | None,
    row_deleted: bool,
    row_observed_at: datetime | None,
    row_written_at: datetime | None,
    row_snapshot: Mapping[str, Any] | None,
) -> Verdict:
    """What to do with ``obj`` (Stripe's customer as of ``observed_at``, fetched by a request
    sent at ``sent_at``, None for an event) for a row.

    ``observed_at`` None (no ``Date``, an idempotent replay) and a row with no time yet are
    treated as ordered: the data is applied, as before times were kept.
    """
    if obj.get("deleted") is True:
        return Verdict.APPLY  # a deletion is final, whenever it is learnt
    if row_deleted:
        return Verdict.STALE
    observed_at, row_observed_at = bounded(observed_at), trusted(row_observed_at)
    if observed_at is None or row_observed_at is None or observed_at > row_observed_at:
        return Verdict.APPLY
    if observed_at < row_observed_at:
        return Verdict.STALE
    if agrees(obj, row_snapshot):
        return Verdict.APPLY
    written_before = (
        sent_at is not None and row_written_at is not None and row_written_at < sent_at - CLOCK_SKEW
    )
    return Verdict.APPLY if written_before else Verdict.REREAD


def newest(current: datetime | None, observed_at: datetime | None) -> datetime | None:
    """The row's time after applying data observed at ``observed_at`` (neither ahead of our
    clock: ``bounded``, ``trusted``)."""
    current, observed_at = trusted(current), bounded(observed_at)
    if current is None:
        return observed_at
    if observed_at is None:
        return current
    return max(current, observed_at)
