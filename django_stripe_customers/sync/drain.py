"""A backlog of pending rows pushed in parallel streams (``drain``).

Stripe answers a write in a few hundred milliseconds, so one push after another sends about 3
a second, while the write limit takes 25 a second in test mode and 100 live. Here ``streams``
threads push rows at once, each row with ``push_customer`` (its three steps, its
Idempotency-Key, its merge, unchanged). Every request waits for its tokens in the client's
rate limiter, shared per key, so together the streams stay under the limit.

What holds:

- one push per row at a time: a row is in the hands of one thread of this process at a time
  (across drains too), and of one push anywhere (the lease on its recorded request: a row
  another push holds is left to it, ``IN_FLIGHT``);
- a row edited while its request was in flight is pushed again, up to ``ROUNDS`` pushes; what
  is still pending after that waits for the next sweep;
- a row Stripe did not take yet (a transient error) stays pending with its request recorded;
  it is released, so the next push, from any process, resends it at once with the same key.
  The drain goes on with the other rows.

Each thread has its own database connection, closed when it ends. Inside a transaction the
drain runs in the calling thread alone (other connections could not see the rows). SQLite
takes one writer at a time, and an in-memory database shared by threads fails at once rather
than waiting: there the streams take turns at the database (``_Turn``: one query outside a
transaction, or a whole transaction, at a time), while their HTTP calls overlap.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Final

from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import QuerySet

from ..models import Customer
from ..stripe import StripeError
from .outbox import release, this_process
from .push import PushOutcome, PushResult, push_customer

logger = logging.getLogger("django_stripe_customers.push")

#: Pushes of one row in one drain at most (the first, then one per edit saved meanwhile).
ROUNDS: Final = 3
#: Streams of ``push --pending``: about Stripe's test-mode write limit (25/s) at its usual
#: 300 ms a request; live mode (100/s) takes up to 32.
DEFAULT_STREAMS: Final = 8


@dataclass(frozen=True)
class DrainFailure:
    """A row the drain could not push: Stripe refused it (the row is ``failed`` and says
    why), or did not take it yet (``transient``: pending, its request recorded for the next
    sweep), or something else went wrong (logged with its traceback)."""

    pk: int
    error: str
    transient: bool = False


@dataclass(frozen=True)
class DrainedRow:
    """One row done: its first push's outcome (``FAILED`` if a push of it failed; None when
    every push raised), the last ``PushResult``, the pushes sent, and its failure if any."""

    pk: int
    outcome: PushOutcome | None
    result: PushResult | None
    pushes: int
    failure: DrainFailure | None = None

    @property
    def still_pending(self) -> bool:
        return self.failure is None and self.result is not None and self.result.still_pending


#: Called after each row, from the thread that pushed it (one at a time): rows done so far.
Progress = Callable[[int, DrainedRow], None]


@dataclass
class DrainResult:
    """What a drain did: each row counted once by outcome (rows whose push raised are in
    ``failures`` only), the failures, the rows left pending (edited again at every round, or
    held by another push) and the time taken."""

    counts: dict[PushOutcome, int] = field(default_factory=dict)
    failures: list[DrainFailure] = field(default_factory=list)
    left_pending: list[int] = field(default_factory=list)
    rows: int = 0
    pushes: int = 0
    streams: int = 1
    seconds: float = 0.0

    @property
    def retrying(self) -> list[DrainFailure]:
        """The rows Stripe did not take yet: pending, to be resent by the next sweep."""
        return [failure for failure in self.failures if failure.transient]

    def add(self, row: DrainedRow) -> None:
        self.rows += 1
        self.pushes += row.pushes
        if row.outcome is not None:
            self.counts[row.outcome] = self.counts.get(row.outcome, 0) + 1
        if row.failure is not None:
            self.failures.append(row.failure)
        elif row.still_pending:
            self.left_pending.append(row.pk)


def drain(
    pks_or_queryset: QuerySet[Customer] | Iterable[int],
    *,
    streams: int = 16,
    owner_prefix: str = "drain",
    progress: Progress | None = None,
) -> DrainResult:
    """Push the given rows (pks, or a queryset of rows) in ``streams`` threads, each row as
    often as it was edited meanwhile (up to ``ROUNDS``); see the module docstring.

    The pushes of row ``pk`` are owned by ``{owner_prefix}-{host}-{pid}-{pk}``: a later drain
    of this process with the same prefix takes back at once a request an earlier one left in
    flight. ``ImproperlyConfigured`` (no key...) and ``KeyboardInterrupt`` stop every stream
    (after the rows in hand) and are raised.
    """
    if streams < 1:
        raise ValueError(f"streams must be at least 1, got {streams}")
    pks = _unique(pks_or_queryset)
    streams = stream_count(streams, len(pks))
    started = time.monotonic()
    work = _Work(pks, owner_prefix, progress, DrainResult(streams=streams))
    if streams == 1:
        work.run_stream(in_thread=False)
    else:
        _in_threads(work, streams)
    work.result.seconds = time.monotonic() - started
    if work.error is not None:
        raise work.error
    return work.result


def stream_count(requested: int, rows: int) -> int:
    """The streams a drain of ``rows`` rows uses: 1 inside a transaction (other connections
    could not see its rows, and would wait on its locks), else ``requested``, at most one a
    row."""
    if connection.in_atomic_block:
        return 1
    return max(1, min(requested, rows))


def _unique(pks_or_queryset: QuerySet[Customer] | Iterable[int]) -> list[int]:
    """The pks in order, each once (a row is never handed to two threads)."""
    if isinstance(pks_or_queryset, QuerySet):
        pks_or_queryset = pks_or_queryset.values_list("pk", flat=True)
    return list(dict.fromkeys(pks_or_queryset))


def _in_threads(work: _Work, streams: int) -> None:
    threads = [
        threading.Thread(target=work.run_stream, name=f"push-drain-{n}") for n in range(streams)
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except BaseException:  # Ctrl-C: the rows in hand finish, the others stay pending
        work.stop.set()
        for thread in threads:
            thread.join()
        raise


class _Work:
    """The rows to push, handed out one at a time, and the result the streams add to."""

    def __init__(
        self, pks: list[int], prefix: str, progress: Progress | None, result: DrainResult
    ) -> None:
        self.rows: queue.SimpleQueue[int] = queue.SimpleQueue()
        for pk in pks:
            self.rows.put(pk)
        process = this_process()
        self.owner = f"{prefix}-{process['host']}-{process['pid']}"
        self.progress, self.result = progress, result
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def run_stream(self, *, in_thread: bool = True) -> None:
        """One stream: rows until none is left; a thread of its own on its own connection,
        closed at the end (or the caller's thread: inside a transaction, or one stream)."""
        gated = connection.vendor == "sqlite" and not connection.in_atomic_block
        turn = _Turn(_SQLITE_TURNS) if gated else None
        try:
            with ExitStack() as stack:
                if turn is not None:
                    stack.enter_context(connection.execute_wrapper(turn))
                self.run(turn)
        finally:
            if turn is not None:
                turn.release()
            if in_thread:
                connection.close()

    def run(self, turn: _Turn | None = None) -> None:
        while not self.stop.is_set():
            try:
                pk = self.rows.get_nowait()
            except queue.Empty:
                return
            try:
                row = _push_row(pk, f"{self.owner}-{pk}")
            except BaseException as exc:  # settings, Ctrl-C: every stream stops, drain raises it
                self.stop.set()
                self.error = self.error or exc
                return
            finally:
                if turn is not None:
                    turn.release()
            with self._lock:
                self.result.add(row)
                if self.progress is not None:
                    self.progress(self.result.rows, row)


def _push_row(pk: int, owner: str) -> DrainedRow:
    """Push row ``pk`` while it was edited meanwhile (``ROUNDS`` at most)."""
    if not _IN_HAND.take(pk):  # another drain of this process pushes it right now
        held = PushResult(PushOutcome.IN_FLIGHT, pk, still_pending=True)
        return DrainedRow(pk, PushOutcome.IN_FLIGHT, held, pushes=0)
    first: PushOutcome | None = None
    result: PushResult | None = None
    pushes = 0
    try:
        for _ in range(ROUNDS):
            pushes += 1
            result = push_customer(pk, owner=owner)
            first = first or result.outcome
            if result.outcome is PushOutcome.FAILED:
                failure = DrainFailure(pk, result.error)
                return DrainedRow(pk, PushOutcome.FAILED, result, pushes, failure)
            # in flight: the push holding the request sends the edits made since
            if not result.still_pending or result.outcome is PushOutcome.IN_FLIGHT:
                break
    except Customer.DoesNotExist:  # deleted here meanwhile: nothing to send
        return DrainedRow(pk, first or PushOutcome.UNCHANGED, result, pushes)
    except ImproperlyConfigured:  # no key, bad settings: the same for every row
        raise
    except Exception as exc:
        return DrainedRow(pk, first, result, pushes, _raised(pk, owner, exc))
    finally:
        _IN_HAND.give_back(pk)
    return DrainedRow(pk, first, result, pushes)


def _raised(pk: int, owner: str, exc: Exception) -> DrainFailure:
    """A push that raised: its request (if recorded) released for the next push to resend."""
    transient = isinstance(exc, StripeError) and exc.is_transient
    if transient:
        logger.warning("The push of customer %s will be retried: %s", pk, exc)
    else:
        logger.error("The push of customer %s failed", pk, exc_info=exc)
    try:
        release(pk, owner)
    except Exception:  # the database's turn to fail: the lease runs out instead
        logger.exception("Could not release the request of customer %s", pk)
    error = str(exc) if isinstance(exc, StripeError) else f"{type(exc).__name__}: {exc}"
    return DrainFailure(pk, error, transient)


class _InHand:
    """The rows this process's drains are pushing (each in one thread at a time)."""

    def __init__(self) -> None:
        self._pks: set[int] = set()
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def take(self, pk: int) -> bool:
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's threads are not here
                self._pks, self._pid = set(), os.getpid()
            if pk in self._pks:
                return False
            self._pks.add(pk)
            return True

    def give_back(self, pk: int) -> None:
        with self._lock:
            self._pks.discard(pk)


_IN_HAND: Final = _InHand()
#: Whose turn it is at an SQLite database, among every drain's streams in this process.
_SQLITE_TURNS: Final = threading.Lock()


class _Turn:
    """One stream's turn at an SQLite database (``connection.execute_wrapper``): taken for a
    query outside a transaction, or for a whole transaction (given back once it commits, or
    at the next query outside one, or when the row is done), so the streams' writes never
    meet while their HTTP calls, made outside any transaction, overlap."""

    def __init__(self, turns: threading.Lock) -> None:
        self._turns, self._held = turns, False

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        db = context["connection"]
        if not self._held:
            self._turns.acquire()
            self._held = True
        if db.in_atomic_block and not any(hook == self.release for _, hook, _ in db.run_on_commit):
            db.on_commit(self.release)  # a rolled-back one dropped it: the row's end gives it back
        try:
            return execute(sql, params, many, context)
        finally:
            if not db.in_atomic_block:
                self.release()

    def release(self) -> None:
        if self._held:
            self._held = False
            self._turns.release()
