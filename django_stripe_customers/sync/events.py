"""Stripe events -> rows: store each event once, apply customer events, catch up after downtime.

Events are applied through the pull code (same mapping, same three-way merge, no echo). An
event older than the newest event already applied to its row is recorded as ``stale`` and
changes nothing, so events delivered out of order never bring old data back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

from django.db import IntegrityError, transaction
from django.utils import timezone as django_timezone

from ..conf import get_setting
from ..models import Customer, WebhookEvent
from ..stripe import StripeClient
from ..stripe.factory import get_client
from .pull import apply_customer, expansions

CUSTOMER_EVENTS: Final = frozenset({"customer.created", "customer.updated", "customer.deleted"})
Status = WebhookEvent.Status


def store_event(payload: dict[str, Any], source: str = "webhook") -> tuple[WebhookEvent, bool]:
    """Store an event once per id: ``(event, True)`` when new, ``(existing, False)`` if not.

    Raises ``ValueError`` when the payload is not an event (no ``id``/``type``/``created``).
    """
    event_id, event_type = payload.get("id"), payload.get("type")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
        raise ValueError("not a Stripe event: no id or type")
    try:
        created = datetime.fromtimestamp(int(payload["created"]), tz=timezone.utc)
    except (KeyError, TypeError, ValueError):
        raise ValueError("not a Stripe event: no valid created timestamp") from None
    # A duplicate costs one indexed lookup of a few columns (not the stored payload).
    existing = (
        WebhookEvent.objects.filter(event_id=event_id)
        .only("pk", "event_id", "type", "status")
        .order_by()
        .first()
    )
    if existing is not None:
        return existing, False
    obj = (payload.get("data") or {}).get("object") or {}
    handled = event_type in CUSTOMER_EVENTS
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                event_id=event_id,
                type=event_type,
                api_version=str(payload.get("api_version") or ""),
                livemode=bool(payload.get("livemode")),
                created=created,
                customer_stripe_id=str(obj.get("id") or "") if handled else "",
                payload=payload,
                source=source,
                status=Status.RECEIVED if handled else Status.IGNORED,
            )
    except IntegrityError:  # the same event delivered twice at once: the other one stored it
        return WebhookEvent.objects.get(event_id=event_id), False
    return event, True


def process_event(event_pk: int, *, client: StripeClient | None = None) -> str:
    """Apply one stored customer event (at most once); returns its final status.

    Failures are recorded on the event (``failed``, the error, one more attempt) and raised, so
    the task can retry; ``replay`` can process it again later.
    """
    event = WebhookEvent.objects.get(pk=event_pk)
    if event.status in (Status.PROCESSED, Status.STALE, Status.IGNORED):
        return event.status
    try:
        obj = _customer_object(event, client)
        status = _apply(event.pk, obj)
    except Exception as exc:  # recorded on the event, then raised as it was
        WebhookEvent.objects.filter(pk=event.pk).update(
            status=Status.FAILED, error=f"{type(exc).__name__}: {exc}", attempts=event.attempts + 1
        )
        raise
    return status


def _customer_object(event: WebhookEvent, client: StripeClient | None) -> dict[str, Any]:
    obj: dict[str, Any] = event.payload["data"]["object"]
    if get_setting("WEBHOOK_REFETCH") and event.type != "customer.deleted":
        return (client or get_client()).customers.retrieve(obj["id"], expand=expansions())
    return obj


def _apply(event_pk: int, obj: dict[str, Any]) -> str:
    now = django_timezone.now()
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().get(pk=event_pk)
        if event.status in (Status.PROCESSED, Status.STALE, Status.IGNORED):
            return event.status  # processed meanwhile by a concurrent delivery
        row = Customer.objects.select_for_update().filter(stripe_id=obj["id"]).first()
        if row is not None and row.remote_updated_at and event.created < row.remote_updated_at:
            status = Status.STALE
        else:
            if event.type == "customer.deleted":
                obj = {"id": obj["id"], "object": "customer", "deleted": True}
            apply_customer(obj)
            Customer.objects.filter(stripe_id=obj["id"]).update(remote_updated_at=event.created)
            status = Status.PROCESSED
        WebhookEvent.objects.filter(pk=event.pk).update(
            status=status, processed_at=now, error="", attempts=event.attempts + 1
        )
    return status


# -- catch-up from the Events API --------------------------------------------------------------


@dataclass
class CatchUpResult:
    listed: int = 0
    stored: int = 0
    processed: int = 0
    stale: int = 0
    failed: int = 0
    requests: int = 0


def catch_up(since: int | datetime, *, client: StripeClient | None = None) -> CatchUpResult:
    """Store and apply every ``customer.*`` event created since ``since`` not yet stored.

    Pages through ``GET /v1/events`` (newest first, one page in memory at a time), then applies
    what is new oldest first, as it would have arrived.
    """
    client = client or get_client()
    result = CatchUpResult()
    moment = int(since.timestamp()) if isinstance(since, datetime) else int(since)
    for payload in _events_since(client, moment, result):
        result.listed += 1
        if payload.get("type") in CUSTOMER_EVENTS and store_event(payload, "events_api")[1]:
            result.stored += 1
    unprocessed = WebhookEvent.objects.filter(
        status=Status.RECEIVED, created__gte=datetime.fromtimestamp(moment, tz=timezone.utc)
    ).order_by("created", "id")
    for event_pk in unprocessed.values_list("pk", flat=True):
        try:
            status = process_event(event_pk, client=client)
        except Exception:  # recorded on the event; catch-up goes on with the others
            result.failed += 1
            continue
        result.processed += status == Status.PROCESSED
        result.stale += status == Status.STALE
    return result


def _events_since(
    client: StripeClient, since: int, result: CatchUpResult
) -> Iterator[dict[str, Any]]:
    params = {"type": "customer.*", "created": {"gte": since}, "limit": 100}
    for data in client.iter_pages("/v1/events", params):
        result.requests += 1
        yield from data
