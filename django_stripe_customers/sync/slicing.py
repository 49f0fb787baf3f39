"""How streams share a whole-account pull: slices of the ``created`` range, cut as they go.

Stripe lists customers newest first and says nothing of how old the oldest is. The first
request lists the newest page (kept: it is complete in itself) and tells how dense customers
are. Streams then take slices cut from a frontier moving back in time, each sized to hold about
``SLICE_PAGES`` pages at the density the last slices showed; after an empty slice the next
takes everything left; so does the slice after one whose customers ended well above its lower
bound (they thinned out: the oldest may be near). Once the frontier is at the bottom, a stream
that runs out takes the older half of the slice with the most customers left (``Board.take``),
so skew in ``created`` does not leave one stream with all the work. Slice boundaries cost a
partial page each. Below the oldest customer every slice is empty, and only a slice's first
page tells: at most ``UNKNOWN_SLICES`` slices wait for theirs at a time (the other streams wait
meanwhile), so the walk back costs that many empty pages at most, and one for the rest of the
range below them, however many streams.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from ..accounts import Account
from ..stripe import PageData, StripeClient
from . import listing
from .listing import PAGE_SIZE

#: Pages a new slice should hold: fewer slices (each ends on a partial page) against balance.
SLICE_PAGES: Final = 5
#: The smallest span of ``created`` (seconds) worth cutting in two.
MIN_SPLIT_SECONDS: Final = 2
#: A slice is split only when what is left of it should hold this many pages (both halves get
#: at least one full page, so a split costs less than it saves).
MIN_SPLIT_PAGES: Final = 3
#: Slices cut from the frontier whose first page has not come back, at most (``None``: as many
#: as there are streams). Enough to keep a limit of 25 requests/s busy at Stripe's round trip
#: while the others are under way; few enough that a walk past the oldest customer is short.
UNKNOWN_SLICES: Final = 4
#: A finished slice whose oldest customer is more than this many pages (at the slice's own
#: density) above its lower bound has thinned out: the next slice takes everything left.
THIN_PAGES: Final = 1


@dataclass
class Slice:
    """Customers created in ``[low, high)``, fetched newest first; ``cursor`` is the created
    time of the last one fetched (what is left is ``[low, cursor]``), ``fetched`` how many."""

    number: int
    low: int
    high: int
    cursor: int | None = None
    fetched: int = 0
    done: bool = False
    account: Account | None = None  # of a pull of several accounts; else the pull's
    requests: int = 0  # list requests sent for it (counted for a pull of several accounts)

    def left(self) -> int:
        """Seconds of ``created`` not fetched yet."""
        top = self.high - 1 if self.cursor is None else self.cursor
        return max(0, top - self.low)

    def expected_left(self) -> float:
        """Customers expected in what is left, at the density fetched so far (nothing fetched
        yet: none, so a slice is never split before its first page tells its density)."""
        if self.cursor is None or self.fetched == 0:
            return 0.0
        return self.fetched / max(1, self.high - self.cursor) * self.left()


@dataclass
class Start:
    """The newest page of ``[low, high)`` (applied as it is: slice ``head``) and the board the
    streams share for the rest."""

    head: PageData
    head_slice: Slice
    board: Board


def start(client: StripeClient, low: int, high: int, *, count: Callable[[], None]) -> Start:
    """List the newest page of ``[low, high)``; ``count`` is called per request sent."""
    count()
    head = listing.first_page(client, low, high)
    if not head or not head.has_more:
        return Start(head, Slice(0, low, high, done=True), Board(low, low, 1.0))
    newest, boundary = head[0]["created"], head[-1]["created"]
    # The head holds every customer newer than ``boundary``; those of that very second go with
    # the older slices (the page may have cut through them).
    kept = _page(obj for obj in head if obj["created"] > boundary)
    kept.last_response = head.last_response
    density = len(head) / max(1, newest - boundary + 1)
    return Start(kept, Slice(0, boundary + 1, high, done=True), Board(low, boundary + 1, density))


def _page(objects: Iterable[dict[str, Any]]) -> PageData:
    return PageData(objects)


#: ``Board.take``'s answer when nothing can be handed out yet, but a slice in progress may be
#: split once its first page tells how many customers it holds: ask again shortly.
WAIT: Final = Slice(-1, 0, 0, done=True)
#: How long a stream waits before asking again.
WAIT_SECONDS: Final = 0.05


class Board:
    """The slices streams share: cut new ones from the frontier, or split one in progress.
    ``slice_pages`` and ``min_split_pages``: as ``SLICE_PAGES`` and ``MIN_SPLIT_PAGES``."""

    def __init__(
        self,
        low: int,
        frontier: int,
        density: float,
        *,
        slice_pages: int = SLICE_PAGES,
        min_split_pages: int = MIN_SPLIT_PAGES,
        unknown_slices: int | None = UNKNOWN_SLICES,
    ) -> None:
        self.low, self.frontier, self.density = low, frontier, density
        self.slice_pages, self.min_split_pages = slice_pages, min_split_pages
        self.unknown_slices = unknown_slices
        self.slices: list[Slice] = []
        self._everything_left = False
        self._lock = threading.Lock()

    def take(self) -> Slice | None:
        """A slice to fetch; ``WAIT`` to ask again shortly; None when nothing is left to
        share."""
        with self._lock:
            if self.frontier > self.low:
                if self.unknown_slices is not None and self._unknown() >= self.unknown_slices:
                    return WAIT  # where the customers end is told by those first pages
                return self._cut()
            return self._split()

    def cut(self) -> Slice:
        """The next slice from the frontier, however many wait for their first page: for a
        plan made before any is listed (Celery partitions); the frontier must be above
        ``low``."""
        with self._lock:
            return self._cut()

    def _unknown(self) -> int:
        return sum(1 for s in self.slices if not s.done and s.cursor is None)

    def _cut(self) -> Slice:
        span = int(self.slice_pages * PAGE_SIZE / max(self.density, 1e-9))
        low = self.low if self._everything_left else max(self.low, self.frontier - max(1, span))
        piece = Slice(len(self.slices) + 1, low, self.frontier)
        self.frontier = low
        self.slices.append(piece)
        return piece

    def _split(self) -> Slice | None:
        worth = [
            s
            for s in self.slices
            if not s.done
            and s.left() >= MIN_SPLIT_SECONDS
            and s.expected_left() >= self.min_split_pages * PAGE_SIZE
        ]
        if not worth:
            # A slice whose first page has not come back may hold most of what is left (after
            # a burst of new customers, the newest page overstates the density): the stream
            # waits to split it rather than ending.
            unknown = [s for s in self.slices if not s.done and s.cursor is None]
            return WAIT if any(s.left() >= MIN_SPLIT_SECONDS for s in unknown) else None
        largest = max(worth, key=Slice.expected_left)
        middle = largest.low + largest.left() // 2 + 1
        older = Slice(len(self.slices) + 1, largest.low, middle)
        largest.low = middle
        self.slices.append(older)
        return older

    def advance(self, piece: Slice, page: PageData) -> PageData:
        """Record a fetched page of ``piece``; what it holds below the slice's (maybe raised)
        ``low`` belongs to a split-off slice and is dropped. The slice is done after its last
        page, or once a page reached below ``low``."""
        with self._lock:
            kept = _page(obj for obj in page if obj["created"] >= piece.low)
            kept.last_response = page.last_response
            if kept:
                piece.cursor = kept[-1]["created"]
                piece.fetched += len(kept)
            if len(kept) < len(page) or not page.has_more:
                piece.done = True
            return kept

    def finish(self, piece: Slice) -> None:
        """``piece`` is fetched: its density sizes the next slices; empty, the next slice takes
        everything left (the customers may have ended there)."""
        with self._lock:
            piece.done = True
            if piece.fetched:
                self.density = piece.fetched / max(1, piece.high - piece.low)
                if _thinned_out(piece):
                    self._everything_left = True
            elif piece.cursor is None:
                self._everything_left = True


def _thinned_out(piece: Slice) -> bool:
    """Whether the customers of a fetched slice ended more than ``THIN_PAGES`` pages (at its
    own density) above its lower bound."""
    if piece.cursor is None:
        return False
    fetched_span = max(1, piece.high - piece.cursor)
    return (piece.cursor - piece.low) * piece.fetched > THIN_PAGES * PAGE_SIZE * fetched_span


class AccountQueue:
    """The work of a pull of several accounts: each account's whole range is one slice, taken
    by the next free stream (a board of ``Board``'s shape, without splits)."""

    def __init__(self, accounts: Iterable[Account], low: int, high: int) -> None:
        self.pieces = {
            account: Slice(number, low, high, account=account)
            for number, account in enumerate(accounts)
        }
        self._waiting = list(reversed(self.pieces.values()))
        self._lock = threading.Lock()

    def take(self) -> Slice | None:
        with self._lock:
            return self._waiting.pop() if self._waiting else None

    def advance(self, piece: Slice, page: PageData) -> PageData:
        """Record one fetched page of ``piece`` (its stream's alone: no lock needed)."""
        piece.requests += 1
        piece.fetched += len(page)
        if not page.has_more:
            piece.done = True
        return page

    def finish(self, piece: Slice) -> None:
        piece.done = True
