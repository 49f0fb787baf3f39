"""A local save marks the row pending and schedules its push once the transaction commits.

Also the app's public signals: ``customer_pushed`` (sender ``Customer``, ``customer``,
``created``) and ``customer_push_failed`` (sender ``Customer``, ``customer``, ``error``).

The pull code writes with ``QuerySet.update`` and ``bulk_create``, which send no signals, so a
pull never marks a row pending (no echo back to Stripe).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import DateTimeField, F, QuerySet, Value
from django.db.models.functions import Coalesce
from django.db.models.signals import post_save, pre_save
from django.dispatch import Signal, receiver
from django.utils import timezone

from . import conf
from .models import Customer, SyncStatus
from .tasks import enqueue_push

logger = logging.getLogger("django_stripe_customers.push")

customer_pushed = Signal()
customer_push_failed = Signal()


@receiver(pre_save, sender=Customer, dispatch_uid="stripe_customers_mark_pending")
def mark_saved_customer_pending(sender: type[Customer], instance: Customer, **kwargs: Any) -> None:
    """Part of the same save (no extra query, no commit): pending, one version newer."""
    if kwargs.get("raw"):  # loaddata
        return
    instance.sync_status = SyncStatus.PENDING
    if instance._state.adding:
        instance.pending_since = instance.pending_since or timezone.now()
        instance.local_version = (instance.local_version or 0) + 1
    else:  # in the database: this instance's copies of both may be stale
        instance.pending_since = Coalesce(
            F("pending_since"), Value(timezone.now(), output_field=DateTimeField())
        )
        instance.local_version = F("local_version") + 1  # concurrent saves never share one


@receiver(post_save, sender=Customer, dispatch_uid="stripe_customers_schedule_push")
def schedule_push_after_save(sender: type[Customer], instance: Customer, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return
    if not isinstance(instance.local_version, int):
        instance.refresh_from_db(fields=["local_version", "pending_since"])
    if conf.get_setting("PUSH_ON_SAVE"):
        pk = instance.pk
        transaction.on_commit(lambda: enqueue_push(pk))


def mark_pending(queryset: QuerySet[Customer]) -> int:
    """Mark rows changed outside ``save()`` as pending and schedule their push."""
    pks = list(queryset.values_list("pk", flat=True))
    count = Customer.objects.filter(pk__in=pks).update(
        sync_status=SyncStatus.PENDING,
        local_version=F("local_version") + 1,
        pending_since=timezone.now(),
    )
    if conf.get_setting("PUSH_ON_SAVE"):
        for pk in pks:
            transaction.on_commit(partial(enqueue_push, pk))
    return count
