"""App configuration: registers the system checks and connects the signal receivers."""

from __future__ import annotations

from django.apps import AppConfig


class StripeCustomersConfig(AppConfig):
    name = "django_stripe_customers"
    label = "stripe_customers"
    verbose_name = "Stripe customers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Django's app loading forces these to wait for ready(): they import the models.
        from . import checks, push_checks, receivers  # noqa: F401  (registers them)
