"""``include("django_stripe_customers.urls")``: the Stripe webhook endpoint at ``webhook/``."""

from django.urls import path

from .webhooks import stripe_webhook

app_name = "stripe_customers"

urlpatterns = [path("webhook/", stripe_webhook, name="webhook")]
