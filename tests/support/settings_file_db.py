"""Settings for tests that run manage.py in a subprocess: a SQLite file, no local Stripe."""

from __future__ import annotations

import os

from tests.support.settings import *  # noqa: F403

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["TEST_DB_PATH"]}
}
# Port 9 (discard) on loopback: nothing listens, so any call to Stripe fails to connect.
STRIPE_CUSTOMERS = {
    "API_KEY": None if os.environ.get("TEST_NO_API_KEY") else "sk_test_local",
    "API_BASE": os.environ.get("TEST_API_BASE", "http://127.0.0.1:9"),
    "MAX_RETRIES": int(os.environ.get("STRIPE_TEST_MAX_RETRIES", "2")),
    "WEBHOOK_SECRETS": ["whsec_tests_not_secret"],
    "PUSH_MODE": os.environ.get("TEST_PUSH_MODE", "auto"),
}
