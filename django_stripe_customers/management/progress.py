"""Progress output of ``manage.py stripe_customers``: a rewritten line on a terminal, plain
lines every few seconds otherwise (logs, CI)."""

from __future__ import annotations

import time

from django.core.management.base import OutputWrapper

from ..sync.pages import PullResult
from .arguments import counted


class Progress:
    """One line rewritten in place on a terminal; a plain line every few seconds otherwise.

    ``latest`` is the last result seen: what a pull had written when it stopped.
    """

    def __init__(self, stream: OutputWrapper, every: float = 5.0) -> None:
        self.stream, self.is_tty, self.every = stream, stream.isatty(), every
        self._last = 0.0
        self.latest: PullResult | None = None

    def __call__(self, result: PullResult) -> None:
        self.latest = result
        rate = result.seen / result.seconds if result.seconds > 0 else 0.0
        line = (
            f"{counted(result.seen, 'customer')} ({result.created:,} new, "
            f"{result.updated:,} updated) in {counted(result.pages, 'page')}, "
            f"{result.seconds:.1f}s, {rate:,.0f}/s"
        )
        if self.is_tty:
            self.stream.write(f"\r\033[K{line}", ending="")
            self.stream.flush()
        elif time.monotonic() - self._last >= self.every:
            self._last = time.monotonic()
            self.stream.write(line)

    def done(self) -> None:
        if self.is_tty:
            self.stream.write("")


class Bar:
    """A progress bar over a known number of items (plain lines when not a terminal)."""

    def __init__(self, stream: OutputWrapper, total: int, width: int = 30) -> None:
        self.stream, self.total, self.width = stream, total, width
        self.is_tty = stream.isatty()
        self._last = 0.0

    def update(self, done: int) -> None:
        filled = self.width * done // max(self.total, 1)
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total}"
        if self.is_tty:
            self.stream.write(f"\r{line}", ending="")
            self.stream.flush()
        elif time.monotonic() - self._last >= 5 or done == self.total:
            self._last = time.monotonic()
            self.stream.write(line)

    def done(self) -> None:
        if self.is_tty and self.total:
            self.stream.write("")
