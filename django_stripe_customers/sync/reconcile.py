"""Reconcile at the cost of what changed: apply every customer event since the account's
cursor (the newest event applied), then move the cursor.

Stripe keeps events for 30 days. With no cursor yet, a cursor older than that, or a cursor
whose event Stripe no longer has (a gap: events are missing between it and now), the
reconcile is a full pull instead, and the cursor restarts at the newest event listed just
before the pull began (what changes during the pull is applied by the next reconcile; what the
pull already wrote is then ``stale``). Events that fail to apply keep the cursor where it was,
so the next reconcile lists them again (those applied are stored once and not applied twice).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final

from django.utils import timezone

from ..accounts import Account
from ..descriptions import CUSTOMERS
from ..models import StripeAccount
from ..stripe import InvalidRequestError, StripeClient
from .event_batch import PageOutcome, apply_page
from .event_listing import PATH as EVENTS_PATH
from .event_listing import EventListing
from .event_shape import created_at
from .pages import PullResult
from .runs import pull_all

#: How long Stripe keeps events (its Events API: "events going back 30 days").
RETENTION: Final = timedelta(days=30)
#: A cursor this close to the retention's edge is treated as past it (clocks differ; the
#: oldest events go first).
RETENTION_MARGIN: Final = timedelta(hours=1)


class Route(str, Enum):
    """How a reconcile brought the mirror up to date."""

    EVENTS = "events"
    FULL_PULL = "full_pull"

    def __str__(self) -> str:
        return self.value


@dataclass
class ReconcileReport:
    """What a reconcile of one account did and what it cost."""

    account: Account
    route: Route
    reason: str = ""  # why a full pull
    listed: int = 0  # events listed
    applied: dict[str, int] = field(default_factory=dict)  # event type -> applied
    stale: int = 0
    failed: int = 0
    requests: int = 0
    seconds: float = 0.0
    pull: PullResult | None = None
    cursor: str = ""
    problems: list[str] = field(default_factory=list)  # events that could not be stored

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": str(self.account),
            "route": str(self.route),
            "reason": self.reason,
            "listed": self.listed,
            "applied": dict(self.applied),
            "stale": self.stale,
            "failed": self.failed,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "pull": None if self.pull is None else self.pull.as_dict(),
            "cursor": self.cursor,
            "problems": list(self.problems),
        }


def reconcile(account: Account, *, parallel: int = 1, full: bool = False) -> ReconcileReport:
    """Bring ``account``'s rows up to date: from its events since the cursor (listed in
    ``parallel`` streams), or (``full``, or no usable cursor) with a full pull in ``parallel``
    streams."""
    started = time.monotonic()
    state = _state(account)
    reason = "asked for" if full else _why_not_events(state, timezone.now())
    if not reason:
        try:
            report = _from_events(account, state, parallel)
        except InvalidRequestError as exc:  # Stripe: 400 resource_missing, for a list cursor
            if exc.code != "resource_missing" and exc.http_status != 404:
                raise
            reason = (
                f"Stripe no longer has the cursor's event {state.events_cursor} (a gap: the "
                "events since it cannot all be listed)"
            )
        else:
            report.seconds = time.monotonic() - started
            return report
    report = _full_pull(account, state, reason, parallel)
    report.seconds = time.monotonic() - started
    return report


def _state(account: Account) -> StripeAccount:
    state, _ = StripeAccount.objects.get_or_create(
        **account.rows, defaults={"connected": account.connected}
    )
    return state


def _why_not_events(state: StripeAccount, now: datetime) -> str:
    """Why the events cannot bring the account up to date ("" when they can)."""
    if state.events_cursor_at is None:
        return "no cursor yet (a first reconcile)"
    if state.events_cursor_at < now - RETENTION + RETENTION_MARGIN:
        return (
            f"the cursor ({state.events_cursor_at:%Y-%m-%d %H:%M} UTC) is older than Stripe "
            "keeps events (30 days)"
        )
    return ""


def _full_pull(
    account: Account, state: StripeAccount, reason: str, parallel: int
) -> ReconcileReport:
    """A full pull, and the cursor restarted at the newest event listed before it."""
    before = timezone.now()
    newest = _newest_event(account.client())
    result = pull_all(account=account, parallel=parallel)
    cursor_at = before if newest is None else created_at(newest)
    _move(state, str(newest["id"]) if newest else "", cursor_at)
    return ReconcileReport(
        account,
        Route.FULL_PULL,
        reason=reason,
        requests=result.requests + 1,
        pull=result,
        cursor=state.events_cursor,
    )


def _newest_event(client: StripeClient) -> dict[str, Any] | None:
    page = client.request("GET", EVENTS_PATH, {"type": CUSTOMERS.event_filter, "limit": 1})
    data = page.get("data") or []
    return dict(data[0]) if data else None


def _from_events(account: Account, state: StripeAccount, streams: int) -> ReconcileReport:
    """List the events newer than the cursor in ``streams`` streams, store and apply each
    page as it comes (``event_batch``), then move the cursor to the newest listed, unless an
    event failed (the next reconcile lists it again)."""
    report = ReconcileReport(account, Route.EVENTS)
    since = 0 if state.events_cursor_at is None else int(state.events_cursor_at.timestamp())
    listing = EventListing(account.client(), state.events_cursor, since, streams)
    outcome = PageOutcome()
    try:
        for page in listing.pages():
            report.listed += len(page)
            outcome.add(apply_page(page, account))
    finally:
        report.requests = listing.requests
    report.applied = dict(outcome.applied)
    report.stale, report.failed = outcome.stale, outcome.failed
    report.problems = outcome.problems
    newest = listing.newest
    if newest is not None and not report.failed:
        _move(state, str(newest["id"]), created_at(newest))
    else:
        _move(state, state.events_cursor, state.events_cursor_at)
    report.cursor = state.events_cursor
    return report


def _move(state: StripeAccount, cursor: str, cursor_at: datetime | None) -> None:
    StripeAccount.objects.filter(pk=state.pk).update(
        events_cursor=cursor, events_cursor_at=cursor_at, reconciled_at=timezone.now()
    )
    state.events_cursor, state.events_cursor_at = cursor, cursor_at
