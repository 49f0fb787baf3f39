"""Stripe events -> rows: store each event once, apply customer events, catch up after downtime.

Events are applied through the pull code (same mapping, same three-way merge, no echo). An
event older than the data its row holds (from an event, a pull or a push) is recorded as
``stale`` and changes nothing, so events delivered out of order never bring old data back.
Events of the same second as the row's data that disagree with it cannot be ordered: the
customer is retrieved instead. ``customer.deleted`` is final: no later event un-deletes, and
for a customer not mirrored yet it leaves a tombstone (it may arrive before
``customer.created``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone as django_timezone

from ..accounts import Account, KeyEntry, UnknownAccount, default_account, entries, find
from ..conf import get_setting
from ..descriptions import CUSTOMERS
from ..models import WebhookEvent
from ..stripe import StripeClient
from . import event_shape
from .connect import DEAUTHORIZED_EVENT, deauthorize
from .pull import NOT_A_REREAD, Applied, Fetched, apply_customer, reread

#: The event types applied here (``customer.created``, ``.updated``, ``.deleted``).
CUSTOMER_EVENTS: Final = CUSTOMERS.events
Status = WebhookEvent.Status


def store_event(
    payload: dict[str, Any],
    source: str = "webhook",
    *,
    not_after: float | None = None,
    account: Account | None = None,
    endpoint: KeyEntry | None = None,
) -> tuple[WebhookEvent, bool]:
    """Store an event once per id: ``(event, True)`` when new, ``(existing, False)`` if not.

    ``account``: the account it is of (a catch-up knows it); else, of ``endpoint`` (the key
    whose webhook secret signed it), the account the event names (a Connect event) or the
    key's own; else the account it names or the own account of its mode. An event of an
    account no key (or not that key) reaches, or of another mode, is stored ``refused``.
    Raises ``MalformedEvent`` when the payload is not an event (``event_shape``);
    ``not_after`` is the latest believable ``created`` (a webhook: its signature's time; else
    our clock).
    """
    problem = event_shape.event_problem(
        payload, not_after=time.time() if not_after is None else not_after
    )
    if problem is not None:
        raise MalformedEvent(problem)
    event_id = payload["id"]
    # A duplicate costs one indexed lookup of a few columns (not the stored payload).
    existing = (
        WebhookEvent.objects.filter(event_id=event_id)
        .only("pk", "event_id", "type", "status")
        .order_by()
        .first()
    )
    if existing is not None:
        return existing, False
    event = event_row(payload, source, account=account, endpoint=endpoint)
    try:
        with transaction.atomic():
            event.save(force_insert=True)
    except IntegrityError:  # the same event delivered twice at once: the other one stored it
        return WebhookEvent.objects.get(event_id=event_id), False
    return event, True


def event_row(
    payload: dict[str, Any],
    source: str,
    *,
    account: Account | None = None,
    endpoint: KeyEntry | None = None,
) -> WebhookEvent:
    """The row that stores a well-formed event (not saved): ``received`` when it is one to
    apply, ``ignored`` when its type is not handled, ``refused`` (and why) when it is of an
    account or mode not mirrored through ``account``/``endpoint`` (see ``store_event``)."""
    obj = (payload.get("data") or {}).get("object") or {}
    handled = payload["type"] in CUSTOMER_EVENTS
    status = Status.RECEIVED if handled or payload["type"] == DEAUTHORIZED_EVENT else Status.IGNORED
    where, error = event_account(payload, account, endpoint)
    return WebhookEvent(
        event_id=payload["id"],
        type=payload["type"],
        api_version=str(payload.get("api_version") or ""),
        livemode=bool(payload.get("livemode")),
        stripe_account=where,
        created=event_shape.created_at(payload),
        customer_stripe_id=str(obj.get("id") or "") if handled else "",
        payload=payload,
        source=source,
        status=Status.REFUSED if error else status,
        error=error,
    )


class MalformedEvent(ValueError):
    """A payload that is not a Stripe event to store (why: its message)."""


def record_refused(body: bytes, payload: Any, reason: str) -> WebhookEvent:
    """Record a signed payload refused as malformed, once per body: under its id when that can
    be stored, else under its digest; the payload itself is not kept (it may hold what the
    database cannot store), only its digest and size."""
    digest = hashlib.sha256(body).hexdigest()
    given = payload.get("id") if isinstance(payload, dict) else None
    event_id = given if _storable(given, event_shape.MAX_ID) else f"refused_{digest[:40]}"
    kind = payload.get("type") if isinstance(payload, dict) else None
    kind = kind if _storable(kind, event_shape.MAX_TYPE) else "(malformed)"
    event, _ = WebhookEvent.objects.get_or_create(
        event_id=event_id,
        defaults={
            "type": str(kind),
            "created": django_timezone.now(),
            "payload": {"sha256": digest, "bytes": len(body)},
            "status": Status.REFUSED,
            "error": f"not a Stripe event: {reason}",
        },
    )
    return event


def _storable(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and "\x00" not in value


def overdue_events(older_than: float, max_attempts: int = 10) -> QuerySet[WebhookEvent]:
    """Stored events not applied after ``older_than`` seconds: their message was lost, or they
    failed and ran out of retries. Events that failed ``max_attempts`` times are left for
    ``replay``."""
    threshold = django_timezone.now() - timedelta(seconds=older_than)
    return WebhookEvent.objects.filter(
        status__in=(Status.RECEIVED, Status.FAILED),
        received_at__lt=threshold,
        attempts__lt=max_attempts,
    )


def event_account(
    payload: dict[str, Any], account: Account | None, endpoint: KeyEntry | None
) -> tuple[str | None, str]:
    """The event's account as rows name it, and why it is refused (empty: it is not)."""
    live = bool(payload.get("livemode"))
    connected = payload.get("account")
    named = connected if isinstance(connected, str) and connected else None
    if account is None and endpoint is not None:
        if endpoint.livemode != live:
            return named, _mode_mismatch(live)
        if named is not None:
            if not endpoint.reaches(named):
                return named, f"Not applied: {named} is not mirrored through this endpoint's key."
            account = endpoint.connected_account(named)
        elif not endpoint.own:
            return None, "Not applied: the key's own account is not mirrored (OWN_ACCOUNT)."
        else:
            account = endpoint.own_account
    if account is not None:
        if account.livemode != live:
            return account.stripe_account, _mode_mismatch(live)
        return account.stripe_account, ""
    if not any(entry.livemode == live for entry in entries()):
        return named, _mode_mismatch(live)
    try:
        return find(named, live).stripe_account, ""
    except UnknownAccount as exc:
        return named, f"Not applied: {exc}"


