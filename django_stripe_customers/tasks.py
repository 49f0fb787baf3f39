"""Celery tasks: thin wrappers around ``sync/``, with the retry policy for transient errors;
and ``enqueue_push``/``enqueue_event``, which run them as ``PUSH_MODE`` says (``dispatch``).

Every task is ``acks_late`` (a worker that dies mid-task leaves the message to be redelivered)
and retries ``StripeError``s that are transient (connection, timeout, 409, 429, 5xx) with
exponential backoff; permanent errors (bad key, 404, invalid request) fail at once.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Final, NoReturn

from celery import shared_task
from celery.app.task import Task
from celery.exceptions import Retry
from django.db import DatabaseError, transaction
from django.utils import timezone

from . import conf, dispatch
from .accounts import Account, default_account, find
from .models import PullRun
from .stripe import APIConnectionError, StripeError
from .stripe.retry import retry_delay, should_retry
from .sync import connect, drain, events, outbox, pages, pull, push, reconcile, runs

logger = logging.getLogger("django_stripe_customers.push")

TASK_OPTIONS: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": 5,
}


#: The task's backoff: the client's retry policy, on a scale of minutes (5 s, 10 s, ... 5 min).
TASK_RETRY_INITIAL: Final = 5.0
TASK_RETRY_MAX: Final = 300.0


def _retry_or_raise(task: Task[Any, Any], exc: StripeError) -> NoReturn:
    _retry_if_due(task, exc)
    raise exc


def _retry_if_due(
    task: Task[Any, Any], exc: StripeError, on_retry: Callable[[float], None] | None = None
) -> None:
    """Retry the task as the client retries a request (``stripe.retry``: connection errors,
    409, 429, 5xx, and what ``Stripe-Should-Retry`` says), with a longer backoff."""
    attempt = task.request.retries
    retry = should_retry(
        attempt=attempt,
        max_retries=task.max_retries or 0,
        status=exc.http_status,
        headers=exc.headers,
        connection_error=isinstance(exc, APIConnectionError),
    )
    if retry:
        delay = retry_delay(
            attempt=attempt,
            headers=exc.headers,
            initial=TASK_RETRY_INITIAL,
            maximum=TASK_RETRY_MAX,
            max_retry_after=TASK_RETRY_MAX,
        )
        if on_retry is not None:
            on_retry(delay)
        raise task.retry(exc=exc, countdown=delay)
    if on_retry is not None:  # out of retries: the sweep sends it next
        on_retry(float(conf.get_setting("PUSH_SWEEP_AFTER")))


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
    stripe_account: str | None = None,
    livemode: bool | None = None,
    all_accounts: bool = False,
) -> dict[str, Any]:
    """Reconcile every customer of one account (the default one, or ``stripe_account`` in
    ``livemode``; optionally a ``created`` range); see ``runs.pull_all``.

    With ``partitions > 1`` the range is split into that many ``pull_slice_task``s, so as many
    workers pull in parallel; this task returns at once with the ``PullRun`` id to watch.
    ``all_accounts``: one task per account (``connect.every_account``, of ``livemode`` when
    given), spread over the workers under each key's shared rate limit; returns at once.
    """
    if all_accounts:
        listed = connect.every_account(livemode=livemode)
        for account in listed:
            pull_all_task.delay(
                created_gte, created_lt, partitions, account.stripe_account, account.livemode
            )
        return {"accounts": len(listed)}
    account = _account(stripe_account, livemode)
    if partitions > 1:
        run = runs.start_partitioned_pull(created_gte, created_lt, partitions, account=account)
        return {"pull_run": run.pk, "partitions": run.partitions}
    try:
        return runs.pull_all(created_gte, created_lt, account=account).as_dict()
    except StripeError as exc:
        _retry_or_raise(self, exc)


def _account(stripe_account: str | None, livemode: bool | None) -> Account:
    """The account a task is told of: by default the default account."""
    if stripe_account is None and livemode is None:
        return default_account()
    return connect.named_account(stripe_account, livemode)


def _record_failed_slice(run_pk: int, result: pages.PullResult, exc: Exception) -> NoReturn:
    """Record what the slice wrote before it failed for good, then raise as it was."""
    result.errors.append(f"{type(exc).__name__}: {exc}")
    runs.record_partition(run_pk, result, stopped=True)
    raise exc


@shared_task(bind=True, name="stripe_customers.pull_slice", **TASK_OPTIONS)
def pull_slice_task(
    self: Task[Any, Any], created_gte: int, created_lt: int, run_pk: int, streams: int = 1
) -> dict[str, Any]:
    """One slice of a partitioned pull: customers created in ``[created_gte, created_lt)``,
    in ``streams`` parallel streams (the rest of the range) or one.

    Only the last try reports to the run (a retried slice pulls again from the start), with
    what it wrote even when it fails."""
    result = pages.PullResult()
    try:
        run = PullRun.objects.get(pk=run_pk)  # the slice pulls its run's account
        account = find(run.stripe_account, run.livemode)
        runs.pull_slice(created_gte, created_lt, streams, result, account=account)
    except StripeError as exc:
        _retry_if_due(self, exc)
        _record_failed_slice(run_pk, result, exc)
    except Exception as exc:  # recorded so the run still closes, then raised as it was
        _record_failed_slice(run_pk, result, exc)
    runs.record_partition(run_pk, result)
    return result.as_dict()


@shared_task(bind=True, name="stripe_customers.push_customer", **TASK_OPTIONS)
def push_customer_task(self: Task[Any, Any], customer_pk: int) -> str:
    """Push one row's local edits (see ``push.push_customer``); returns the outcome."""
    owner = f"task-{self.request.id}"
    try:
        return push_now(customer_pk, owner=owner).outcome.value
    except StripeError as exc:
        _retry_if_due(self, exc, partial(outbox.note_next_attempt, customer_pk))
        outbox.release(customer_pk, owner)  # given up: the next push resends it now, same key
        raise


