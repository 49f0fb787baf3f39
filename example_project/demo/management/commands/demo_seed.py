"""``manage.py demo_seed``: fill a LOCAL Stripe with varied sample customers, through the API.

Refuses to run against anything but a loopback API base, so it never touches a real account.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError

from django_stripe_customers import conf
from django_stripe_customers.clients import get_client

LOCALES = [["en"], ["fr", "en"], ["de"], [], ["es", "en"]]
TAX_EXEMPT = ["none", "exempt", "reverse"]
CITIES = [("Paris", "FR", "75001"), ("Berlin", "DE", "10115"), ("Austin", "US", "78701")]


def sample(number: int) -> dict[str, Any]:
    city, country, postal_code = CITIES[number % len(CITIES)]
    params: dict[str, Any] = {
        "email": f"customer{number}@example.com",
        "name": f"Sample Customer {number}",
        "description": f"Demo customer number {number}",
        "phone": f"+3360000{number:04d}",
        "preferred_locales": LOCALES[number % len(LOCALES)],
        "tax_exempt": TAX_EXEMPT[number % len(TAX_EXEMPT)],
        "metadata": {"plan": ["free", "pro", "team"][number % 3], "demo_number": str(number)},
        "balance": (number % 4) * -500,
    }
    if number % 2 == 0:
        params["address"] = {
            "line1": f"{number} Demo Street",
            "city": city,
            "country": country,
            "postal_code": postal_code,
        }
    if number % 3 == 0:
        params["shipping"] = {
            "name": f"Sample Customer {number}",
            "address": {"line1": f"{number} Warehouse Road", "city": city, "country": country},
        }
    return params


class Command(BaseCommand):
    help = "Create varied sample customers in a local Stripe, or delete the newest one."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--count", type=int, default=12)
        parser.add_argument(
            "--delete-one", action="store_true", help="delete the newest customer upstream"
        )

    def handle(self, *args: Any, count: int, delete_one: bool, **options: Any) -> None:
        host = urlsplit(str(conf.get_setting("API_BASE"))).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise CommandError(f"demo_seed only seeds a local Stripe, not {host}")
        client = get_client()
        if delete_one:
            newest = client.customers.list(limit=1)["data"][0]
            client.customers.delete(newest["id"])
            self.stdout.write(f"deleted {newest['id']} ({newest['email']}) in the local Stripe")
            return
        for number in range(1, count + 1):
            client.customers.create(sample(number))
        self.stdout.write(f"seeded {count} customers in the local Stripe")