def _mode_mismatch(live: bool) -> str:
    event_mode, key_mode = ("live", "test") if live else ("test", "live")
    return (
        f"livemode is {str(live).lower()}: a {event_mode}-mode event, but the API key is a "
        f"{key_mode}-mode key. Not applied: check which endpoint secret this webhook uses."
    )


def process_event(event_pk: int, *, client: StripeClient | None = None) -> str:
    """Apply one stored customer event (at most once); returns its final status.

    Failures are recorded on the event (``failed``, the error, one more attempt) and raised, so
    the task can retry; ``replay`` can process it again later.
    """
    event = WebhookEvent.objects.get(pk=event_pk)
    if event.status in FINAL:
        return event.status
    try:
        status = _process(event, client)
    except Exception as exc:  # recorded on the event, then raised as it was
        WebhookEvent.objects.filter(pk=event.pk).update(
            status=Status.FAILED, error=f"{type(exc).__name__}: {exc}", attempts=event.attempts + 1
        )
        raise
    return status


#: Statuses an event keeps (it is never applied again).
FINAL: Final = (Status.PROCESSED, Status.STALE, Status.IGNORED, Status.REFUSED)


def _process(event: WebhookEvent, client: StripeClient | None) -> str:
    account = find(event.stripe_account, event.livemode).through(client)
    if event.type == DEAUTHORIZED_EVENT:
        deauthorize(account)
        _finish(event, Status.PROCESSED)
        return Status.PROCESSED
    obj: dict[str, Any] = event.payload["data"]["object"]
    if event.type == CUSTOMERS.deleted_event:
        obj = {"id": obj["id"], "object": CUSTOMERS.name, "deleted": True}
    elif get_setting("WEBHOOK_REFETCH"):
        return _apply_fresh(event.pk, obj["id"], NOT_A_REREAD, account)
    status, seen = _apply(event.pk, obj, event.created, account)
    if status == Applied.REREAD:  # the same second as the row's data, and other data
        return _apply_fresh(event.pk, obj["id"], seen, account)
    return status


