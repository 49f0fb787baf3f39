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
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from enum import Enum
from typing import Any, Final

from django.utils import timezone

from ..accounts import Account
from ..descriptions import CUSTOMERS
from ..models import StripeAccount, WebhookEvent
from ..stripe import InvalidRequestError, StripeClient
from .events import process_event, store_event
from .pages import PullResult
from .runs import pull_all

#: How long Stripe keeps events (its Events API: "events going back 30 days").
RETENTION: Final = timedelta(days=30)
#: A cursor this close to the retention's edge is treated as past it (clocks differ; the
#: oldest events go first).
RETENTION_MARGIN: Final = timedelta(hours=1)
#: The Events API's largest page.
PAGE: Final = 100
EVENTS_PATH: Final = "/v1/events"
Status = WebhookEvent.Status


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
        }


def reconcile(account: Account, *, parallel: int = 1, full: bool = False) -> ReconcileReport:
    """Bring ``account``'s rows up to date: from its events since the cursor, or (``full``,
    or no usable cursor) with a full pull in ``parallel`` streams."""
    started = time.monotonic()
    state = _state(account)
    reason = "asked for" if full else _why_not_events(state, timezone.now())
    if not reason:
        try:
            report = _from_events(account, state)
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
    cursor_at = before if newest is None else _when(newest)
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


def _from_events(account: Account, state: StripeAccount) -> ReconcileReport:
    """List the events newer than the cursor (oldest page first), store them, apply those not
    applied yet oldest first, then move the cursor to the newest listed."""
    report = ReconcileReport(account, Route.EVENTS)
    newest: dict[str, Any] | None = None
    event_ids: list[str] = []
    toward_newer = bool(state.events_cursor)  # pages come oldest first, else newest first
    for page in _pages_since(account.client(), state, report):
        if page and (toward_newer or newest is None):
            newest = page[0]  # each page lists newest first
        for payload in page:
            report.listed += 1
            store_event(payload, "events_api", account=account)
        ids = [str(payload["id"]) for payload in page]
        event_ids.extend(reversed(ids) if toward_newer else ids)
    if not toward_newer:
        event_ids.reverse()
    # Oldest first, in Stripe's order (events of one second are ordered by the list alone).
    waiting = dict(
        WebhookEvent.objects.filter(
            event_id__in=event_ids, status__in=(Status.RECEIVED, Status.FAILED)
        ).values_list("event_id", "pk")
    )
    types = dict(WebhookEvent.objects.filter(pk__in=waiting.values()).values_list("pk", "type"))
    for event_pk in [waiting[event_id] for event_id in event_ids if event_id in waiting]:
        event_type = types[event_pk]
        try:
            status = process_event(event_pk, client=account.via)
        except Exception:  # recorded on the event; the cursor stays for the next reconcile
            report.failed += 1
            continue
        if status == Status.STALE:
            report.stale += 1
        elif status == Status.PROCESSED:
            report.applied[event_type] = report.applied.get(event_type, 0) + 1
    if newest is not None and not report.failed:
        _move(state, str(newest["id"]), _when(newest))
    else:
        _move(state, state.events_cursor, state.events_cursor_at)
    report.cursor = state.events_cursor
    return report


def _pages_since(
    client: StripeClient, state: StripeAccount, report: ReconcileReport
) -> Iterator[list[dict[str, Any]]]:
    """The pages of customer events after the cursor: with its id, page after page toward the
    newest (``ending_before``); with only its time, every event since (newest first)."""
    params: dict[str, Any] = {"type": CUSTOMERS.event_filter, "limit": PAGE}
    if state.events_cursor:
        params["ending_before"] = state.events_cursor
    else:
        assert state.events_cursor_at is not None
        params["created[gte]"] = int(state.events_cursor_at.timestamp())
    while True:
        answer = client.request("GET", EVENTS_PATH, params)
        report.requests += 1
        data = list(answer.get("data") or [])
        yield data
        if not answer.get("has_more") or not data:
            return
        if "ending_before" in params:
            params["ending_before"] = data[0]["id"]  # the newest of this page
        else:
            params["starting_after"] = data[-1]["id"]


def _when(event: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(event["created"]), tz=dt_timezone.utc)


def _move(state: StripeAccount, cursor: str, cursor_at: datetime | None) -> None:
    StripeAccount.objects.filter(pk=state.pk).update(
        events_cursor=cursor, events_cursor_at=cursor_at, reconciled_at=timezone.now()
    )
    state.events_cursor, state.events_cursor_at = cursor, cursor_at
