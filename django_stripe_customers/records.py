"""The sync's records: one row per pull run (``PullRun``) and per Stripe event (``WebhookEvent``).

Re-exported by ``models``, where Django and users look for them.
"""

from __future__ import annotations

from django.db import models
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
