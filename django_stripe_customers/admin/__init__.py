"""The admin: customers (``customers``), pull runs (``runs``) and Stripe events (``events``)."""

from .customers import CustomerAdmin, FieldChange, format_amount, pending_changes
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
