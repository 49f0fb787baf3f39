"""A whole-account pull in parallel streams: K threads fetch slices, writers apply pages.

Stripe answers a list page in a few hundred milliseconds, so one stream spends its time
waiting. Here K fetching threads take slices of the ``created`` range (``slicing``) and page
through them, paced by the client's rate limiter, while writers apply each page as a single
pass applies it (``pages.RangePass``: bulk upsert, freshness, the local rows no page listed).
On SQLite, which takes one writer, or inside the caller's transaction, the calling thread is
the only writer. Elsewhere ``WRITERS`` threads write, each on its own connection, and every
page of a slice goes to the same one, in order: slices are disjoint ranges of customers, so
while one writer waits on the database another prepares its page. Fetching overlaps writing;
at most about two pages per stream wait in memory.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Final

from django.db import connection

from ..accounts import Account
from ..stripe import PageData
from . import listing
from .pages import Progress, PullResult, RangePass
from .slicing import WAIT, WAIT_SECONDS, AccountQueue, Board, Slice, start

#: How long a stream waits to hand over a page before looking whether the pull was stopped.
HAND_OVER_SECONDS: Final = 0.2

#: Writer threads where the database takes several at once (see above).
WRITERS: Final = 2


@dataclass(frozen=True)
class _Message:
    """From a stream to the writer: a page of a slice, a slice's end, an error, or a stream's
    exit (``piece`` None)."""

    piece: Slice | None
    page: PageData | None = None
    error: BaseException | None = None


class _Counter:
    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.value += 1


def pull_streams(
    low: int,
    high: int,
    streams: int,
    progress: Progress | None = None,
    *,
    account: Account,
    result: PullResult,
) -> PullResult:
    """Pull the customers of ``account`` created in ``[low, high)`` with ``streams`` fetching
    threads; counts go into ``result`` as they happen (so a caller has them if the pull
    fails)."""
    started = time.monotonic()
    requests = _Counter()
    first = start(account.client(), low, high, count=requests.add)
    apply_head(first.head, first.head_slice, result, account)
    return _stream(first.board, streams, progress, account, result, requests, started)


def pull_accounts_streams(
    accounts: list[Account],
    low: int,
    high: int,
    streams: int,
    progress: Progress | None = None,
    *,
    results: dict[Account, PullResult],
) -> PullResult:
    """Pull several accounts' customers of ``[low, high)`` with ``streams`` fetching threads,
    each taking the next account and paging through it (``slicing.AccountQueue``), all under
    the rate limit of their key. Each account's counts go into its ``results`` entry (an
    account's pages all go to one writer); the sum is returned."""
    started = time.monotonic()
    board = AccountQueue(accounts, low, high)
    total = PullResult()
    _stream(board, streams, progress, accounts[0], total, _Counter(), started, results)
    for account, piece in board.pieces.items():
        results[account].requests += piece.requests
    summed = sum(results.values(), PullResult())
    summed.seconds = time.monotonic() - started
    return summed


