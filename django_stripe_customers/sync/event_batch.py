"""A page of events from the Events API, stored and applied in bulk.

A reconcile lists customer events a hundred at a time; applied one by one (``process_event``)
each costs about a dozen queries. Here a page is stored with one lookup and one insert, and
applied as a pull applies a page of customers (``pages``: one lock-and-read, one upsert per
shape of row). Per customer only its newest event of the page is applied (a
``customer.deleted`` wins: it is final); its older events of the page are recorded ``stale``
with it. Each applied event is judged against its row at its own time (``created``), as
``process_event`` judges it, so pages may be applied in any order. What a page cannot decide
(a row another transaction holds, an event of the same second as the row's other data, the
``WEBHOOK_REFETCH`` setting), and every event of a page whose bulk apply failed, is applied
event by event by ``process_event``, which records a failure on its event.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone as django_timezone

from ..accounts import Account
from ..conf import get_setting
from ..deletion import erase_if_configured
from ..descriptions import CUSTOMERS
from ..models import Customer, SyncStatus, WebhookEvent
from . import event_shape
from .events import CUSTOMER_EVENTS, FINAL, account_label, event_row, process_event
from .freshness import Verdict, newest
from .pages import lock_page_rows
from .pull import NOT_A_REREAD, Fetched, in_account, is_unchanged, merged_values, verdict_for
from .upsert import upsert

logger = logging.getLogger(__name__)
Status = WebhookEvent.Status
#: Written on every applied row besides its mirrored attributes (``deleted`` is left as it
#: is, as ``apply_customer`` leaves it: a deletion asked here stays until it is sent).
_BOOKKEEPING: Final = ("stripe_data", "sync_status", "sync_error", "synced_at", "remote_updated_at")
#: Written on a tombstone (a deletion of a customer with no row); on a row that appeared
#: meanwhile, only the flag and its times.
_TOMBSTONE: Final = ("deleted", "sync_error", "synced_at", "remote_updated_at")


@dataclass
class PageOutcome:
    """What storing and applying one page of events did."""

    applied: Counter[str] = field(default_factory=Counter)  # event type -> applied
    stale: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)  # malformed events, by id

    def add(self, other: PageOutcome) -> None:
        self.applied.update(other.applied)
        self.stale += other.stale
        self.failed += other.failed
        self.problems += other.problems


@dataclass(frozen=True)
class _Stored:
    pk: int
    status: str


def apply_page(payloads: list[dict[str, Any]], account: Account) -> PageOutcome:
    """Store a page of ``account``'s events (Stripe's order: newest first) and apply the
    customer events not applied yet."""
    outcome = PageOutcome()
    stored = _store(payloads, account, outcome)
    waiting = [
        payload
        for payload in payloads
        if payload["id"] in stored
        and stored[payload["id"]].status not in FINAL
        and payload["type"] in CUSTOMER_EVENTS
    ]
    waiting = list({payload["id"]: payload for payload in waiting}.values())
    if not waiting:
        return outcome
    alone = [stored[payload["id"]].pk for payload in waiting]
    if not get_setting("WEBHOOK_REFETCH"):  # that setting retrieves every customer instead
        bulk = PageOutcome()
        try:
            alone = _apply_in_bulk(waiting, stored, account, bulk)
        except Exception:  # rolled back: each event alone, and its failure recorded on it
            logger.exception("Applying a page of %d events in bulk failed", len(waiting))
        else:
            outcome.add(bulk)
    # Oldest first: the page lists newest first (those of one second in Stripe's order).
    position = {stored[payload["id"]].pk: n for n, payload in enumerate(waiting)}
    types = {stored[payload["id"]].pk: payload["type"] for payload in waiting}
    oldest_first = sorted(alone, key=position.__getitem__, reverse=True)
    _apply_alone(oldest_first, types, account, outcome)
    return outcome


def _store(
    payloads: list[dict[str, Any]], account: Account, outcome: PageOutcome
) -> dict[str, _Stored]:
    """Store the page's events not stored yet (as ``store_event`` would); the stored state of
    every well-formed one, by id."""
    not_after = time.time()
    good: dict[str, dict[str, Any]] = {}
    for payload in payloads:
        problem = event_shape.event_problem(payload, not_after=not_after)
        if problem is None:
            good[payload["id"]] = payload
        else:
            outcome.failed += 1
            outcome.problems.append(f"{payload.get('id', '?')}: {problem}")
    known = _stored(list(good))
    new = [
        event_row(payload, WebhookEvent.Source.EVENTS_API, account=account)
        for event_id, payload in good.items()
        if event_id not in known
    ]
    if new:
        WebhookEvent.objects.bulk_create(new, ignore_conflicts=True)  # a webhook may store one
        known = _stored(list(good))
    return known


def _stored(event_ids: list[str]) -> dict[str, _Stored]:
    rows = WebhookEvent.objects.filter(event_id__in=event_ids).values_list(
        "event_id", "pk", "status"
    )
    return {event_id: _Stored(pk, status) for event_id, pk, status in rows}


@dataclass
class _Customer:
    """A customer's events of the page: the one to apply (its newest; a deletion if it has
    one), the ids of the others, and its newest data (a deletion carries none)."""

    chosen: dict[str, Any]
    others: list[str] = field(default_factory=list)
    data: dict[str, Any] | None = None


def _by_customer(waiting: list[dict[str, Any]]) -> dict[str, _Customer]:
    found: dict[str, _Customer] = {}
    for payload in waiting:  # newest first
        stripe_id = str(payload["data"]["object"]["id"])
        deletion = payload["type"] == CUSTOMERS.deleted_event
        current = found.get(stripe_id)
        if current is None:
            current = found[stripe_id] = _Customer(payload)
        elif deletion and current.chosen["type"] != CUSTOMERS.deleted_event:
            current.others.append(current.chosen["id"])
            current.chosen = payload
        else:
            current.others.append(payload["id"])
        if not deletion and current.data is None:
            current.data = payload["data"]["object"]
    return found


class _Writes:
    """What a page's bulk apply writes, gathered before it is written."""

    def __init__(self) -> None:
        self.by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        self.tombstones: list[dict[str, Any]] = []
        self.deletions: list[tuple[int, datetime | None]] = []
        self.erased: list[str] = []  # Stripe ids of the rows deleted here
        self.times: list[tuple[int, datetime | None]] = []  # unchanged rows, a newer time
        self.statuses: dict[str, list[int]] = {Status.PROCESSED: [], Status.STALE: []}
        self.refused: list[tuple[int, str]] = []

    def row(self, values: dict[str, Any], row: dict[str, Any]) -> None:
        """A row to upsert, with the mirrored ``values`` it sets (rows of one page nearly
        always set the same ones: one upsert per shape)."""
        self.by_columns.setdefault(tuple(sorted(values)), []).append({**values, **row})


