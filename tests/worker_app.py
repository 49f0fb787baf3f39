"""Entry point of the real Celery worker in tests: Django set up, then the tests' app."""

from __future__ import annotations

import django

django.setup()

import django_stripe_customers.tasks  # noqa: E402, F401  (registers the tasks)
from tests.celery_app import app  # noqa: E402

__all__ = ["app"]
