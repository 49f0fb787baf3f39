"""Sync between the local rows and Stripe: ``pull`` (Stripe -> DB) and ``push`` (DB -> Stripe)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "PullResult",
    "PushResult",
    "apply_customer",
    "pull_all",
    "pull_customer",
    "push_customer",
]

if TYPE_CHECKING:
    from .pages import PullResult
    from .pull import apply_customer, pull_customer
    from .push import PushResult, push_customer
    from .runs import pull_all

_MODULES = {
    "PullResult": "pages",
    "PushResult": "push",
    "push_customer": "push",
    "pull_all": "runs",
}


def __getattr__(name: str) -> Any:
    # Lazy, so importing the package does not import models before the app registry is ready.
    if name in __all__:
        from importlib import import_module

        return getattr(import_module(f".{_MODULES.get(name, 'pull')}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
