"""The outbox: which rows wait to reach Stripe, and who holds a request in flight.

The row is the outbox (``push``): a pending row is an edit not yet in Stripe, and a recorded
``push_intent`` a request sent and not yet answered. Here: the rows the sweep re-sends
(``overdue``) and the admin warns about (``stuck``); how long a push owns its request before
another may resend it (``intent_lease``, ``owner_is_gone``), and a holder giving it up
(``release``); when a push Stripe did not take yet is tried again (``note_next_attempt``).
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Any, Final

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from ..conf import get_setting
from ..models import Customer, SyncStatus
from ..stripe import StripeClient

#: Rows that can still be pushed: live ones, and deleted ones whose deletion was asked here.
_WAITING: Final = Q(deleted=False) | Q(delete_requested_at__isnull=False)

#: Added to the client's worst case to make the default lease (setting ``PUSH_LEASE``).
LEASE_MARGIN: Final = timedelta(seconds=10)


def intent_lease() -> timedelta:
    """How long a push owns its in-flight request before another push may take it over: the
    setting ``PUSH_LEASE`` (seconds), by default the client's worst case for one request (each
    try timing out, with the backoff between tries) plus a margin.

    Taking a request over too early is safe (it is resent with the same Idempotency-Key, and
    only the push still holding it applies the answer); the lease only spares that second call.
    """
    configured = get_setting("PUSH_LEASE")
    if configured is not None:
        return timedelta(seconds=float(configured))
    tries = int(get_setting("MAX_RETRIES")) + 1
    worst = float(get_setting("TIMEOUT")) * tries + StripeClient.MAX_RETRY_DELAY * (tries - 1)
    return timedelta(seconds=worst) + LEASE_MARGIN


def owner_is_gone(intent: dict[str, Any]) -> bool:
    """Whether the process that holds ``intent`` is known to be dead: it ran on this host and
    its process id is no longer running (a worker killed mid-request)."""
    if intent.get("host") != socket.gethostname() or not isinstance(intent.get("pid"), int):
        return False
    try:
        os.kill(intent["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, run by another user
        return False
    return False


def this_process() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def waiting() -> QuerySet[Customer]:
    """Rows with something to send: pending edits and deletions (``push --pending``)."""
    return Customer.objects.filter(_WAITING, sync_status=SyncStatus.PENDING)


def overdue(older_than: float) -> QuerySet[Customer]:
    """Rows whose push is overdue: pending (or with a request in flight) for longer than
    ``older_than`` seconds. What the sweep re-sends, and what the admin warns about."""
    threshold = timezone.now() - timedelta(seconds=older_than)
    return Customer.objects.filter(
        Q(sync_status=SyncStatus.PENDING, pending_since__lt=threshold) & _WAITING
        | Q(push_intent__isnull=False, pending_since__lt=threshold)
    )


def stuck(older_than: float) -> QuerySet[Customer]:
    """Rows pending or failed for longer than ``older_than`` seconds (a person should look)."""
    threshold = timezone.now() - timedelta(seconds=older_than)
    return Customer.objects.filter(
        _WAITING,
        sync_status__in=(SyncStatus.PENDING, SyncStatus.FAILED),
        pending_since__lt=threshold,
    )


def release(pk: int, owner: str) -> None:
    """``owner`` gives up the request it holds in flight (its retries ran out): the next push
    of the row takes it over at once and resends it with the same key, without waiting out
    the lease."""
    with transaction.atomic():
        row = Customer.objects.select_for_update().filter(pk=pk)
        intent = row.values_list("push_intent", flat=True).first()
        if intent and intent.get("owner") == owner:
            row.update(push_intent={**intent, "owner": "", "claimed_at": RELEASED_AT})


#: ``claimed_at`` of a released request: older than any lease.
RELEASED_AT: Final = "1970-01-01T00:00:00+00:00"


def note_next_attempt(pk: int, seconds: float) -> None:
    """Record when the push of row ``pk``, which Stripe did not take yet, is tried again (the
    admin's sync panel and ``status`` show it). The caller knows: the task's backoff, the
    sweep's interval."""
    at = timezone.now() + timedelta(seconds=seconds)
    Customer.objects.filter(pk=pk, sync_status=SyncStatus.PENDING).update(next_attempt_at=at)


def unsent_params(
    waiting: dict[str, Any] | None, sent: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The write-only parameters still to send: those given since the request was made."""
    left = {k: v for k, v in (waiting or {}).items() if (sent or {}).get(k, _NOTHING) != v}
    return left or None


_NOTHING = object()