@shared_task(name="stripe_customers.push_pending", acks_late=True)
def push_pending_task(older_than: float | None = None, limit: int = 1000) -> int:
    """The outbox sweep: re-enqueue rows pending for longer than ``older_than`` seconds
    (default setting ``PUSH_SWEEP_AFTER``) and pushes whose worker died mid-request, each
    once, and not those whose task's retry is queued (``next_attempt_at`` still ahead)."""
    seconds = conf.get_setting("PUSH_SWEEP_AFTER") if older_than is None else older_than
    due = outbox.overdue(seconds).exclude(next_attempt_at__gt=timezone.now())
    pks = list(dict.fromkeys(due.order_by("pending_since").values_list("pk", flat=True)[:limit]))
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
    except DatabaseError as exc:  # the database's turn to be away: the same backoff
        delay = retry_delay(
            attempt=self.request.retries,
            headers={},
            initial=TASK_RETRY_INITIAL,
            maximum=TASK_RETRY_MAX,
            max_retry_after=TASK_RETRY_MAX,
        )
        raise self.retry(exc=exc, countdown=delay) from exc


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


@shared_task(bind=True, name="stripe_customers.reconcile", **TASK_OPTIONS)
def reconcile_task(
    self: Task[Any, Any],
    stripe_account: str | None = None,
    livemode: bool | None = None,
    all_accounts: bool = False,
    parallel: int = 1,
) -> dict[str, Any]:
    """Bring one account up to date from its events since the cursor (``sync.reconcile``: a
    full pull when they cannot tell); ``all_accounts``: one task per account, sent at once.
    Meant for the beat schedule, in place of a periodic full pull."""
    if all_accounts:
        listed = connect.every_account(livemode=livemode)
        for account in listed:
            reconcile_task.delay(account.stripe_account, account.livemode, False, parallel)
        return {"accounts": len(listed)}
    try:
        return reconcile.reconcile(_account(stripe_account, livemode), parallel=parallel).as_dict()
    except StripeError as exc:
        _retry_or_raise(self, exc)


@shared_task(name="stripe_customers.process_pending_events", acks_late=True)
def process_pending_events_task(
    older_than: float | None = None, limit: int = 1000, max_attempts: int = 10
) -> int:
    """The events' sweep: re-enqueue stored events not applied after ``older_than`` seconds
    (default ``PUSH_SWEEP_AFTER``): their message was lost, or they failed and ran out of
    Celery retries. Events that failed ``max_attempts`` times are left for ``replay``."""
    seconds = conf.get_setting("PUSH_SWEEP_AFTER") if older_than is None else older_than
    overdue = events.overdue_events(seconds, max_attempts).order_by("created", "id")
    pks = list(overdue.values_list("pk", flat=True)[:limit])
    for pk in pks:
        enqueue_event(pk)
    return len(pks)


# -- running them ------------------------------------------------------------------------------


def enqueue_push(pk: int) -> None:
    """Run the push of row ``pk`` as ``PUSH_MODE`` says, holding the caller a second at most
    for a broker (up to ``INLINE_WAIT`` for an inline push). What does not run stays pending
    and the sweep (``push_pending_task``, or the inline thread) sends it later."""
    _run(push_customer_task, pk, f"the push of customer {pk}", "push_pending_task")


def enqueue_event(pk: int) -> None:
    """Apply stored webhook event ``pk`` as ``PUSH_MODE`` says; a stored event is never lost
    (``process_pending_events_task`` and ``stripe_customers replay`` pick it up)."""
    _run(process_webhook_event_task, pk, f"webhook event {pk}", "process_pending_events_task")


def _run(task: Any, pk: int, what: str, sweep: str) -> None:
    if dispatch.push_mode() == "inline":
        job = _inline_push if task is push_customer_task else _inline_event
        dispatch.run_soon(lambda: job(pk), what, wait=dispatch.INLINE_WAIT, worker=dispatch.RUNNER)
        return
    if dispatch.is_eager(dispatch.project_celery_app()):  # runs here, now (tests)
        _send(task, pk, what, sweep)
        return
    dispatch.run_soon(
        lambda: _send(task, pk, what, sweep),
        f"sending {what} to the broker",
        wait=dispatch.ENQUEUE_TIMEOUT,
        worker=dispatch.SENDER,
    )


