"""Django settings for the peers' pulls (run in ``.venv-djstripe``, see ``benchmarks/pull.py``).

dj-stripe 2.11 as its docs configure it, pointed at our Stripe emulator with its own
``STRIPE_API_HOST`` setting (which sets ``stripe.api_base``); and ``benchmarks.djstripe_sdkapp``,
the model a user would hand-write for the plain ``stripe`` SDK + ``update_or_create`` baseline.
"""

from __future__ import annotations

from benchmarks.settings_common import *  # noqa: F403
from benchmarks.settings_common import BENCH_API_BASE, BENCH_API_KEY

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "djstripe",
    "benchmarks.djstripe_sdkapp",
]

STRIPE_LIVE_MODE = False
STRIPE_TEST_SECRET_KEY = BENCH_API_KEY  # dj-stripe wants sk_test_ + at least 24 alphanumerics
STRIPE_API_HOST = BENCH_API_BASE
DJSTRIPE_WEBHOOK_SECRET = "whsec_benchmark_not_secret"
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_USE_NATIVE_JSONFIELD = True
