"""Django settings for the measured pull of django-stripe-customers (``benchmarks/pull.py``)."""

from __future__ import annotations

import os

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

# Set by benchmarks/pull_latency.py: the limit our client keeps to (the emulator's), and for a
# partitioned pull the broker its Celery workers read and the limiter they share.
if os.environ.get("BENCH_RATE_LIMIT"):
    STRIPE_CUSTOMERS["RATE_LIMIT"] = float(os.environ["BENCH_RATE_LIMIT"])
if os.environ.get("BENCH_BROKER_URL"):
    CELERY_TASK_ALWAYS_EAGER = False
    CELERY_BROKER_URL = os.environ["BENCH_BROKER_URL"]
    STRIPE_CUSTOMERS["RATE_LIMIT_BACKEND"] = os.environ["BENCH_BROKER_URL"]
    # A slice is a long task: each worker reserves one at a time, so the slices spread.
    CELERY_WORKER_PREFETCH_MULTIPLIER = 1
