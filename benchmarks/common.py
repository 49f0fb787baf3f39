"""Helpers the benchmarks share: which revision of the code a result was measured on, the SQL
statements a measured run sent, and an emulator whose clock no collection pause shifts."""

from __future__ import annotations

import contextlib
import gc
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def source_state() -> str:
    """The commit measured, and whether the app had uncommitted changes (read-only git)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "django_stripe_customers"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "an unknown revision"
    return f"{head} + uncommitted changes" if dirty else head


#: What the reports say of ``collector_paused`` (one wording, every report that uses it).
COLLECTOR_NOTE = (
    "Python's cyclic garbage collector is off in the emulator's process while a row is timed "
    "(collected before it): a full collection of the emulator's store stalls it for up to "
    "150 ms (measured with 10,000 customers), the requests that arrived meanwhile are then "
    "admitted in a bunch, and a strict window one second later refuses requests sent on time; "
    "Stripe's limiter does not stop for our emulator's collector"
)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block with this process's cyclic garbage collector off, after one collection.

    For the process that hosts the emulator while a strict-window row is timed: the emulator
    stamps a request when its thread reads it, so a collection pause (every thread stopped)
    stamps everything that arrived meanwhile at the pause's end. The emulator's garbage is
    freed by reference counting meanwhile; what is cyclic waits for the next collection.
    """
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class StatementCounter:
    """Counts the SQL statements a measured run sends and the seconds spent inside
    ``cursor.execute`` (driver-side adaptation and the database itself), on this thread's
    connection and on every connection opened meanwhile (a pull's writer threads have their
    own)."""

    def __init__(self) -> None:
        self.queries = 0
        self.db_seconds = 0.0
        self._lock = threading.Lock()

    def __call__(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            with self._lock:
                self.queries += 1
                self.db_seconds += time.perf_counter() - started

    def _on_connect(self, sender, connection, **kwargs):  # type: ignore[no-untyped-def]
        connection.execute_wrappers.append(self)

    @contextlib.contextmanager
    def counting(self) -> Iterator[StatementCounter]:
        """Count within the block (Django set up, its connection open)."""
        from django.db import connection
        from django.db.backends.signals import connection_created

        connection_created.connect(self._on_connect, weak=False)
        try:
            with connection.execute_wrapper(self):
                yield self
        finally:
            connection_created.disconnect(self._on_connect)
