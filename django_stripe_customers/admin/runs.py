"""Pull runs, read-only: what each ``pull_all`` covered and did."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from ..models import PullRun

if TYPE_CHECKING:
    _PullRunModelAdmin = admin.ModelAdmin[PullRun]
else:  # ModelAdmin is generic for type checkers only
    _PullRunModelAdmin = admin.ModelAdmin


@admin.register(PullRun)
class PullRunAdmin(_PullRunModelAdmin):
    """Pull runs, read-only: what each ``pull_all`` covered and did."""

    list_display = (
        "started_at",
        "status",
        "partitions_progress",
        "created",
        "updated",
        "unchanged",
        "marked_deleted",
        "requests",
        "error_count",
        "duration",
    )
    list_filter = ("status",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: PullRun | None = None) -> bool:
        return False

    @admin.display(description=_("partitions"))
    def partitions_progress(self, run: PullRun) -> str:
        return f"{run.partitions_done}/{run.partitions}"

    @admin.display(description=_("errors"))
    def error_count(self, run: PullRun) -> int:
        return len(run.errors)

    @admin.display(description=_("duration"))
    def duration(self, run: PullRun) -> str | None:
        if run.finished_at is None:
            return None
        return f"{(run.finished_at - run.started_at).total_seconds():.1f} s"
