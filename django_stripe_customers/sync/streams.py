"""A whole-account pull in parallel streams: K threads fetch slices, one writer applies pages.

Stripe answers a list page in a few hundred milliseconds, so one stream spends its time
waiting. Here K fetching threads take slices of the ``created`` range (``slicing``) and page
through them, paced by the client's rate limiter, while the calling thread writes: each page
is applied as a single pass applies it (``pages.RangePass``: bulk upsert, freshness, the local
rows no page listed), so SQLite, which takes one writer, works too. Fetching overlaps writing;
at most two pages per stream wait in memory.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Final

from ..stripe import PageData, StripeClient
from .pages import PAGE_SIZE, Progress, PullResult, RangePass, range_params
from .pull import expansions
from .slicing import Board, Slice, start

#: How long a stream waits to hand over a page before looking whether the pull was stopped.
HAND_OVER_SECONDS: Final = 0.2


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
    client: StripeClient,
    result: PullResult,
) -> PullResult:
    """Pull the customers created in ``[low, high)`` with ``streams`` fetching threads; counts
    go into ``result`` as they happen (so a caller has them if the pull fails)."""
    started = time.monotonic()
    requests = _Counter()
    first = start(client, low, high, count=requests.add)
    apply_head(first.head, first.head_slice, result, client)
    writer = _Writer(result, client, progress, started)
    board = first.board
    inbox: queue.Queue[_Message] = queue.Queue(maxsize=2 * streams)
    stop = threading.Event()
    fetchers = [
        threading.Thread(
            target=_fetch, args=(board, client, inbox, stop, requests), name=f"pull-stream-{n}"
        )
        for n in range(streams)
    ]
    for fetcher in fetchers:
        fetcher.start()
    try:
        writer.run(inbox, streams)
    finally:
        stop.set()
        for fetcher in fetchers:
            fetcher.join()
        result.requests += requests.value
        result.seconds = time.monotonic() - started
    return result


def apply_head(page: PageData, piece: Slice, result: PullResult, client: StripeClient) -> None:
    """The newest page, complete for its slice: applied, then its slice's unlisted rows."""
    head = RangePass(piece.low, piece.high, result, client)
    if page:
        head.apply(page)
        result.pages += 1
    head.finish()


class _Writer:
    """The calling thread: applies pages, slice by slice, in the order each slice lists them."""

    def __init__(
        self, result: PullResult, client: StripeClient, progress: Progress | None, started: float
    ) -> None:
        self.result, self.client, self.progress, self.started = result, client, progress, started
        self.passes: dict[int, RangePass] = {}

    def run(self, inbox: queue.Queue[_Message], streams: int) -> None:
        running = streams
        while running:
            message = inbox.get()
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
            found = self.passes[piece.number] = RangePass(
                piece.low, piece.high, self.result, self.client
            )
        return found

    def _apply(self, piece: Slice, page: PageData) -> None:
        self._pass(piece).apply(page)
        self.result.pages += 1
        self.result.seconds = time.monotonic() - self.started
        if self.progress is not None:
            self.progress(self.result)

    def _finish(self, piece: Slice) -> None:
        one_pass = self._pass(piece)
        one_pass.narrow(piece.low)  # split: what is older was another slice's
        one_pass.finish()
        del self.passes[piece.number]


def _fetch(
    board: Board,
    client: StripeClient,
    inbox: queue.Queue[_Message],
    stop: threading.Event,
    requests: _Counter,
) -> None:
    """One stream: take a slice, page through it, hand each page over; then the next."""
    try:
        while not stop.is_set() and (piece := board.take()) is not None:
            query: dict[str, Any] = {**range_params(piece.low, piece.high), "limit": PAGE_SIZE}
            for data in client.iter_pages("/v1/customers", query, expand=expansions("data.")):
                requests.add()
                kept = board.advance(piece, data)
                if kept and not _hand_over(inbox, _Message(piece, kept), stop):
                    return
                if piece.done or stop.is_set():
                    break
            board.finish(piece)
            if not _hand_over(inbox, _Message(piece), stop):
                return
    except BaseException as exc:  # handed to the writer, which raises it in the caller
        _hand_over(inbox, _Message(None, error=exc), stop)
        return
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