def _apply_in_bulk(
    waiting: list[dict[str, Any]],
    stored: dict[str, _Stored],
    account: Account,
    outcome: PageOutcome,
) -> list[int]:
    """Apply the page in one transaction; the event pks left to apply one by one."""
    customers = _by_customer(waiting)
    now = django_timezone.now()
    alone: list[int] = []
    writes = _Writes()
    with transaction.atomic():
        known, busy = lock_page_rows(list(customers))
        busy_ids = {stripe_id for stripe_id, _ in busy}
        for stripe_id, events in customers.items():
            event_pk = stored[events.chosen["id"]].pk
            customer = known.get(stripe_id)
            others = [stored[event_id].pk for event_id in events.others]
            if stripe_id in busy_ids:  # held by another transaction: each event alone
                alone += [event_pk, *others]
                continue
            if customer is not None and not in_account(customer, account):
                error = f"Not applied: {stripe_id} is a customer of {account_label(customer)}."
                writes.refused += [(pk, error) for pk in [event_pk, *others]]
                continue
            status = _decide(stripe_id, events, customer, account, now, writes)
            if status is None:  # the same second as the row's other data: retrieved alone
                alone.append(event_pk)
            else:
                writes.statuses[status].append(event_pk)
                if status == Status.PROCESSED:
                    outcome.applied[events.chosen["type"]] += 1
                else:
                    outcome.stale += 1
            writes.statuses[Status.STALE] += others  # older than the event applied with them
            outcome.stale += len(others)
        _write(writes, now)
    return alone