def _send(task: Any, pk: int, what: str, sweep: str) -> None:
    try:
        task.apply_async((pk,), retry=False)
    except Retry as exc:  # eager mode: the task ran here and failed; its row records it
        logger.warning("%s failed when run eagerly (%s); %s will retry it.", what, exc, sweep)
    except Exception as exc:  # the broker's errors vary by transport; the row is safe
        logger.warning(
            "Could not enqueue %s (%s: %s); %s will pick it up (schedule it with Celery beat: "
            "see the README's Install section).",
            what,
            type(exc).__name__,
            exc,
            sweep,
        )


def push_now(pk: int, *, owner: str = "") -> push.PushResult:
    """Push row ``pk`` here and now; edits saved meanwhile are pushed next, as ``PUSH_MODE``
    says. Transient Stripe errors are raised (the row stays pending)."""
    result = push.push_customer(pk, owner=owner)
    # In flight: the push holding the request pushes the edits made since when it is answered
    # (or the sweep takes it over); enqueueing again now would only spin until then.
    if (
        result.still_pending
        and result.outcome is not push.PushOutcome.IN_FLIGHT
        and conf.get_setting("PUSH_ON_SAVE")
    ):
        transaction.on_commit(partial(enqueue_push, pk))
    return result


def enqueue_slice(created_gte: int, created_lt: int, run_pk: int, streams: int = 1) -> None:
    """Hand one slice of a partitioned pull to a Celery worker."""
    pull_slice_task.delay(created_gte, created_lt, run_pk, streams)


def _inline_owner(pk: int) -> str:
    """The owner of inline pushes of row ``pk`` in this process: the same for each retry, so a
    retry takes back the request it left in flight (one inline thread per process)."""
    return f"inline-{socket.gethostname()}-{os.getpid()}-{pk}"


def _inline_push(pk: int) -> None:
    """A push in this process: as the task does, then the inline sweep."""
    try:
        push_now(pk, owner=_inline_owner(pk))
    except StripeError as exc:  # transient: the row stays pending, the timer retries it
        logger.warning("The push of customer %s will be retried: %s", pk, exc)
        outbox.note_next_attempt(pk, _sweep_interval())
        _retry_inline_later()
    _inline_sweep()


def _inline_event(pk: int) -> None:
    try:
        events.process_event(pk)
    except Exception as exc:  # recorded on the event; the timer retries it
        logger.warning("Webhook event %s will be retried: %s", pk, exc)
        _retry_inline_later()
    _inline_sweep()


def _sweep_interval() -> float:
    return float(conf.get_setting("PUSH_SWEEP_AFTER"))


def _retry_inline_later() -> None:
    dispatch.RETRIER.ensure(_inline_retry_round, _sweep_interval, dispatch.RUNNER)


def _inline_retry_round() -> bool:
    """One round of the inline timer: the sweep; True while work is left for the next."""
    if dispatch.push_mode() != "inline":  # the settings changed (tests): Celery's turn
        return False
    _inline_sweep(force=True)
    return outbox.overdue(0).exists() or events.overdue_events(_sweep_interval()).exists()


_last_inline_sweep = 0.0

#: Streams of the inline sweep's ``drain`` (about 4 times one push after another), and the
#: prefix of its owners: ``inline-{host}-{pid}-{pk}`` is ``_inline_owner(pk)``, so it takes
#: back at once what an inline push of this process left in flight.
INLINE_STREAMS: Final = 4
INLINE_OWNER: Final = "inline"


def _inline_sweep(*, force: bool = False) -> None:
    """Without Celery beat, the inline thread sweeps itself: at most once per
    ``PUSH_SWEEP_AFTER`` (``force``: now), it retries overdue pushes (up to 100, drained in
    ``INLINE_STREAMS``) and events (up to 100)."""
    global _last_inline_sweep
    seconds = _sweep_interval()
    if not force and time.monotonic() - _last_inline_sweep < seconds:
        return
    _last_inline_sweep = time.monotonic()
    overdue = outbox.overdue(seconds).order_by("pending_since").values_list("pk", flat=True)
    # not push_now: this is the inline thread, and edits since have their own push
    swept = drain.drain(list(overdue[:100]), streams=INLINE_STREAMS, owner_prefix=INLINE_OWNER)
    for failure in swept.retrying:
        outbox.note_next_attempt(failure.pk, seconds)
    left = bool(swept.retrying)
    overdue_events = events.overdue_events(seconds).order_by("created", "id")
    for pk in overdue_events.values_list("pk", flat=True)[:100]:
        try:
            events.process_event(pk)
        except Exception as exc:  # recorded on the event
            logger.warning("Webhook event %s will be retried: %s", pk, exc)
            left = True
    if left:
        _retry_inline_later()
