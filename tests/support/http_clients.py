"""Django's and DRF's test clients, each request ending as a committed request would.

A test in a transaction that is rolled back after it (``django_db`` without
``transaction=True``) never commits, so what a request scheduled with
``transaction.on_commit`` (the push of a save) would never run and a test asserting "nothing
was sent" could not fail. These clients run those callbacks when the request's handling ends,
before the response reaches the test, as the commit at the end of the request would (each
redirect followed is a request of its own). In a transactional test each callback has already
run at its own commit and this changes nothing.

Where a test observes *when* inside the request the push ran (the API answering the row a push
just synced, say) it must stay transactional: only a real commit runs the callback there.
"""

from __future__ import annotations

from typing import Any

from django.test import Client
from rest_framework.test import APIClient

from tests.support.customers import committed


class _CommittingHandler:
    """Wraps a client's handler; its attributes (DRF's ``_force_user``...) are the handler's."""

    def __init__(self, handler: Any) -> None:
        object.__setattr__(self, "_handler", handler)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with committed():
            return self._handler(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handler, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._handler, name, value)


class CommittingClient(Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handler = _CommittingHandler(self.handler)


class CommittingAPIClient(APIClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handler = _CommittingHandler(self.handler)
