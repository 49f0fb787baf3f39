"""Celery tasks: thin wrappers around ``sync/``, with the retry policy for transient errors.

Every task is ``acks_late`` (a worker that dies mid-task leaves the message to be redelivered)
and retries ``StripeError``s that are transient (connection, timeout, 409, 429, 5xx) with
exponential backoff; permanent errors (bad key, 404, invalid request) fail at once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NoReturn

from celery import shared_task
from celery.app.task import Task
from django.db import DatabaseError
from django.db.models import Q
from django.utils import timezone

from . import conf
from .models import Customer, SyncStatus, WebhookEvent
from .signals import enqueue_event, enqueue_push
from .stripe import StripeError
from .sync import events, pages, pull, push, runs

TASK_OPTIONS: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": 5,
}


def _retry_or_raise(task: Task[Any, Any], exc: StripeError) -> NoReturn:
    """Retry a transient Stripe error with backoff (5 s, 10 s, ... capped at 5 min)."""
    if exc.is_transient and task.request.retries < (task.max_retries or 0):
        raise task.retry(exc=exc, countdown=min(5 * 2**task.request.retries, 300))
    raise exc


@shared_task(bind=True, name="stripe_customers.pull_customer", **TASK_OPTIONS)
def pull_customer_task(self: Task[Any, Any], stripe_id: str) -> int | None:
    """Reconcile one customer; returns its local pk (None for an unknown deleted customer)."""
    try:
        customer = pull.pull_customer(stripe_id)
    except StripeError as exc:
        _retry_or_raise(self, exc)
    return None if customer is None else customer.pk


@shared_task(bind=True, name="stripe_customers.pull_all", **TASK_OPTIONS)
def pull_all_task(
    self: Task[Any, Any],
    created_gte: int | None = None,
    created_lt: int | None = None,
    partitions: int = 1,
) -> dict[str, Any]:
    """Reconcile every customer (optionally a ``created`` range); see ``runs.pull_all``.

    With ``partitions > 1`` the range is split into that many ``pull_slice_task``s, so as many
    workers pull in parallel; this task returns at once with the ``PullRun`` id to watch.
    """
    if partitions > 1:
        run = runs.start_partitioned_pull(created_gte, created_lt, partitions)
        return {"pull_run": run.pk, "partitions": run.partitions}
    try:
        return runs.pull_all(created_gte, created_lt).as_dict()
    except StripeError as exc:
        _retry_or_raise(self, exc)


def _record_failed_slice(run_pk: int, exc: Exception) -> NoReturn:
    runs.record_partition(run_pk, pages.PullResult(errors=[f"{type(exc).__name__}: {exc}"]))
    raise exc


@shared_task(bind=True, name="stripe_customers.pull_slice", **TASK_OPTIONS)
def pull_slice_task(
    self: Task[Any, Any], created_gte: int, created_lt: int, run_pk: int
) -> dict[str, Any]:
    """One slice of a partitioned pull: customers created in ``[created_gte, created_lt)``."""
    try:
        result = pages.pull_range(created_gte, created_lt)
    except StripeError as exc:
        if exc.is_transient and self.request.retries < (self.max_retries or 0):
            _retry_or_raise(self, exc)
        _record_failed_slice(run_pk, exc)
    except Exception as exc:  # recorded so the run still closes, then raised as it was
        _record_failed_slice(run_pk, exc)
    runs.record_partition(run_pk, result)
    return result.as_dict()


@shared_task(bind=True, name="stripe_customers.push_customer", **TASK_OPTIONS)
def push_customer_task(self: Task[Any, Any], customer_pk: int) -> str:
    """Push one row's local edits (see ``push.push_customer``); returns the outcome."""
    try:
        result = push.push_customer(customer_pk, owner=f"task-{self.request.id}")
    except StripeError as exc:
        _retry_or_raise(self, exc)
    return result.outcome


@shared_task(name="stripe_customers.push_pending", acks_late=True)
def push_pending_task(older_than: float | None = None, limit: int = 1000) -> int:
    """The outbox sweep: re-enqueue rows pending for longer than ``older_than`` seconds
    (default setting ``PUSH_SWEEP_AFTER``) and pushes whose worker died mid-request."""
    seconds = conf.get_setting("PUSH_SWEEP_AFTER") if older_than is None else older_than
    threshold = timezone.now() - timedelta(seconds=seconds)
    stale = Customer.objects.filter(
        Q(sync_status=SyncStatus.PENDING, pending_since__lt=threshold, deleted=False)
        | Q(push_intent__isnull=False, pending_since__lt=threshold)
    )
    pks = list(stale.order_by("pending_since").values_list("pk", flat=True)[:limit])
    for pk in pks:
        enqueue_push(pk)  # one row's failure (or a broker hiccup) does not stop the sweep
    return len(pks)


@shared_task(bind=True, name="stripe_customers.process_webhook_event", **TASK_OPTIONS)
def process_webhook_event_task(self: Task[Any, Any], event_pk: int) -> str:
    """Apply one stored event (see ``events.process_event``); failures are retried."""
    try:
        return events.process_event(event_pk)
    except StripeError as exc:
        _retry_or_raise(self, exc)
    except DatabaseError as exc:
        raise self.retry(exc=exc, countdown=min(5 * 2**self.request.retries, 300)) from exc


@shared_task(bind=True, name="stripe_customers.catch_up_events", **TASK_OPTIONS)
def catch_up_events_task(self: Task[Any, Any], since: int) -> dict[str, int]:
    """Store and apply the ``customer.*`` events created since ``since`` (unix time)."""
    try:
        result = events.catch_up(since)
    except StripeError as exc:
        _retry_or_raise(self, exc)
    return {
        "listed": result.listed,
        "stored": result.stored,
        "processed": result.processed,
        "stale": result.stale,
        "failed": result.failed,
    }


@shared_task(name="stripe_customers.process_pending_events", acks_late=True)
def process_pending_events_task(
    older_than: float | None = None, limit: int = 1000, max_attempts: int = 10
) -> int:
    """The events' sweep: re-enqueue stored events not applied after ``older_than`` seconds
    (default ``PUSH_SWEEP_AFTER``): their message was lost, or they failed and ran out of
    Celery retries. Events that failed ``max_attempts`` times are left for ``replay``."""
    seconds = conf.get_setting("PUSH_SWEEP_AFTER") if older_than is None else older_than
    threshold = timezone.now() - timedelta(seconds=seconds)
    stale = WebhookEvent.objects.filter(
        status__in=(WebhookEvent.Status.RECEIVED, WebhookEvent.Status.FAILED),
        received_at__lt=threshold,
        attempts__lt=max_attempts,
    )
    pks = list(stale.order_by("created", "id").values_list("pk", flat=True)[:limit])
    for pk in pks:
        enqueue_event(pk)
    return len(pks)
