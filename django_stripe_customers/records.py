"""The sync's records: one row per pull run (``PullRun``), per Stripe event (``WebhookEvent``)
and per account the mirror has met (``StripeAccount``).

Re-exported by ``models``, where Django and users look for them.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

#: Length of columns holding Stripe ids and strings Stripe publishes no limit for.
ID_LENGTH = 255


class PullRun(models.Model):
    """One run of ``pull_all`` (all its partitions): what it covered, what it did, when.

    Partitions add their counts to the row as they finish (no Celery result backend needed);
    the last one to finish closes the run.
    """

    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")

    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    stripe_account = models.CharField(  # noqa: DJ001 (null: the key's own account)
        max_length=ID_LENGTH, null=True, blank=True, help_text=_("Empty: the key's own account.")
    )
    livemode = models.BooleanField(default=False)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    created_gte = models.BigIntegerField(null=True, blank=True)
    created_lt = models.BigIntegerField(null=True, blank=True)
    partitions = models.PositiveIntegerField(default=1)
    partitions_done = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    marked_deleted = models.PositiveIntegerField(default=0)
    pages = models.PositiveIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = _("pull run")
        ordering = ("-started_at",)
        get_latest_by = "started_at"

    def __str__(self) -> str:
        return f"pull {self.started_at:%Y-%m-%d %H:%M:%S} ({self.status})"


class WebhookEvent(models.Model):
    """One Stripe event, stored once per event id, whether it came by webhook or catch-up."""

    class Status(models.TextChoices):
        RECEIVED = "received", _("received")
        PROCESSED = "processed", _("processed")
        STALE = "stale", _("stale (older than the row's data)")
        IGNORED = "ignored", _("ignored (type not handled)")
        FAILED = "failed", _("failed")
        REFUSED = "refused", _("refused (livemode differs from the API key's mode)")

    class Source(models.TextChoices):
        WEBHOOK = "webhook", _("webhook")
        EVENTS_API = "events_api", _("events API catch-up")

    event_id = models.CharField(max_length=ID_LENGTH, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    api_version = models.CharField(max_length=64, blank=True, default="")
    livemode = models.BooleanField(default=False)
    stripe_account = models.CharField(  # noqa: DJ001 (null: the key's own account)
        max_length=ID_LENGTH,
        null=True,
        blank=True,
        db_index=True,
        help_text=_("The account the event is of (a Connect event's ``account``); empty: own."),
    )
    created = models.DateTimeField(help_text=_("When Stripe created the event."))
    customer_stripe_id = models.CharField(
        max_length=ID_LENGTH, blank=True, default="", db_index=True
    )
    payload = models.JSONField()
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.WEBHOOK)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.RECEIVED, db_index=True
    )
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("webhook event")
        ordering = ("-created", "-id")

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class StripeAccount(models.Model):
    """An account the mirror has met, in one mode: a connected account listed from Stripe, one
    whose access ended (``account.application.deauthorized``: its rows are kept, and not pushed
    to), one reconciled from its events (its cursor). ``stripe_account`` as rows store it
    (null: the key's own account)."""

    stripe_account = models.CharField(  # noqa: DJ001 (null: the key's own account)
        max_length=ID_LENGTH, null=True, blank=True
    )
    livemode = models.BooleanField(default=False)
    connected = models.BooleanField(default=False, help_text=_("Reached with Stripe-Account."))
    listed_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When Stripe last listed it among the platform's.")
    )
    deauthorized_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When it disconnected from the platform.")
    )
    # The reconcile's cursor (``sync.reconcile``): the newest customer event applied, and its
    # time (or, when there was none, when the full pull that set it started).
    events_cursor = models.CharField(max_length=ID_LENGTH, blank=True, default="")
    events_cursor_at = models.DateTimeField(null=True, blank=True)
    reconciled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("Stripe account")
        ordering = ("livemode", "stripe_account")
        constraints = [
            models.UniqueConstraint(
                Coalesce("stripe_account", Value("")),
                F("livemode"),
                name="stripe_customers_one_record_per_account_and_mode",
            )
        ]

    def __str__(self) -> str:
        mode = "live" if self.livemode else "test"
        return f"{self.stripe_account or 'own account'} ({mode})"
