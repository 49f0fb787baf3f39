"""Django for the soak scripts (``soak_push.py`` and the editor processes of
``soak_editors.py``): the test suite's settings on a SQLite file several processes share."""

from __future__ import annotations

import argparse

API_KEY = "sk_test_soak"


def setup_django(db_path: str, api_base: str, args: argparse.Namespace) -> None:
    import django
    from django.conf import settings

    import tests.support.settings as base

    options = {name: getattr(base, name) for name in dir(base) if name.isupper()}
    # only what the push needs: no admin or API modules imported (none is exercised here)
    options["INSTALLED_APPS"] = [
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django_stripe_customers",
    ]
    options["DATABASES"] = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": db_path,
            # several processes write it (scripts/soak_editors.py): a transaction takes the
            # write lock when it starts, so none has to upgrade (and fail) midway
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
        }
    }
    options["TIME_ZONE"] = getattr(args, "time_zone", "UTC")
    options["STRIPE_CUSTOMERS"] = {
        "API_KEY": API_KEY,
        "API_BASE": api_base,
        "TIMEOUT": args.timeout,
        "MAX_RETRIES": args.max_retries,
        "PUSH_ON_SAVE": True,
        "RATE_LIMIT": 0,  # the emulator here has no rate limit; faults come from the proxy
    }
    options["LOGGING_CONFIG"] = None
    options["CELERY_TASK_EAGER_PROPAGATES"] = args.eager_propagates
    settings.configure(**options)
    django.setup()
    from django.core.management import call_command

    import tests.support.celery_app  # noqa: F401  (the eager Celery app of the test settings)

    call_command("migrate", verbosity=0, interactive=False)
