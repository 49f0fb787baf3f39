"""Settings of a real Celery worker process started by tests/system/test_celery_worker.py.

The worker shares the test run's PostgreSQL test database and the test's Stripe emulator,
both named in environment variables the test sets; tasks go through Redis.
"""

from __future__ import annotations

import os

from tests.support.settings_postgres import *  # noqa: F403
from tests.support.settings_postgres import DATABASES

DATABASES["default"]["NAME"] = os.environ["WORKER_DB_NAME"]
STRIPE_CUSTOMERS = {"API_KEY": "sk_test_worker", "API_BASE": os.environ["WORKER_STRIPE_URL"]}
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_URL = os.environ["WORKER_BROKER_URL"]
