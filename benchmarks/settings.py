"""Django settings for the measured pull of django-stripe-customers (``benchmarks/pull.py``)."""

from __future__ import annotations

from benchmarks.settings_common import *  # noqa: F403
from benchmarks.settings_common import BENCH_API_BASE, BENCH_API_KEY

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_stripe_customers",
]

STRIPE_CUSTOMERS = {
    "API_KEY": BENCH_API_KEY,
    "API_BASE": BENCH_API_BASE,
    "MAX_RETRIES": 0,  # a failure must show, not be retried into the timings
}

# The emulator speaks plain http on loopback, on purpose.
SILENCED_SYSTEM_CHECKS = ["stripe_customers.W001"]

CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"