def _apply(
    event_pk: int, obj: dict[str, Any], observed: datetime, account: Account
) -> tuple[str, object]:
    """Apply ``obj`` (Stripe's state at ``observed``) for the event, unless it was processed
    meanwhile. When its order against the row cannot be told, the event is left as it is and
    the answer is ``("reread", the row's synced_at)``."""
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().get(pk=event_pk)
        if event.status in FINAL:
            return event.status, None  # processed meanwhile by a concurrent delivery
        deleted = bool(obj.get("deleted"))  # before its creation, maybe: a tombstone
        customer, outcome = apply_customer(
            obj, Fetched(observed=observed), account=account, tombstone=deleted
        )
        if outcome is Applied.REREAD:
            assert customer is not None
            return outcome, customer.synced_at
        if outcome is Applied.ELSEWHERE:  # the id is a row of another account: not applied
            assert customer is not None
            error = f"Not applied: {obj['id']} is a customer of {account_label(customer)}."
            _finish(event, Status.REFUSED, error)
            return Status.REFUSED, None
        status = Status.STALE if outcome is Applied.STALE else Status.PROCESSED
        _finish(event, status)
    return status, None


def account_label(customer: Any) -> str:
    """The account and mode of a row, as messages name them."""
    mode = "live" if customer.livemode else "test"
    return f"{customer.stripe_account or 'the own account'} ({mode})"


def _apply_fresh(event_pk: int, stripe_id: str, seen: object, account: Account) -> str:
    """Apply the customer as Stripe has it now (newer than the event) in the event's stead."""
    reread(stripe_id, seen, account=account)
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().get(pk=event_pk)
        if event.status not in FINAL:
            _finish(event, Status.PROCESSED)
        return event.status if event.status in FINAL else Status.PROCESSED


def _finish(event: WebhookEvent, status: str, error: str = "") -> None:
    WebhookEvent.objects.filter(pk=event.pk).update(
        status=status, processed_at=django_timezone.now(), error=error, attempts=event.attempts + 1
    )


@dataclass(frozen=True)
class Replayed:
    """One event processed again: its final status, or why it failed (``status`` failed)."""

    event_id: str
    type: str
    status: str
    error: str = ""


def replay(stored: QuerySet[WebhookEvent], *, client: StripeClient | None = None) -> list[Replayed]:
    """Process stored events again, oldest first (the admin's Reprocess and ``replay``).

    Each is made ``received`` again (a type not handled stays ``ignored``) and applied; a
    failure is recorded on the event and reported here, and the others go on.
    """
    replayed: list[Replayed] = []
    for event in stored.order_by("created", "id"):
        if event.status != Status.IGNORED:
            WebhookEvent.objects.filter(pk=event.pk).update(status=Status.RECEIVED)
        try:
            status = process_event(event.pk, client=client)
        except Exception as exc:  # recorded on the event by process_event
            error = f"{type(exc).__name__}: {exc}"
            replayed.append(Replayed(event.event_id, event.type, Status.FAILED, error))
            continue
        replayed.append(Replayed(event.event_id, event.type, status))
    return replayed


# -- catch-up from the Events API --------------------------------------------------------------


@dataclass
class CatchUpResult:
    listed: int = 0
    stored: int = 0
    processed: int = 0
    stale: int = 0
    failed: int = 0
    requests: int = 0


def catch_up(
    since: int | datetime, *, account: Account | None = None, client: StripeClient | None = None
) -> CatchUpResult:
    """Store and apply every ``customer.*`` event of ``account`` (by default the default
    account) created since ``since`` not yet stored.

    Pages through ``GET /v1/events`` (newest first, one page in memory at a time), then applies
    what is new oldest first, as it would have arrived.
    """
    account = (account or default_account()).through(client)
    result = CatchUpResult()
    moment = int(since.timestamp()) if isinstance(since, datetime) else int(since)
    for payload in _events_since(account.client(), moment, result):
        result.listed += 1
        if payload.get("type") not in CUSTOMER_EVENTS:
            continue
        if store_event(payload, "events_api", account=account)[1]:
            result.stored += 1
    unprocessed = WebhookEvent.objects.filter(
        status=Status.RECEIVED,
        created__gte=datetime.fromtimestamp(moment, tz=timezone.utc),
        **account.rows,
    ).order_by("created", "id")
    for event_pk in unprocessed.values_list("pk", flat=True):
        try:
            status = process_event(event_pk, client=account.via)
        except Exception:  # recorded on the event; catch-up goes on with the others
            result.failed += 1
            continue
        result.processed += status == Status.PROCESSED
        result.stale += status == Status.STALE
    return result


def _events_since(
    client: StripeClient, since: int, result: CatchUpResult
) -> Iterator[dict[str, Any]]:
    params = {"type": CUSTOMERS.event_filter, "created": {"gte": since}, "limit": 100}
    for data in client.iter_pages("/v1/events", params):
        result.requests += 1
        yield from data
