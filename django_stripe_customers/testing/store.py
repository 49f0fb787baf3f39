"""The emulator's state: a movable clock, customers and events in newest-first order, ids.

One ``Store`` holds the data of one account in one mode (``livemode``, ``account``: None for
the platform's own; ``platform``: the platform it is of, None for the default one);
``platforms.Stores`` keeps them all. One ``threading.RLock``
(``Store.lock``, shared by every store) guards everything; callers hold it for a whole
operation, so each API call is atomic.
"""

from __future__ import annotations

import bisect
import random
import string
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_ALPHANUMERIC = string.ascii_letters + string.digits

Key = tuple[int, int, str]


class Clock:
    """Unix time as the emulator sees it: real time, shifted or frozen by the test.

    ``set(ts)`` freezes the clock at ``ts``; ``advance(s)`` moves it (frozen or not);
    ``reset()`` goes back to how it was built.
    """

    def __init__(self, start: int | None = None) -> None:
        self._initial = start
        self._frozen = start
        self._offset = 0

    def now(self) -> int:
        if self._frozen is not None:
            return self._frozen
        return int(time.time()) + self._offset

    def advance(self, seconds: int) -> int:
        if self._frozen is not None:
            self._frozen += int(seconds)
        else:
            self._offset += int(seconds)
        return self.now()

    def set(self, timestamp: int) -> None:
        self._frozen = int(timestamp)

    def reset(self) -> None:
        self._frozen = self._initial
        self._offset = 0


@dataclass
class Page:
    ids: list[str]
    has_more: bool


class SortedIndex:
    """Object ids newest first; ties (same ``created``) broken by insertion, newest first.

    Keys stay known after ``remove`` so a removed object still works as a paging cursor.
    """

    def __init__(self) -> None:
        self._keys: list[Key] = []
        self._key_of: dict[str, Key] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, object_id: str, created: int) -> None:
        self._seq += 1
        key = (-created, -self._seq, object_id)
        bisect.insort(self._keys, key)
        self._key_of[object_id] = key

    def remove(self, object_id: str) -> None:
        key = self._key_of[object_id]
        position = bisect.bisect_left(self._keys, key)
        if position < len(self._keys) and self._keys[position] == key:
            del self._keys[position]

    def knows(self, object_id: str) -> bool:
        return object_id in self._key_of

    def page(
        self,
        *,
        limit: int,
        starting_after: str | None = None,
        ending_before: str | None = None,
        created: tuple[int | None, int | None] = (None, None),
        match: Callable[[str], bool] | None = None,
    ) -> Page:
        """Up to ``limit`` ids after (or before) a cursor, within ``created`` (inclusive)."""
        low, high = created
        start = 0 if high is None else bisect.bisect_left(self._keys, (-high, -(2**62), ""))
        end = len(self._keys) if low is None else bisect.bisect_right(self._keys, (-low, 1, ""))
        if starting_after is not None:
            start = max(start, bisect.bisect_right(self._keys, self._key_of[starting_after]))
        if ending_before is not None:
            end = min(end, bisect.bisect_left(self._keys, self._key_of[ending_before]))
        found: list[str] = []
        if ending_before is not None and starting_after is None:
            positions = range(end - 1, start - 1, -1)
        else:
            positions = range(start, end)
        for position in positions:
            object_id = self._keys[position][2]
            if match is None or match(object_id):
                found.append(object_id)
                if len(found) > limit:
                    break
        has_more = len(found) > limit
        found = found[:limit]
        if ending_before is not None and starting_after is None:
            found.reverse()
        return Page(found, has_more)


@dataclass
class IdempotentResult:
    """What a key was first used for and, once finished, the answer to replay."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...]
    created: int
    request_id: str
    status: int | None = None
    body: bytes | None = None


@dataclass
class LoggedRequest:
    """One request as the emulator received it; ``Authorization`` is never stored."""

    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]
    request_id: str
    time: int
    status: int = 0


@dataclass
class Store:
    clock: Clock
    lock: threading.RLock = field(default_factory=threading.RLock)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    customer_index: SortedIndex = field(default_factory=SortedIndex)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    event_index: SortedIndex = field(default_factory=SortedIndex)
    idempotency: dict[tuple[str, str], IdempotentResult] = field(default_factory=dict)
    max_logged_requests: int = 100_000
    requests: deque[LoggedRequest] = field(default_factory=deque)
    rng: random.Random = field(default_factory=random.Random)
    livemode: bool = False
    account: str | None = None
    platform: str | None = None  # the id of the platform (an added key's), None: the default

    def __post_init__(self) -> None:
        self.requests = deque(maxlen=self.max_logged_requests)

    def sibling(self, *, livemode: bool, account: str | None, platform: str | None = None) -> Store:
        """An empty store sharing this one's clock, lock and ids (it logs no requests)."""
        return Store(
            self.clock,
            lock=self.lock,
            max_logged_requests=0,
            rng=self.rng,
            livemode=livemode,
            account=account,
            platform=platform,
        )

    def reset(self) -> None:
        with self.lock:
            self.customers = {}
            self.customer_index = SortedIndex()
            self.events = {}
            self.event_index = SortedIndex()
            self.idempotency = {}
            self.requests = deque(maxlen=self.max_logged_requests)

    def new_id(self, prefix: str, length: int = 14) -> str:
        """``cus_`` + 14 alphanumerics, like Stripe's ids."""
        return prefix + "".join(self.rng.choices(_ALPHANUMERIC, k=length))

    def new_invoice_prefix(self) -> str:
        return f"{self.rng.getrandbits(32):08X}"

    def add_customer(self, customer: dict[str, Any]) -> None:
        self.customers[customer["id"]] = customer
        self.customer_index.add(customer["id"], customer["created"])

    def mark_deleted(self, customer_id: str) -> None:
        self.customers[customer_id]["deleted"] = True
        self.customer_index.remove(customer_id)

    def add_event(self, event: dict[str, Any]) -> None:
        self.events[event["id"]] = event
        self.event_index.add(event["id"], event["created"])

    def log(self, entry: LoggedRequest) -> None:
        """Keep the request (the oldest are dropped past ``max_logged_requests``)."""
        self.requests.append(entry)

    def remember(self, key: tuple[str, str], result: IdempotentResult, ttl: int) -> None:
        """Store an idempotent result; expired ones are pruned now and then."""
        self.idempotency[key] = result
        if len(self.idempotency) % 1024 == 0:
            horizon = result.created - ttl
            self.idempotency = {k: v for k, v in self.idempotency.items() if v.created > horizon}
