"""The Celery app of the test suite: configured from Django settings (CELERY_*), eager on SQLite."""

from __future__ import annotations

from celery import Celery

app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.set_default()
