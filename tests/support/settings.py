"""Test settings: SQLite, Celery eager. ``tests/support/settings_postgres.py`` is the real tier."""

from __future__ import annotations

import os

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
# The suite runs on UTC, and the version-matrix tiers under TEST_TIME_ZONE (Makefile): users'
# projects rarely run on UTC, and a time read in the wrong zone is hours off.
TIME_ZONE = os.environ.get("TEST_TIME_ZONE", "UTC")
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_stripe_customers",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.support.urls"
STATIC_URL = "static/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

# Users are made by the hundred (pytest-django's admin_user, staff of each permission level);
# the default PBKDF2 hasher spends ~100 ms of CPU on each password, a fifth of the SQLite
# tier's CPU. Logging in works the same with a fast hasher; production settings keep theirs.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Tests point this at a local Stripe (emulator or localstripe) through fixtures.
# The webhook is routed (tests/support/urls.py), so it has a (fake) signing secret, as a site must.
STRIPE_CUSTOMERS = {
    "API_KEY": "sk_test_local",
    "API_BASE": "http://127.0.0.1:9",
    "WEBHOOK_SECRETS": ["whsec_tests_not_secret"],
    # The emulator has no rate limit unless a test asks for one; tests of the client's limiter
    # (tests/test_ratelimit*.py) set their own. Processes started with other settings (the
    # demo, manage.py subprocesses, Celery workers) keep the default: 25/s for a test key.
    "RATE_LIMIT": 0,
}

# Tests talk to local Stripe servers over plain http on loopback, on purpose.
SILENCED_SYSTEM_CHECKS = ["stripe_customers.W001"]

# Tier 1 runs tasks eagerly, in the test's own process and transaction.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = "memory://"
