"""How work a commit schedules (a push, a webhook event) runs: through Celery or in-process.

``PUSH_MODE`` says which: ``"celery"`` sends a task to the project's broker; ``"inline"`` runs
the work in this process, in one background thread, right after the commit; ``"auto"`` (the
default) is Celery when the project has a Celery app of its own, inline otherwise, so a
project without a worker still reaches Stripe.

Neither way holds a save for long: a broker that has not taken a task within
``ENQUEUE_TIMEOUT`` is left to it in the background, and an inline push is waited for at most
``INLINE_WAIT``. Either way the row is the outbox: what did not run stays pending, and the
sweep sends it later: Celery beat's ``push_pending_task``, or, inline, a timer in the process
(``RETRIER``) that runs the sweep every ``PUSH_SWEEP_AFTER`` seconds while work is left.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Final

from celery import current_app
from django.db import close_old_connections

from .conf import get_setting

logger = logging.getLogger("django_stripe_customers.push")

MODES: Final = ("auto", "celery", "inline")
#: Seconds a save waits for the broker to take its task.
ENQUEUE_TIMEOUT: Final = 1.0
#: Seconds a save waits for its inline push (usually done: Stripe answers in well under that).
INLINE_WAIT: Final = 5.0
#: Jobs waiting for a background thread, at most (more are dropped: their rows stay pending).
MAX_WAITING: Final = 10_000


def project_celery_app() -> Any | None:
    """The project's own Celery app, or None when only Celery's built-in fallback exists."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # a Proxy
    return None if app.main == "default" else app


def push_mode() -> str:
    """``"celery"`` or ``"inline"``: the setting, with ``"auto"`` resolved."""
    mode = get_setting("PUSH_MODE")
    if mode == "auto":
        return "celery" if project_celery_app() is not None else "inline"
    return str(mode)


def is_eager(app: Any) -> bool:
    return bool(app is not None and app.conf.task_always_eager)


class Background:
    """One daemon thread running jobs in order, started on first use in each process (so a
    server that forks its workers gets one per worker)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.Queue[tuple[Callable[[], None], threading.Event]] = queue.Queue(
            MAX_WAITING
        )
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> threading.Event | None:
        """Queue ``job``; the event is set when it has run. None when the queue is full."""
        self._ensure_running()
        done = threading.Event()
        try:
            self._jobs.put_nowait((job, done))
        except queue.Full:
            return None
        return done

    def _ensure_running(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            job, done = self._jobs.get()
            close_old_connections()
            try:
                job()
            except Exception:  # the row keeps the work pending; one failure stops nothing
                logger.exception("%s: a background job failed", self.name)
            finally:
                close_old_connections()
                done.set()


class Repeater:
    """A daemon thread that runs ``job`` on a ``Background`` worker every ``interval()``
    seconds for as long as it returns True (work is left), then ends; ``ensure`` starts it
    again. Work left while a round runs is never missed: ``ensure`` asks for another round."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._wanted = False
        self._stop = threading.Event()

    def ensure(
        self, job: Callable[[], bool], interval: Callable[[], float], worker: Background
    ) -> None:
        with self._lock:
            self._wanted = True
            if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run,
                args=(job, interval, worker, self._stop),
                name=self.name,
                daemon=True,
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread (between rounds): for tests, and a process that shuts down."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _run(
        self,
        job: Callable[[], bool],
        interval: Callable[[], float],
        worker: Background,
        stop: threading.Event,
    ) -> None:
        while not stop.wait(interval()):
            with self._lock:
                self._wanted = False
            left = [True]  # a job that raised (logged by the worker) may have left work
            done = worker.submit(partial(_store, left, job))
            if done is not None:
                done.wait()
            with self._lock:
                if not left[0] and not self._wanted:
                    if self._thread is threading.current_thread():
                        self._thread = None
                    return


def _store(into: list[bool], job: Callable[[], bool]) -> None:
    into[0] = job()


#: Sends tasks to the broker (so a hung broker holds this thread, not a request).
SENDER: Final = Background("stripe-customers-enqueue")
#: Runs pushes and events inline, one at a time.
RUNNER: Final = Background("stripe-customers-inline")
#: Retries inline what is left pending (Stripe down), on a timer, not only on the next save.
RETRIER: Final = Repeater("stripe-customers-inline-retry")


def run_soon(job: Callable[[], None], what: str, *, wait: float, worker: Background) -> bool:
    """Run ``job`` on ``worker`` and wait up to ``wait`` seconds; True if it finished."""
    started = time.monotonic()
    done = worker.submit(job)
    if done is None:
        logger.warning("Too much waiting to run %s; it stays pending for the sweep.", what)
        return False
    if done.wait(wait):
        return True
    logger.warning(
        "%s did not finish within %.1f s; it goes on in the background (the row is pending "
        "until then).",
        what,
        time.monotonic() - started,
    )
    return False
