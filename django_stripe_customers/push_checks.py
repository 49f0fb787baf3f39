"""System checks that local edits will reach Stripe: ``PUSH_MODE`` and the sweep behind it.

Ids: ``stripe_customers.E007`` an unknown ``PUSH_MODE``; ``W007`` pushes go through Celery but
no beat schedule runs ``push_pending_task`` (an edit whose message is lost, or whose broker was
down at commit, stays pending for good); ``W008`` ``PUSH_MODE`` is ``"celery"`` but the project
has no Celery app (tasks would go to Celery's default broker, with nothing to run them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from django.apps import AppConfig
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from . import conf, dispatch

#: The task name ``push_pending_task`` is registered under.
SWEEP_TASK: Final = "stripe_customers.push_pending"
#: What to paste into settings.py (also shown in README's Install section).
BEAT_ENTRY: Final = (
    'CELERY_BEAT_SCHEDULE = {"stripe-customers-push-sweep": '
    '{"task": "stripe_customers.push_pending", "schedule": 60.0}}'
)


@checks.register("stripe_customers")
def check_push_mode(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[Any]:
    try:
        mode = conf.get_setting("PUSH_MODE")
        push_on_save = conf.get_setting("PUSH_ON_SAVE")
    except ImproperlyConfigured:
        return []  # the settings checks report it
    if mode not in dispatch.MODES:
        return [
            checks.Error(
                f"{conf.SETTINGS_NAME}['PUSH_MODE'] is {mode!r}; it must be one of "
                f"{', '.join(repr(m) for m in dispatch.MODES)}.",
                id="stripe_customers.E007",
            )
        ]
    app = dispatch.project_celery_app()
    if mode == "celery" and app is None:
        return [
            checks.Warning(
                "PUSH_MODE is 'celery' but this project has no Celery app: pushes would be sent "
                "to Celery's default broker, where nothing runs them.",
                hint="Define your Celery app (see Celery's 'First steps with Django'), or set "
                "PUSH_MODE to 'auto' or 'inline' to push from the saving process.",
                id="stripe_customers.W008",
            )
        ]
    if app is None or not push_on_save or mode == "inline" or dispatch.is_eager(app):
        return []
    if _sweep_scheduled(app):
        return []
    return [
        checks.Warning(
            f"Pushes go through Celery app {app.main!r}, but its beat schedule does not run "
            "push_pending_task: a push whose message is lost (broker down at commit, worker "
            "killed) stays pending until someone runs 'manage.py stripe_customers push "
            "--pending'.",
            hint=f"Add to settings.py: {BEAT_ENTRY}, and run 'celery -A <project> beat'.",
            id="stripe_customers.W007",
        )
    ]


def _sweep_scheduled(app: Any) -> bool:
    """Whether the app's beat schedule runs the sweep; True when the schedule lives elsewhere
    (a database scheduler such as django-celery-beat's), where a check cannot look."""
    if not str(app.conf.beat_scheduler or "").startswith("celery.beat:"):
        return True
    entries = (app.conf.beat_schedule or {}).values()
    return any(entry.get("task") == SWEEP_TASK for entry in entries)
