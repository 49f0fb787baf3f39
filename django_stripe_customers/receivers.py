"""The app's signal receivers: a local save marks its row pending and schedules its push.

Connected by ``AppConfig.ready()``. A save marks the row pending in the same statement (no
extra query, no commit); once the transaction commits, the push runs as ``PUSH_MODE`` says.
Rows marked pending outside ``save()`` (bulk writes: ``managers``) and the slices of a
partitioned pull are scheduled the same way. The pull code writes with ``write_from_stripe``
and ``bulk_create`` of synced rows, which mark nothing, so a pull never marks a row pending (no
echo).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone

from . import conf
from .bookkeeping import SyncStatus, marked_pending, pending_update
from .models import Customer, PullRun
from .sync.runs import slices_requested
from .tasks import enqueue_push, enqueue_slice


@receiver(pre_save, sender=Customer, dispatch_uid="stripe_customers_mark_pending")
def mark_saved_customer_pending(sender: type[Customer], instance: Customer, **kwargs: Any) -> None:
    """Part of the same save (no extra query, no commit): pending, one version newer."""
    if kwargs.get("raw"):  # loaddata
        return
    if instance._state.adding:
        instance.sync_status = SyncStatus.PENDING
        instance.pending_since = instance.pending_since or timezone.now()
        instance.local_version = (instance.local_version or 0) + 1
    else:  # in the database: this instance's copies of both may be stale
        for name, value in pending_update().items():  # concurrent saves never share a version
            setattr(instance, name, value)


@receiver(post_save, sender=Customer, dispatch_uid="stripe_customers_schedule_push")
def schedule_push_after_save(sender: type[Customer], instance: Customer, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return
    if not isinstance(instance.local_version, int):
        instance.refresh_from_db(fields=["local_version", "pending_since"])
    if conf.get_setting("PUSH_ON_SAVE"):
        transaction.on_commit(partial(enqueue_push, instance.pk))


@receiver(marked_pending, sender=Customer, dispatch_uid="stripe_customers_schedule_marked")
def schedule_push_of_marked_rows(
    sender: type[Customer], pks: list[int], using: str | None = None, **kwargs: Any
) -> None:
    if conf.get_setting("PUSH_ON_SAVE"):
        for pk in pks:
            transaction.on_commit(partial(enqueue_push, pk), using=using)


@receiver(slices_requested, sender=PullRun, dispatch_uid="stripe_customers_schedule_slices")
def schedule_slices(
    sender: type[PullRun], run: PullRun, slices: list[tuple[int, int, int]], **kwargs: Any
) -> None:
    """The slices of a partitioned pull, one Celery task each, once the run is committed."""
    for low, high, streams in slices:
        transaction.on_commit(partial(enqueue_slice, low, high, run.pk, streams))
