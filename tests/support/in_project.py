"""Run inside the fresh project of tests/system/test_install.py, copied there with
tests/support/html_forms.py:
``python in_project.py ACTION CUSTOMER_ID`` (cwd: the project), ACTION one of:

- ``admin_edit``: a superuser opens the customer's change form in the admin, renames the
  customer and saves, as a browser would (every field the form shows is posted back).
- ``api_patch_as_viewer``: a staff user with only the view permission PATCHes the customer's
  name through the API.
- ``link_owner``: a user signs up with the pulled customer's email; ``for_owner`` (linking by
  email, as a site with verified emails would) returns that customer, linked.
- ``admin_delete``: a superuser deletes the customer on the admin's delete page.
- ``create_with_payment_method`` (CUSTOMER_ID ``new``): a sign-up creates a customer with the
  card its form collected (``stripe_params``) and a tax id.
- ``bulk_create_then_delete`` (CUSTOMER_ID ``new``): two customers made with ``bulk_create``
  (pushed inline on commit), then one of them deleted with ``delete()``.

Prints one JSON line: the status code and the customer's row afterwards. Only Django, the
installed app and html_forms are importable here, nothing of the test suite.
"""

from __future__ import annotations

import json
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django.setup()

from django.contrib.auth.models import Permission, User  # noqa: E402  (after django.setup())
from django.test import Client  # noqa: E402
from html_forms import form_fields  # noqa: E402

from django_stripe_customers.models import Customer  # noqa: E402

NEW_NAME = "Renamed in the admin"


def admin_edit(customer: Customer) -> int:
    user = User.objects.create_superuser("admin", "admin@example.com", password=None)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    url = f"/admin/stripe_customers/customer/{customer.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    data = form_fields(page.content.decode(), "customer_form")
    data["name"] = NEW_NAME
    return client.post(url, data).status_code


def api_patch_as_viewer(customer: Customer) -> int:
    user = User.objects.create_user("viewer", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_customer"))
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    url = f"/api/customers/{customer.stripe_id}/"
    assert client.get(url).status_code == 200, "a viewer may read"
    body = json.dumps({"name": "Renamed by a viewer"})
    return client.patch(url, body, content_type="application/json").status_code


def link_owner(customer: Customer) -> int:
    user = User.objects.create_user("signed-up", email=customer.email)
    linked = Customer.objects.for_owner(user, email_match="link")
    return 200 if linked.pk == customer.pk else 409


def admin_delete(customer: Customer) -> int:
    user = User.objects.filter(username="admin").first()
    user = user or User.objects.create_superuser("admin", "admin@example.com", password=None)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    url = f"/admin/stripe_customers/customer/{customer.pk}/delete/"
    page = client.get(url)
    assert "Stripe deletes this customer" in page.content.decode(), "the page says so"
    return client.post(url, {"post": "yes"}).status_code


def create_with_payment_method() -> Customer:
    params = {
        "payment_method": "pm_card_visa",
        "tax_id_data": [{"type": "eu_vat", "value": "DE123456789"}],
    }
    customer = Customer.objects.create(email="card@example.com", stripe_params=params)
    customer.refresh_from_db()  # inline: the save waited for its push
    return customer


def bulk_create_then_delete() -> dict[str, object]:
    made = Customer.objects.bulk_create([Customer(email=f"bulk{n}@example.com") for n in range(2)])
    rows = [Customer.objects.get(pk=row.pk) for row in made]  # inline: pushed by now
    assert all(row.stripe_id and row.sync_status == "synced" for row in rows), rows
    rows[1].delete()
    gone = Customer.objects.get(pk=rows[1].pk)
    assert gone.deleted, "kept as a tombstone"
    return {"status": 200, "kept": rows[0].stripe_id, "deleted_id": gone.stripe_id}


ACTIONS = {
    "admin_edit": admin_edit,
    "api_patch_as_viewer": api_patch_as_viewer,
    "link_owner": link_owner,
    "admin_delete": admin_delete,
}

if __name__ == "__main__":
    action, stripe_id = sys.argv[1], sys.argv[2]
    if action == "bulk_create_then_delete":
        print(json.dumps(bulk_create_then_delete()))
        sys.exit(0)
    if action == "create_with_payment_method":
        made = create_with_payment_method()
        stripe_id, status = made.stripe_id, 201 if made.push_params is None else 500
    else:
        status = ACTIONS[action](Customer.objects.get(stripe_id=stripe_id))
    row = Customer.objects.get(stripe_id=stripe_id)
    print(
        json.dumps(
            {
                "status": status,
                "name": row.name,
                "sync_status": row.sync_status,
                "user": row.user.username if row.user else None,
                "deleted": row.deleted,
                "stripe_id": row.stripe_id,
            }
        )
    )
