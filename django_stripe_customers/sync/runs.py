"""Whole-account pulls as recorded runs: ``pull_all``, its partitions and their ``PullRun``.

``pull_all`` runs one pass in-process, several streams in-process (``streams``), or hands
slices of the ``created`` range to Celery subtasks (``pull_slice_task``) that report into the
run's ``PullRun`` row as they finish, so no Celery result backend is needed to wait for them.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Final

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone as django_timezone

from ..accounts import Account, default_account
from ..models import PullRun
from ..stripe import StripeClient
from .pages import Progress, PullResult, as_timestamp, pull_range
from .slicing import Board, start
from .streams import apply_head, pull_accounts_streams, pull_streams

#: How often a partitioned pull looks at its ``PullRun`` row while the workers pull.
POLL_SECONDS: Final = 0.5


def pull_all(
    created_gte: int | datetime | None = None,
    created_lt: int | datetime | None = None,
    partitions: int = 1,
    progress: Progress | None = None,
    *,
    parallel: int = 1,
    account: Account | None = None,
    client: StripeClient | None = None,
    timeout: float | None = None,
) -> PullResult:
    """Reconcile every customer of ``account`` (by default ``accounts.default_account()``;
    optionally those created in ``[created_gte, created_lt)``), through ``client`` if given.

    Pages of 100 are upserted in bulk: a fixed number of queries per page whatever its mix of
    new and known customers, memory flat in the number of customers. Local rows in the range
    that Stripe did not list are then retrieved one by one and flagged if Stripe says deleted.

    ``parallel > 1`` fetches with that many streams in this process (one writer: the calling
    thread), paced by the client's rate limiter. ``partitions > 1`` hands slices of the range
    to Celery workers (``SLICES_PER_PARTITION`` per worker) and waits for them (up to
    ``timeout`` seconds), reading their progress from the run's ``PullRun`` row. Each call is
    recorded as a ``PullRun``.
    """
    if parallel < 1 or partitions < 1:
        raise ValueError(f"parallel and partitions must be at least 1 ({parallel}, {partitions})")
    account = (account or default_account()).through(client)
    if partitions > 1:
        if transaction.get_connection().in_atomic_block:
            raise RuntimeError(
                "A partitioned pull waits for Celery workers, which cannot see an uncommitted "
                "transaction: call pull_all(partitions=...) outside transaction.atomic()."
            )
        run = start_partitioned_pull(created_gte, created_lt, partitions, account=account)
        return _wait_for_run(run, progress, timeout)
    gte, lt = _bound(created_gte), _bound(created_lt)
    run = PullRun.objects.create(created_gte=gte, created_lt=lt, partitions=1, **account.rows)
    result = PullResult()
    try:
        if parallel > 1:
            low, high = full_range(gte, lt)
            pull_streams(low, high, parallel, progress, account=account, result=result)
        else:
            pull_range(gte, lt, progress, account=account, result=result)
    except Exception as exc:  # recorded with what was written before it, then raised as it was
        result.errors.append(_describe(exc))
        record_partition(run.pk, result, stopped=True)
        raise
    record_partition(run.pk, result)
    return result


def pull_accounts(
    accounts: list[Account],
    progress: Progress | None = None,
    *,
    parallel: int = 1,
) -> dict[Account, PullResult]:
    """Reconcile every customer of each of ``accounts``; returns each one's counts.

    ``parallel > 1``: that many streams, each taking the next account and paging through it,
    under the rate limit of its key (one per key: Stripe counts per account; a platform's
    requests for its connected accounts are counted here against the platform's key, which
    is the stricter reading). One ``PullRun`` per account, recorded as the pull ends.
    """
    if not accounts:
        return {}
    if parallel <= 1:
        return {account: pull_all(progress=progress, account=account) for account in accounts}
    low, high = full_range(None, None)
    runs = {account: PullRun.objects.create(partitions=1, **account.rows) for account in accounts}
    results = {account: PullResult() for account in accounts}
    try:
        total = pull_accounts_streams(accounts, low, high, parallel, progress, results=results)
    except Exception as exc:  # each run keeps what it wrote; the error goes on every run
        for account, run in runs.items():
            results[account].errors.append(_describe(exc))
            record_partition(run.pk, results[account], stopped=True)
        raise
    for account, run in runs.items():
        results[account].seconds = total.seconds  # pulled side by side, in the same time
        record_partition(run.pk, results[account])
    return results


#: Sent (sender ``PullRun``; ``run``, ``slices``) when a partitioned pull is recorded: the
#: receiver in ``receivers`` hands each ``(created_gte, created_lt, streams)`` slice to a
#: Celery task.
slices_requested = Signal()

#: Slices per Celery worker: many more slices than workers, so skew in ``created`` does not
#: leave one worker with all the work.
SLICES_PER_PARTITION: Final = 4
#: The last slice (the rest of the range, how full unknown until listed) is pulled in this
#: many streams at most (``SLICES_PER_PARTITION`` per worker): it may hold most customers.
MAX_REST_STREAMS: Final = 16


def start_partitioned_pull(
    created_gte: int | datetime | None,
    created_lt: int | datetime | None,
    partitions: int,
    *,
    account: Account,
) -> PullRun:
    """Record a run of ``account``, list its newest page (applied here) to find where its
    customers are (``slicing``), and ask for one task per slice of the rest; don't wait."""
    gte, lt = _bound(created_gte), _bound(created_lt)
    low, high = full_range(gte, lt)
    run = PullRun.objects.create(created_gte=gte, created_lt=lt, partitions=1, **account.rows)
    here = PullResult(requests=1)
    first = start(account.client(), low, high, count=lambda: None)
    apply_head(first.head, first.head_slice, here, account)
    count = SLICES_PER_PARTITION * partitions
    slices = _slices_for_workers(first.board, count, min(MAX_REST_STREAMS, count))
    PullRun.objects.filter(pk=run.pk).update(partitions=len(slices) + 1)
    record_partition(run.pk, here)
    run.refresh_from_db()
    slices_requested.send(sender=PullRun, run=run, slices=slices)
    return run


