"""Threads that use the database in a test, as a second connection would in a project."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connections


def database_thread(target: Callable[[], Any], name: str | None = None) -> threading.Thread:
    """A started thread running ``target``, its own database connections closed when it ends
    (as Django closes a request's). Without that the connection lives until the thread's
    objects are garbage collected, and on PostgreSQL the run's test database cannot be dropped
    while it does."""

    def run() -> None:
        try:
            target()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread
