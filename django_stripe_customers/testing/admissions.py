"""What the rate limiters decided, for benchmarks: every admitted request's time per (API key,
endpoint), and refusals counted.

Times are ``time.monotonic()`` seconds, kept as 8-byte floats (``array``): a million requests
take about 12 MB. Past ``max_times`` the oldest tenth is dropped (``dropped`` says how many).
"""

from __future__ import annotations

import math
import threading
from array import array
from collections import Counter

from .limits import normalize_endpoint


class Admissions:
    """Thread-safe record of a ``Throttle``'s decisions (``record``), and queries over it."""

    def __init__(self, max_times: int = 1_000_000) -> None:
        if max_times < 1:
            raise ValueError(f"max_times must be >= 1, not {max_times!r}")
        self.max_times = max_times
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._series: dict[tuple[str, str], int] = {}  # (key, endpoint) -> series number
            self._times = array("d")
            self._of = array("I")  # each time's series number
            self._refused: Counter[tuple[str, str]] = Counter()
            self.dropped = 0

    def record(self, api_key: str, endpoint: str, now: float, admitted: bool) -> None:
        name = (api_key, endpoint)
        with self._lock:
            if not admitted:
                self._refused[name] += 1
                return
            series = self._series.get(name)
            if series is None:
                series = self._series[name] = len(self._series)
            self._times.append(now)
            self._of.append(series)
            if len(self._times) > self.max_times:
                drop = max(len(self._times) - self.max_times, self.max_times // 10)
                del self._times[:drop]
                del self._of[:drop]
                self.dropped += drop

    def _matching(self, endpoint: str | None, key: str | None) -> set[tuple[str, str]]:
        wanted = None if endpoint is None else normalize_endpoint(endpoint)
        return {
            name
            for name in (*self._series, *self._refused)
            if (wanted is None or name[1] == wanted) and (key is None or name[0] == key)
        }

    def times(self, endpoint: str | None = None, key: str | None = None) -> list[float]:
        """The recorded admission times of ``endpoint`` (any name ``normalize_endpoint``
        takes; None: all) for ``key`` (None: every key), in order."""
        with self._lock:
            names = self._matching(endpoint, key)
            wanted = {self._series[name] for name in names if name in self._series}
            if len(wanted) == len(self._series):
                return sorted(self._times)
            return sorted(
                t for t, series in zip(self._times, self._of, strict=True) if series in wanted
            )

    def max_in_window(
        self, endpoint: str | None = None, seconds: float = 1.0, key: str | None = None
    ) -> int:
        """The most admissions (as ``times``) in any window of ``seconds``: the largest number
        of recorded times ``t1 <= ... <= tn`` with ``tn - t1 < seconds``."""
        if not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"seconds must be > 0, not {seconds!r}")
        return max_in_window(self.times(endpoint, key), seconds)

    def count_admitted(self, endpoint: str | None = None, key: str | None = None) -> int:
        return len(self.times(endpoint, key))

    def count_refused(self, endpoint: str | None = None, key: str | None = None) -> int:
        """Requests refused (429 ``rate_limit``) by the limiters, never dropped."""
        with self._lock:
            return sum(self._refused[name] for name in self._matching(endpoint, key))

    def endpoints(self) -> list[str]:
        """Every endpoint a request was admitted to or refused from, sorted."""
        with self._lock:
            return sorted({name[1] for name in (*self._series, *self._refused)})


def max_in_window(times: list[float], seconds: float) -> int:
    """The most of the sorted ``times`` within any window of ``seconds`` (``last - first <
    seconds``, as ``SlidingWindow`` counts)."""
    best = start = 0
    for end, now in enumerate(times):
        while now - times[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best