def _decide(
    stripe_id: str,
    events: _Customer,
    customer: Customer | None,
    account: Account,
    now: datetime,
    writes: _Writes,
) -> str | None:
    """The chosen event's status once its row's write (gathered in ``writes``) is done; None
    when it must be applied alone (its order against the row cannot be told)."""
    observed = event_shape.created_at(events.chosen)
    deleted = events.chosen["type"] == CUSTOMERS.deleted_event
    obj = (
        {"id": stripe_id, "object": CUSTOMERS.name, "deleted": True}
        if deleted
        else events.chosen["data"]["object"]
    )
    if customer is not None:
        verdict = verdict_for(customer, obj, Fetched(observed=observed), NOT_A_REREAD)
        if verdict is Verdict.REREAD:
            return None
        if verdict is Verdict.STALE:
            return Status.STALE
    remote_at = newest(customer.remote_updated_at if customer else None, observed)
    bookkeeping = {"sync_error": "", "synced_at": now, "remote_updated_at": remote_at}
    new = {**account.rows, "stripe_id": stripe_id, "sync_status": SyncStatus.SYNCED}
    if deleted:
        if customer is not None and not customer.deleted:
            writes.deletions.append((customer.pk, remote_at))
        elif customer is None and events.data is not None:  # created (or edited) and deleted
            data = events.data
            values = {**merged_values(None, data), "deleted": True}
            writes.row(values, {**new, "stripe_data": data, **bookkeeping})
        elif customer is None:  # its creation may come later: no event makes it live then
            writes.tombstones.append({**new, "deleted": True, "stripe_data": obj, **bookkeeping})
        writes.erased.append(stripe_id)
        return Status.PROCESSED
    values = merged_values(customer, obj)
    if customer is not None and is_unchanged(customer, obj, values):
        if remote_at != customer.remote_updated_at:  # later events of older data: stale
            writes.times.append((customer.pk, remote_at))
        return Status.PROCESSED
    pending = customer is not None and customer.sync_status == SyncStatus.PENDING
    status = SyncStatus.PENDING if pending else SyncStatus.SYNCED
    writes.row(values, {**new, "sync_status": status, "stripe_data": obj, **bookkeeping})
    return Status.PROCESSED


def _write(writes: _Writes, now: datetime) -> None:
    for columns, rows in writes.by_columns.items():
        upsert(Customer, rows, update=(*columns, *_BOOKKEEPING))
    upsert(Customer, writes.tombstones, update=_TOMBSTONE)
    for pk, remote_at in writes.deletions:
        Customer.objects.filter(pk=pk).update(
            deleted=True, sync_error="", synced_at=now, remote_updated_at=remote_at
        )
    if writes.erased:
        erase_if_configured(Customer.objects.filter(stripe_id__in=writes.erased))
    for pk, remote_at in writes.times:
        Customer.objects.filter(pk=pk).update(remote_updated_at=remote_at)
    for status, event_pks in writes.statuses.items():
        _finish(WebhookEvent.objects.filter(pk__in=event_pks), status, now)
    for event_pk, error in writes.refused:
        _finish(WebhookEvent.objects.filter(pk=event_pk), Status.REFUSED, now, error)


def _finish(events: QuerySet[WebhookEvent], status: str, now: datetime, error: str = "") -> None:
    events.update(status=status, processed_at=now, error=error, attempts=F("attempts") + 1)


def _apply_alone(
    event_pks: list[int], types: dict[int, str], account: Account, outcome: PageOutcome
) -> None:
    """``process_event`` for each (``types``: their types), in this order; a failure is
    recorded on its event."""
    for event_pk in event_pks:
        try:
            status = process_event(event_pk, client=account.via)
        except Exception:  # recorded on the event; the cursor stays for the next reconcile
            outcome.failed += 1
            continue
        if status == Status.STALE:
            outcome.stale += 1
        elif status == Status.PROCESSED:
            outcome.applied[types[event_pk]] += 1
