"""The customer events after a reconcile's cursor, page by page, in one stream or several.

One stream follows the cursor toward the newest event (``ending_before``, a page a request):
the fewest requests, one round trip after another. Several streams first ask two things at
once: the page right after the cursor (which also tells whether Stripe still has the cursor's
event) and the newest page since the cursor's second. When both leave events in between:

- spread over ``BOARD_SECONDS`` or more, the streams share that ``created`` range as a
  whole-account pull shares customers (``slicing.Board``: slices sized from the density seen,
  split while they are fetched);
- within fewer seconds (a burst, which slices of whole seconds cannot share out), two chains
  list it from both ends, toward each other (``ending_before`` up from the first page,
  ``starting_after`` down from the newest), until one lists an event the other listed: half
  the round trips of one chain.

Pages are yielded as they come, in no particular order (events are applied against their rows'
times, so order does not matter); an event may be listed twice (at slice edges, where the
chains meet), and is stored once. ``newest`` is the newest event listed: where the next
reconcile starts.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final

from ..descriptions import CUSTOMERS
from ..stripe import PageData, StripeClient
from .slicing import WAIT, WAIT_SECONDS, Board

PATH: Final = "/v1/events"
#: The Events API's largest page.
PAGE: Final = 100
#: Pages a slice should hold, and what is left of one worth splitting: fewer than a pull's.
#: A reconcile's events are a few pages, and their round trips, one after another, are its
#: cost; a partial page more at each slice's edge is cheap within the Events API's limit.
SLICE_PAGES: Final = 2
SPLIT_PAGES: Final = 2
#: Below this many seconds between the two first pages, the events between them are a burst
#: that slices of whole seconds cannot share out: two chains list it from both ends instead.
BOARD_SECONDS: Final = 8
#: How long the caller waits for a page before looking whether a stream failed.
POLL_SECONDS: Final = 0.2

Page = list[dict[str, Any]]
Inbox = queue.Queue[PageData | BaseException | None]
_Stream = Callable[[Inbox, threading.Event], None]


class EventListing:
    """The customer events of ``client``'s account after ``cursor`` (an event id), or, with
    no id, since ``since`` (a Unix time), listed in ``streams`` streams."""

    def __init__(self, client: StripeClient, cursor: str, since: int, streams: int = 1) -> None:
        self.client, self.cursor, self.since = client, cursor, since
        self.streams = max(1, streams)
        self.requests = 0
        self.newest: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def pages(self) -> Iterator[Page]:
        """Every page (``InvalidRequestError`` ``resource_missing`` when Stripe no longer has
        the cursor's event)."""
        if self.streams == 1 or not self.cursor:
            return self._one_stream()
        return self._streams()

    # -- one stream --------------------------------------------------------------------------

    def _one_stream(self) -> Iterator[Page]:
        """Toward the newest from the cursor's id; with only its time, newest first."""
        params = self._params()
        if self.cursor:
            params["ending_before"] = self.cursor
        else:
            params["created[gte]"] = self.since
        while True:
            page = self._list(params)
            if page and (self.cursor or self.newest is None):
                self.newest = page[0]  # each page lists newest first
            yield page
            if not page.has_more or not page:
                return
            if self.cursor:
                params["ending_before"] = page[0]["id"]
            else:
                params["starting_after"] = page[-1]["id"]

    # -- several -----------------------------------------------------------------------------

    def _streams(self) -> Iterator[Page]:
        with ThreadPoolExecutor(self.streams, thread_name_prefix="reconcile-events") as pool:
            after = pool.submit(self._list, {**self._params(), "ending_before": self.cursor})
            head = pool.submit(self._list, {**self._params(), "created[gte]": self.since})
            first = after.result()  # raises for a cursor Stripe no longer has
            if first:
                self.newest = first[0]
            yield first
            if not first.has_more:
                _quietly(head)  # nothing is newer than the page after the cursor
                return
            top = head.result()
            self.newest = top[0]
            yield top
            if not top.has_more:
                return
            if {event["id"] for event in first} & {event["id"] for event in top}:
                return  # the two pages meet: nothing is between them
            # Between the newest event of the page after the cursor and the head's oldest
            # (both pages may have cut through a second: its events are listed again).
            low, boundary = int(first[0]["created"]), int(top[-1]["created"])
            if boundary - low < BOARD_SECONDS:  # a burst: too few seconds to slice
                chains = _Meeting()
                streams: list[_Stream] = [
                    functools.partial(self._chain, chains, True, first[0]["id"]),
                    functools.partial(self._chain, chains, False, top[-1]["id"]),
                ]
            else:
                density = len(top) / max(1, int(top[0]["created"]) - boundary + 1)
                # The oldest event is known (``first``): no walk past it to bound.
                board = Board(
                    low,
                    boundary + 1,
                    density,
                    slice_pages=SLICE_PAGES,
                    min_split_pages=SPLIT_PAGES,
                    unknown_slices=None,
                )
                streams = [functools.partial(self._slices, board)] * self.streams
            yield from self._run(pool, streams)

    def _run(self, pool: ThreadPoolExecutor, streams: list[_Stream]) -> Iterator[Page]:
        """The pages of ``streams``, run in ``pool``, as they come; the first failure raised."""
        inbox: Inbox = queue.Queue(maxsize=2 * self.streams)
        stop = threading.Event()
        running = [pool.submit(_reporting, stream, inbox, stop) for stream in streams]
        ended = 0
        try:
            while ended < len(running):
                try:
                    message = inbox.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    continue
                if message is None:
                    ended += 1
                elif isinstance(message, BaseException):
                    raise message
                else:
                    yield message
        finally:
            stop.set()
            while any(not future.done() for future in running):  # free a stream that waits
                try:
                    inbox.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    continue

    def _slices(self, board: Board, inbox: Inbox, stop: threading.Event) -> None:
        """One stream of a ``Board``: slice after slice, page after page."""
        while not stop.is_set() and (piece := board.take()) is not None:
            if piece is WAIT:
                stop.wait(WAIT_SECONDS)
                continue
            params = {**self._params(), "created[gte]": piece.low, "created[lt]": piece.high}
            while not stop.is_set():
                page = self._list(params)
                kept = board.advance(piece, page)
                if kept:
                    _put(inbox, kept, stop)
                if piece.done or not page:
                    break
                params["starting_after"] = page[-1]["id"]
            board.finish(piece)

    def _chain(
        self, chains: _Meeting, up: bool, anchor: str, inbox: Inbox, stop: threading.Event
    ) -> None:
        """From ``anchor`` toward the newest (``up``: ``ending_before``) or the oldest
        (``starting_after``), page after page, until the other chain's events are reached."""
        direction = "ending_before" if up else "starting_after"
        # Down, never below the cursor's second (should the chains not meet).
        params = self._params() if up else {**self._params(), "created[gte]": self.since}
        while not stop.is_set() and not chains.met.is_set():
            page = self._list({**params, direction: anchor})
            _put(inbox, page, stop)
            if chains.reached(page, up) or not page.has_more or not page:
                return
            anchor = page[0]["id"] if up else page[-1]["id"]

    # -- both --------------------------------------------------------------------------------

    def _params(self) -> dict[str, Any]:
        return {"type": CUSTOMERS.event_filter, "limit": PAGE}

    def _list(self, params: dict[str, Any]) -> PageData:
        page = self.client.list_page(PATH, params)
        with self._lock:
            self.requests += 1
        return page


def _quietly(future: Future[PageData]) -> PageData | None:
    """A request's answer, or None when it failed (its page is not needed)."""
    try:
        return future.result()
    except Exception:  # not needed: the events are all in the page after the cursor
        return None


class _Meeting:
    """Two chains listing toward each other: the ids each has listed, and whether they met."""

    def __init__(self) -> None:
        self.listed: dict[bool, set[str]] = {True: set(), False: set()}
        self.met = threading.Event()
        self._lock = threading.Lock()

    def reached(self, page: Page, up: bool) -> bool:
        """Record the page of the chain going ``up`` (or down); True once the chains met."""
        ids = {event["id"] for event in page}
        with self._lock:
            self.listed[up] |= ids
            if ids & self.listed[not up]:
                self.met.set()
        return self.met.is_set()


def _reporting(stream: _Stream, inbox: Inbox, stop: threading.Event) -> None:
    """Run one stream; its end (None) or its failure goes to ``inbox``."""
    try:
        stream(inbox, stop)
    except BaseException as exc:  # raised in the caller
        _put(inbox, exc, stop)
        return
    _put(inbox, None, stop)


def _put(inbox: Inbox, message: PageData | BaseException | None, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            inbox.put(message, timeout=POLL_SECONDS)
            return
        except queue.Full:
            continue
