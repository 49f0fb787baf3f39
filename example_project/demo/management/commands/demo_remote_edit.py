"""``manage.py demo_remote_edit EMAIL --name NEW``: change a customer IN STRIPE (the local one).

The change is made upstream, as someone in Stripe's dashboard would: the emulator then sends
the signed ``customer.updated`` webhook to the demo, which applies it within seconds.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError

from django_stripe_customers import conf
from django_stripe_customers.clients import get_client


class Command(BaseCommand):
    help = "Edit a customer in the local Stripe (not in the database), by email or id."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("customer", help="the customer's email or cus_... id")
        parser.add_argument("--name", required=True)

    def handle(self, *args: Any, customer: str, name: str, **options: Any) -> None:
        host = urlsplit(str(conf.get_setting("API_BASE"))).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise CommandError(f"demo_remote_edit only edits a local Stripe, not {host}")
        client = get_client()
        stripe_id = customer
        if not customer.startswith("cus_"):
            found = client.customers.list({"email": customer}, limit=1)["data"]
            if not found:
                raise CommandError(f"no customer with email {customer} in the local Stripe")
            stripe_id = found[0]["id"]
        client.customers.update(stripe_id, {"name": name})
        self.stdout.write(f"renamed {stripe_id} to {name!r} in the local Stripe")
