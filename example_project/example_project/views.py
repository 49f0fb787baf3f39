"""The demo's front page: which Stripe it talks to, and the newest customers there."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from django_stripe_customers import conf
from django_stripe_customers.stripe import StripeError
from django_stripe_customers.stripe.factory import get_client


def home(request: HttpRequest) -> HttpResponse:
    context = {"api_base": conf.get_setting("API_BASE"), "customers": [], "error": None}
    try:
        page = get_client().customers.list(limit=10)
        context["customers"] = page["data"]
        context["has_more"] = page["has_more"]
    except StripeError as exc:
        context["error"] = str(exc)
    return render(request, "home.html", context)