def _slices_for_workers(board: Board, count: int, rest_streams: int) -> list[tuple[int, int, int]]:
    """``count`` slices ``(low, high, streams)``: one stream each for those sized at the head
    page's density, ``rest_streams`` for the rest of the range as one last slice (its worker
    finds how far back customers go)."""
    slices: list[tuple[int, int, int]] = []
    while board.frontier > board.low and len(slices) < count - 1:
        piece = board.cut()
        slices.append((piece.low, piece.high, 1))
    if board.frontier > board.low:
        slices.append((board.low, board.frontier, rest_streams))
    return slices


def pull_slice(
    created_gte: int,
    created_lt: int,
    streams: int,
    result: PullResult,
    *,
    account: Account,
) -> None:
    """One slice of a partitioned pull of ``account``, in one stream or in ``streams``
    (``sync.streams``)."""
    if streams > 1:
        pull_streams(created_gte, created_lt, streams, account=account, result=result)
    else:
        pull_range(created_gte, created_lt, account=account, result=result)


#: Stripe's launch: no customer is older, so an unbounded range starts here.
STRIPE_EPOCH: Final = int(datetime(2011, 1, 1, tzinfo=timezone.utc).timestamp())


def full_range(created_gte: int | None, created_lt: int | None) -> tuple[int, int]:
    """``[gte, lt)`` with its open ends closed: Stripe's launch, and a day from now (clocks
    differ)."""
    low = STRIPE_EPOCH if created_gte is None else created_gte
    high = int(time.time()) + 86_400 if created_lt is None else created_lt
    if high <= low:
        raise ValueError(f"empty created range: [{low}, {high})")
    return low, high


def record_partition(run_pk: int, result: PullResult, *, stopped: bool = False) -> None:
    """Add one partition's counts to its run; the last partition closes the run.

    ``stopped``: the partition failed part-way; ``result`` has what it wrote before that. The
    run is failed at once (it stays open until every partition has reported).
    """
    counters = ("created", "updated", "unchanged", "marked_deleted", "pages", "requests")
    with transaction.atomic():
        run = PullRun.objects.select_for_update().get(pk=run_pk)
        for name in counters:
            setattr(run, name, getattr(run, name) + getattr(result, name))
        run.errors = [*run.errors, *result.errors]
        run.partitions_done += 1
        if stopped:
            run.status = PullRun.Status.FAILED
        if run.partitions_done >= run.partitions:
            run.finished_at = django_timezone.now()
            nothing_seen = run.errors and not (run.created or run.updated or run.unchanged)
            failed = run.status == PullRun.Status.FAILED or nothing_seen
            run.status = PullRun.Status.FAILED if failed else PullRun.Status.SUCCEEDED
        run.save()


def run_result(run: PullRun) -> PullResult:
    """A ``PullRun`` row as a ``PullResult``."""
    end = run.finished_at or django_timezone.now()
    return PullResult(
        created=run.created,
        updated=run.updated,
        unchanged=run.unchanged,
        marked_deleted=run.marked_deleted,
        pages=run.pages,
        requests=run.requests,
        seconds=(end - run.started_at).total_seconds(),
        errors=list(run.errors),
    )


def _wait_for_run(run: PullRun, progress: Progress | None, timeout: float | None) -> PullResult:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        run.refresh_from_db()
        if progress is not None:
            progress(run_result(run))
        if run.finished_at is not None:
            return run_result(run)
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(
                f"pull run {run.pk}: {run.partitions_done} of {run.partitions} partitions done "
                f"after {timeout:.0f}s; is a Celery worker running?"
            )
        time.sleep(POLL_SECONDS)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _bound(value: int | datetime | None) -> int | None:
    return None if value is None else as_timestamp(value)
