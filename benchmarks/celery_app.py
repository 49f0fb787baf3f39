"""The Celery app of ``benchmarks/pull_latency.py``: its workers run this module
(``celery -A benchmarks.celery_app worker``), and the measured pull imports it so that the
slices it hands out go to the same broker (``BENCH_BROKER_URL``, read by
``benchmarks.settings``)."""

from __future__ import annotations

import django

django.setup()

from celery import Celery  # noqa: E402

import django_stripe_customers.tasks  # noqa: E402, F401  (registers the tasks)

app = Celery("bench_pull")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.set_default()
