"""The demo's front page: which Stripe it talks to, the local mirror, and Stripe's newest."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from django_stripe_customers import conf
from django_stripe_customers.clients import get_client
from django_stripe_customers.models import Customer
from django_stripe_customers.stripe import StripeError


def home(request: HttpRequest) -> HttpResponse:
    context = {
        "api_base": conf.get_setting("API_BASE"),
        "mirror": Customer.objects.all()[:50],
        "mirror_count": Customer.objects.count(),
        "customers": [],
        "error": None,
    }
    try:
        page = get_client().customers.list(limit=5)
        context["customers"] = page["data"]
    except StripeError as exc:
        context["error"] = str(exc)
    return render(request, "home.html", context)
