"""Django settings of the gunicorn app measured by ``benchmarks/webhooks.py``.

The database comes from ``settings_common`` (``BENCH_DB``, ``BENCH_SQLITE_PATH``,
``BENCH_PG_NAME``); ``benchmarks/webhooks.py`` also sets:

- ``BENCH_WEBHOOK_SECRET``: the endpoint's signing secret;
- ``BENCH_CELERY_BROKER``: empty for Celery eager (the event is processed inside the request),
  else a broker URL (the endpoint only stores the event and enqueues its task; no worker runs);
- ``BENCH_CELERY_QUEUE``: the queue the tasks go to (unique per run, flushed afterwards);
- ``BENCH_CONN_MAX_AGE``: Django's ``CONN_MAX_AGE`` (default 0, Django's own default: a new
  database connection per request);
- ``BENCH_SQLITE_TRANSACTION_MODE``: SQLite's ``OPTIONS["transaction_mode"]`` (Django 5.1+),
  e.g. ``IMMEDIATE``; unset: Django's default (deferred transactions).

The URLconf is this module: ``stripe/webhook/``, as ``include("django_stripe_customers.urls")``
under ``stripe/`` gives in a project (built lazily, after the app registry is ready).
"""

from __future__ import annotations

import os
from typing import Any

from benchmarks.settings_common import *  # noqa: F403
from benchmarks.settings_common import BENCH_API_BASE, BENCH_API_KEY, DATABASES

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_stripe_customers",
]

# What nearly every project has in front of its views; sessions/auth/CSRF do nothing for a
# CSRF-exempt view that never touches request.user, so they are left out.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "benchmarks.settings_webhooks"

DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("BENCH_CONN_MAX_AGE", "0"))
if os.environ.get("BENCH_SQLITE_TRANSACTION_MODE"):
    DATABASES["default"].setdefault("OPTIONS", {})["transaction_mode"] = os.environ[
        "BENCH_SQLITE_TRANSACTION_MODE"
    ]

STRIPE_CUSTOMERS = {
    "API_KEY": BENCH_API_KEY,
    "API_BASE": BENCH_API_BASE,
    "MAX_RETRIES": 0,
    "WEBHOOK_SECRETS": [os.environ.get("BENCH_WEBHOOK_SECRET", "whsec_benchmark")],
    "PUSH_ON_SAVE": False,
}

# Plain http on loopback, on purpose (the API is never called: events carry the customer).
SILENCED_SYSTEM_CHECKS = ["stripe_customers.W001"]

CELERY_BROKER_URL = os.environ.get("BENCH_CELERY_BROKER", "") or "memory://"
CELERY_TASK_ALWAYS_EAGER = not os.environ.get("BENCH_CELERY_BROKER")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("BENCH_CELERY_QUEUE", "bench-webhooks")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = False


def __getattr__(name: str) -> Any:
    """``urlpatterns``, built on first use: ``include()`` imports the app's views."""
    if name == "urlpatterns":
        from django.urls import include, path

        return [path("stripe/", include("django_stripe_customers.urls"))]
    raise AttributeError(name)
