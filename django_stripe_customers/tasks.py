"""Celery tasks: thin wrappers around ``sync/``, with the retry policy for transient errors.

Every task is ``acks_late`` (a worker that dies mid-task leaves the message to be redelivered)
and retries ``StripeError``s that are transient (connection, timeout, 409, 429, 5xx) with
exponential backoff; permanent errors (bad key, 404, invalid request) fail at once.
"""

from __future__ import annotations

from typing import Any, NoReturn

from celery import shared_task
from celery.app.task import Task

from .stripe import StripeError
from .sync import pull

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
    """Reconcile every customer (optionally a ``created`` range); see ``pull.pull_all``.

    With ``partitions > 1`` the range is split into that many ``pull_slice_task``s, so as many
    workers pull in parallel; this task returns at once with the ``PullRun`` id to watch.
    """
    if partitions > 1:
        run = pull.start_partitioned_pull(created_gte, created_lt, partitions)
        return {"pull_run": run.pk, "partitions": run.partitions}
    try:
        return pull.pull_all(created_gte, created_lt).as_dict()
    except StripeError as exc:
        _retry_or_raise(self, exc)


def _record_failed_slice(run_pk: int, exc: Exception) -> NoReturn:
    pull.record_partition(run_pk, pull.PullResult(errors=[f"{type(exc).__name__}: {exc}"]))
    raise exc


@shared_task(bind=True, name="stripe_customers.pull_slice", **TASK_OPTIONS)
def pull_slice_task(
    self: Task[Any, Any], created_gte: int, created_lt: int, run_pk: int
) -> dict[str, Any]:
    """One slice of a partitioned pull: customers created in ``[created_gte, created_lt)``."""
    try:
        result = pull.pull_range(created_gte, created_lt)
    except StripeError as exc:
        if exc.is_transient and self.request.retries < (self.max_retries or 0):
            _retry_or_raise(self, exc)
        _record_failed_slice(run_pk, exc)
    except Exception as exc:  # recorded so the run still closes, then raised as it was
        _record_failed_slice(run_pk, exc)
    pull.record_partition(run_pk, result)
    return result.as_dict()
