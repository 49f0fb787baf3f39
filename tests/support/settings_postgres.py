"""The real tier: PostgreSQL at 127.0.0.1:5432, database ``test`` (trust auth)."""

from __future__ import annotations

import os

from tests.support.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "NAME": os.environ.get("PGDATABASE", "test"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        "TEST": {"NAME": os.environ.get("PGTESTDATABASE", "test_django_stripe_customers")},
    }
}
