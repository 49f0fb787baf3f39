"""Progress output of ``manage.py stripe_customers``: a ``tqdm`` bar on a terminal (customers/s
and, when the mirror already knows about how many there are, the time left), plain lines every
few seconds otherwise (logs, CI)."""

from __future__ import annotations

import time
from typing import Any, TextIO

from django.core.management.base import OutputWrapper
from tqdm import tqdm

from ..sync.pages import PullResult
from .arguments import counted


def _bar(stream: OutputWrapper, total: int | None, unit: str) -> tqdm[Any]:
    out: TextIO = stream._out  # type: ignore[assignment]  # the stream itself: tqdm rewrites its line
    bar: tqdm[Any] = tqdm(
        total=total,
        unit=f" {unit}",
        file=out,
        dynamic_ncols=True,
        smoothing=0.1,
        leave=True,
    )
    return bar


class Progress:
    """A pull's progress; ``latest`` is the last result seen (what a pull had written when it
    stopped). ``expected``: about how many customers there are (the mirror's count), for the
    time left; a first pull does not know it."""

    def __init__(self, stream: OutputWrapper, expected: int | None = None, every: float = 5.0):
        self.stream, self.every = stream, every
        self._bar = _bar(stream, expected or None, "customers") if stream.isatty() else None
        self._last = 0.0
        self.latest: PullResult | None = None

    def __call__(self, result: PullResult) -> None:
        self.latest = result
        if self._bar is not None:
            if self._bar.total is not None and result.seen > self._bar.total:
                self._bar.total = result.seen
            self._bar.update(result.seen - self._bar.n)
            self._bar.set_postfix(new=result.created, updated=result.updated, refresh=False)
        elif time.monotonic() - self._last >= self.every:
            self._last = time.monotonic()
            rate = result.seen / result.seconds if result.seconds > 0 else 0.0
            self.stream.write(
                f"{counted(result.seen, 'customer')} ({result.created:,} new, "
                f"{result.updated:,} updated) in {counted(result.pages, 'page')}, "
                f"{result.seconds:.1f}s, {rate:,.0f}/s"
            )

    def done(self) -> None:
        if self._bar is not None:
            self._bar.close()


class Bar:
    """A bar over a known number of items (plain lines every few seconds when not a terminal)."""

    def __init__(self, stream: OutputWrapper, total: int, unit: str = "customers") -> None:
        self.stream, self.total = stream, total
        self._bar = _bar(stream, total, unit) if stream.isatty() else None
        self._last = 0.0

    def update(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
        elif time.monotonic() - self._last >= 5 or done == self.total:
            self._last = time.monotonic()
            self.stream.write(f"{done}/{self.total}")

    def done(self) -> None:
        if self._bar is not None:
            self._bar.close()