def _stream(
    board: Board | AccountQueue,
    streams: int,
    progress: Progress | None,
    account: Account,
    result: PullResult,
    requests: _Counter,
    started: float,
    by_account: dict[Account, PullResult] | None = None,
) -> PullResult:
    count = writer_count()
    tally = _Tally(result, count, progress, started, by_account)
    inboxes: list[queue.Queue[_Message]] = [
        queue.Queue(maxsize=max(1, 2 * streams // count)) for _ in range(count)
    ]
    stop = threading.Event()
    fetchers = [
        threading.Thread(
            target=_fetch,
            args=(board, account, inboxes, stop, requests),
            name=f"pull-stream-{n}",
        )
        for n in range(streams)
    ]
    for fetcher in fetchers:
        fetcher.start()
    try:
        writers = [_Writer(part, account, tally, by_account or {}) for part in tally.parts]
        if count == 1:
            writers[0].run(inboxes[0], streams, stop)
        else:
            _run_in_threads(writers, inboxes, streams, stop)
    finally:
        stop.set()
        for fetcher in fetchers:
            fetcher.join()
        tally.close()
        result.requests += requests.value
        result.seconds = time.monotonic() - started
    return result


def writer_count() -> int:
    """1 on SQLite or inside a transaction (other connections could not join it), else
    ``WRITERS``."""
    if connection.vendor == "sqlite" or connection.in_atomic_block:
        return 1
    return WRITERS


def apply_head(page: PageData, piece: Slice, result: PullResult, account: Account) -> None:
    """The newest page, complete for its slice: applied, then its slice's unlisted rows."""
    head = RangePass(piece.low, piece.high, result, account)
    if page:
        head.apply(page)
        result.pages += 1
    head.finish()


class _Tally:
    """The writers' counts: one ``PullResult`` each (a writer thread alone adds to its own),
    added into the caller's ``result`` when the pull ends; the caller's own when it writes
    alone. Progress is shown from their sum."""

    def __init__(
        self,
        result: PullResult,
        writers: int,
        progress: Progress | None,
        started: float,
        by_account: dict[Account, PullResult] | None = None,
    ) -> None:
        self.result, self.progress, self.started = result, progress, started
        self.by_account = by_account or {}
        self.alone = writers == 1
        self.parts = [result] if self.alone else [PullResult() for _ in range(writers)]
        self._lock = threading.Lock()

    def page_applied(self) -> None:
        if self.progress is None:
            self.result.seconds = time.monotonic() - self.started
            return
        with self._lock:
            shown = self.result if self.alone else sum(self.parts, self.result + PullResult())
            if self.by_account:
                shown = sum(self.by_account.values(), shown + PullResult())
            shown.seconds = time.monotonic() - self.started
            self.progress(shown)

    def close(self) -> None:
        """Add the writers' counts into the caller's result (once they have all stopped)."""
        if not self.alone:
            for part in self.parts:
                _add_into(self.result, part)
            self.parts, self.alone = [self.result], True


def _add_into(result: PullResult, part: PullResult) -> None:
    summed = result + part
    for name, value in summed.as_dict().items():
        if name != "seconds":
            setattr(result, name, value)


def _run_in_threads(
    writers: list[_Writer],
    inboxes: list[queue.Queue[_Message]],
    streams: int,
    stop: threading.Event,
) -> None:
    """Each writer in a thread of its own (and so a connection of its own, closed after);
    the first failure stops the pull and is raised here."""
    failures: list[BaseException] = []

    def write(writer: _Writer, inbox: queue.Queue[_Message]) -> None:
        try:
            writer.run(inbox, streams, stop)
        except BaseException as exc:
            failures.append(exc)
            stop.set()
        finally:
            connection.close()

    threads = [
        threading.Thread(target=write, args=(writer, inbox), name=f"pull-writer-{n}")
        for n, (writer, inbox) in enumerate(zip(writers, inboxes, strict=True))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


class _Writer:
    """Applies the pages of its slices, each slice's in the order the slice lists them."""

    def __init__(
        self,
        result: PullResult,
        account: Account,
        tally: _Tally,
        by_account: dict[Account, PullResult],
    ) -> None:
        self.result, self.account, self.tally = result, account, tally
        self.by_account = by_account
        self.passes: dict[int, RangePass] = {}

    def run(self, inbox: queue.Queue[_Message], streams: int, stop: threading.Event) -> None:
        """Until every stream has said it is done (or another writer failed)."""
        running = streams
        while running and not stop.is_set():
            try:
                message = inbox.get(timeout=HAND_OVER_SECONDS)
            except queue.Empty:
                continue
            if message.error is not None:
                raise message.error
            if message.piece is None:
                running -= 1
            elif message.page is not None:
                self._apply(message.piece, message.page)
            else:
                self._finish(message.piece)

    def _pass(self, piece: Slice) -> RangePass:
        found = self.passes.get(piece.number)
        if found is None:
            account = piece.account or self.account
            counts = self.by_account.get(account, self.result)
            found = self.passes[piece.number] = RangePass(piece.low, piece.high, counts, account)
        return found

    def _apply(self, piece: Slice, page: PageData) -> None:
        one_pass = self._pass(piece)
        one_pass.apply(page)
        one_pass.result.pages += 1
        self.tally.page_applied()

    def _finish(self, piece: Slice) -> None:
        one_pass = self._pass(piece)
        one_pass.narrow(piece.low)  # split: what is older was another slice's
        one_pass.finish()
        del self.passes[piece.number]


def _fetch(
    board: Board | AccountQueue,
    account: Account,
    inboxes: list[queue.Queue[_Message]],
    stop: threading.Event,
    requests: _Counter,
) -> None:
    """One stream: take a slice, page through it, hand each page to the slice's writer; then
    the next slice. Its end (or its failure) is told to every writer."""
    try:
        while not stop.is_set() and (piece := board.take()) is not None:
            if piece is WAIT:  # another stream's slice may be split once it lists a page
                stop.wait(WAIT_SECONDS)
                continue
            inbox = inboxes[piece.number % len(inboxes)]
            client = (piece.account or account).client()
            for data in listing.pages(client, piece.low, piece.high):
                requests.add()
                kept = board.advance(piece, data)
                if kept and not _hand_over(inbox, _Message(piece, kept), stop):
                    return
                if piece.done or stop.is_set():
                    break
            board.finish(piece)
            if not _hand_over(inbox, _Message(piece), stop):
                return
    except BaseException as exc:  # handed to the writers, which raise it in the caller
        for inbox in inboxes:
            _hand_over(inbox, _Message(None, error=exc), stop)
        return
    for inbox in inboxes:
        _hand_over(inbox, _Message(None), stop)


def _hand_over(inbox: queue.Queue[_Message], message: _Message, stop: threading.Event) -> bool:
    """Put ``message`` in the writer's inbox; False when the pull was stopped meanwhile."""
    while not stop.is_set():
        try:
            inbox.put(message, timeout=HAND_OVER_SECONDS)
            return True
        except queue.Full:
            continue
    return False
