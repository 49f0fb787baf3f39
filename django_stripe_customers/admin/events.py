"""Stripe events, read-only: filter by type and status, read the payload, reprocess."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..models import Customer, WebhookEvent
from ..sync.events import replay

if TYPE_CHECKING:
    _EventModelAdmin = admin.ModelAdmin[WebhookEvent]
else:  # ModelAdmin is generic for type checkers only
    _EventModelAdmin = admin.ModelAdmin


@admin.register(WebhookEvent)
class WebhookEventAdmin(_EventModelAdmin):
    list_display = ("event_id", "type", "status", "customer_stripe_id", "created", "attempts")
    list_filter = ("type", "status", "source", "livemode")
    search_fields = ("event_id", "customer_stripe_id")
    date_hierarchy = "created"
    actions = ("reprocess",)
    fields = (
        "event_id",
        "type",
        "status",
        "error",
        "attempts",
        "customer_stripe_id",
        "source",
        "api_version",
        "livemode",
        "created",
        "received_at",
        "processed_at",
        "payload_pretty",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: WebhookEvent | None = None) -> bool:
        return False  # an event is a record of what Stripe said: read-only

    def has_delete_permission(self, request: HttpRequest, obj: WebhookEvent | None = None) -> bool:
        return False

    @admin.display(description=_("payload"))
    def payload_pretty(self, event: WebhookEvent) -> SafeString:
        pretty = json.dumps(event.payload, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html('<pre class="stripe-customers-json">{}</pre>', pretty)

    def has_reprocess_permission(self, request: HttpRequest) -> bool:
        """Reprocessing writes customers, as a pull does: it needs the same permission."""
        opts = Customer._meta
        codename = get_permission_codename("change", opts)
        return request.user.has_perm(f"{opts.app_label}.{codename}")

    @admin.action(description=_("Reprocess the selected events"), permissions=["reprocess"])
    def reprocess(self, request: HttpRequest, queryset: QuerySet[WebhookEvent]) -> None:
        replayed = replay(queryset)
        failures = [f"{r.event_id} ({r.error})" for r in replayed if r.error]
        done = len(replayed) - len(failures)
        if done or not failures:
            message = ngettext(
                "Reprocessed %(count)d event.", "Reprocessed %(count)d events.", done
            )
            self.message_user(request, message % {"count": done})
        if failures:
            self.message_user(
                request,
                _("Could not reprocess: %(which)s") % {"which": "; ".join(failures)},
                messages.ERROR,
            )
