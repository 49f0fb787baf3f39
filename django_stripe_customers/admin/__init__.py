"""The admin, one module per concern: the customers' admin (``customers``), its form
(``forms``, ``fields``, ``widgets``), actions (``actions``), displays (``display``), the
overdue-push notice (``outbox``); pull runs (``runs``) and Stripe events (``events``)."""

from .customers import CustomerAdmin
from .display import FieldChange, format_amount, pending_changes
from .events import WebhookEventAdmin
from .runs import PullRunAdmin

__all__ = [
    "CustomerAdmin",
    "FieldChange",
    "PullRunAdmin",
    "WebhookEventAdmin",
    "format_amount",
    "pending_changes",
]
