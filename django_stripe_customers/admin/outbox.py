"""The outbox, seen from the admin: customers whose push has waited too long.

A push that never runs (no worker, no beat, a broker that lost it) leaves its row pending; one
that Stripe refused leaves it failed. The customer list says how many have been so for longer
than ``PUSH_SWEEP_AFTER``, with a link to them, so that a stuck outbox is seen, not discovered.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..conf import get_setting
from ..dispatch import push_mode
from ..sync.outbox import stuck

PARAMETER = "push_overdue"


def overdue_seconds() -> float:
    return float(get_setting("PUSH_SWEEP_AFTER"))


class OverduePushFilter(admin.SimpleListFilter):
    """``?push_overdue=yes``: pending or failed for longer than ``PUSH_SWEEP_AFTER``."""

    title = _("push overdue")
    parameter_name = PARAMETER

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("pending or failed for too long"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        if self.value() == "yes":
            return queryset.filter(pk__in=stuck(overdue_seconds()).values("pk"))
        return queryset


def overdue_notice(changelist_url: str) -> SafeString | None:
    """The warning the customer list shows while some pushes are overdue, else None."""
    count = stuck(overdue_seconds()).count()
    if not count:
        return None
    text = ngettext(
        "%(count)d customer has been waiting to reach Stripe (pending, or its push failed) "
        "for more than %(seconds)d seconds.",
        "%(count)d customers have been waiting to reach Stripe (pending, or their push failed) "
        "for more than %(seconds)d seconds.",
        count,
    ) % {"count": count, "seconds": overdue_seconds()}
    return format_html(
        '{} <a href="{}?{}=yes">{}</a> {}',
        text,
        changelist_url,
        PARAMETER,
        _("Show them."),
        _mode_hint(),
    )


def _mode_hint() -> str:
    """What sends pending rows on this site, as ``PUSH_MODE`` resolves here."""
    if push_mode() == "inline":
        return str(
            _(
                "This site pushes inline (no Celery): each process retries pending ones every "
                "%(seconds)d seconds while Stripe is unreachable (the sync panel shows the "
                "last error); failed ones say why in their sync panel."
            )
            % {"seconds": overdue_seconds()}
        )
    return str(
        _(
            "Pending ones need a running Celery worker and the push_pending_task sweep in "
            "Celery beat; failed ones say why in their sync panel."
        )
    )
