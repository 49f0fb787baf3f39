"""The demo's Celery app. With no CELERY_BROKER_URL the tasks run eagerly, in-process, so the
demo needs nothing else running; set CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/0) and run
``celery -A example_project worker`` to use real workers."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

app = Celery("example_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
