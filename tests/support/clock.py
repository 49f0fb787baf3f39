"""A fake clock for code that is given ``now`` and ``sleep`` functions."""

from __future__ import annotations


class FakeTime:
    """A clock that only moves when someone sleeps (or the test says so)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
