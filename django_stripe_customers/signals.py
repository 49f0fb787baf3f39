"""The app's public signals, to connect your own receivers to.

- ``customer_pushed`` (sender ``Customer``; ``customer``, ``created``): Stripe took a push.
- ``customer_push_failed`` (sender ``Customer``; ``customer``, ``error``): Stripe refused one.
- ``marked_pending`` (sender ``Customer``; ``pks``): rows marked pending outside ``save()``.

The app's own receivers are in ``receivers``.
"""

from __future__ import annotations

from .models import marked_pending
from .sync.push import customer_push_failed, customer_pushed

__all__ = ["customer_push_failed", "customer_pushed", "marked_pending"]
