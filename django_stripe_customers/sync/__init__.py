"""Sync between the local rows and Stripe: ``pull`` (Stripe -> DB) and ``push`` (DB -> Stripe).

Plain functions that decide and return; the tasks and the receivers run them.
"""

from __future__ import annotations

from .pages import PullResult
from .pull import apply_customer, pull_customer
from .push import PushResult, push_customer
from .runs import pull_all

__all__ = [
    "PullResult",
    "PushResult",
    "apply_customer",
    "pull_all",
    "pull_customer",
    "push_customer",
]
