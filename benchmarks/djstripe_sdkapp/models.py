from __future__ import annotations

from django.db import models


class StripeCustomer(models.Model):
    """A typical hand-written mirror: the id, the columns one queries, the whole object."""

    stripe_id = models.CharField(max_length=255, unique=True)
    email = models.CharField(max_length=512, blank=True, default="", db_index=True)
    name = models.CharField(max_length=256, blank=True, default="")
    description = models.CharField(max_length=350, blank=True, default="")
    phone = models.CharField(max_length=20, blank=True, default="")
    balance = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, blank=True, default="")
    delinquent = models.BooleanField(null=True)
    livemode = models.BooleanField(default=False)
    created = models.DateTimeField(null=True)
    metadata = models.JSONField(default=dict)
    data = models.JSONField(default=dict)
    synced_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "djstripe_sdkapp"

    def __str__(self) -> str:
        return self.stripe_id
