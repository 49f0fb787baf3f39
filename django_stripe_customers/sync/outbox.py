"""The outbox: which rows wait to reach Stripe, and who holds a request in flight.

The row is the outbox (``push``): a pending row is an edit not yet in Stripe, and a recorded
``push_intent`` a request sent and not yet answered. Here: the rows the sweep re-sends
(``overdue``) and the admin warns about (``stuck``), and how long a push owns its request
before another may resend it (``intent_lease``, ``owner_is_gone``).
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Any, Final

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
