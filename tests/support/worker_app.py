"""Entry point of the real Celery worker in tests: Django set up, then the tests' app.

With ``WORKER_CRASH_MARKER`` set, the worker kills itself once, at the worst moment (see below).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import django

django.setup()

import django_stripe_customers.tasks  # noqa: E402, F401  (registers the tasks)
from django_stripe_customers.sync import pages, push  # noqa: E402
from tests.support.celery_app import app  # noqa: E402

__all__ = ["app"]


def _crash_once_after_stripe_answered(marker: Path) -> None:
    """Kill this worker process (no cleanup, no ack) the first time a push has Stripe's answer
    but has not written it to the database: the crash a real deployment can suffer."""
    apply_answer = push._apply_answer

    def crash_then_apply(*args: Any, **kwargs: Any) -> Any:
        try:
            marker.touch(exist_ok=False)
        except FileExistsError:
            return apply_answer(*args, **kwargs)
        os._exit(1)

    push._apply_answer = crash_then_apply


def _crash_once_in_a_slice(marker: Path) -> None:
    """Kill this worker process the first time a pull slice has written a page: the slice's
    message must go to another worker, which pulls the slice again."""
    apply = pages.RangePass.apply

    def crash_after_apply(self: Any, page: Any) -> None:
        apply(self, page)
        try:
            marker.touch(exist_ok=False)
        except FileExistsError:
            return
        os._exit(1)

    pages.RangePass.apply = crash_after_apply  # type: ignore[method-assign]


if os.environ.get("WORKER_CRASH_MARKER"):
    _crash_once_after_stripe_answered(Path(os.environ["WORKER_CRASH_MARKER"]))
if os.environ.get("WORKER_CRASH_SLICE_MARKER"):
    _crash_once_in_a_slice(Path(os.environ["WORKER_CRASH_SLICE_MARKER"]))
