"""One permission model: the API and the admin allow the same users the same things.

Each user (anonymous, staff without customer permissions, view-only, add-only, change-only,
superuser) tries each operation (the API's list, retrieve, create, PATCH and pull; the admin's
"Pull from Stripe", "Push to Stripe" and "Retry failed pushes") against the Stripe emulator.
A refused operation answers its refusal and reaches neither the database nor Stripe (the
emulator's request log); an allowed one does what it says, Stripe included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.db.models import QuerySet

from django_stripe_customers.models import Customer, SyncStatus
from tests.support.customers import pushed
from tests.support.http_clients import CommittingAPIClient, CommittingClient

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/stripe_customers/customer/"


@dataclass
class World:
    """A customer in Stripe and in the mirror, and the emulator it lives in."""

    emulator: Any
    customer: Customer
    user: User | None

    def api(self) -> CommittingAPIClient:
        client = CommittingAPIClient()
        if self.user is not None:
            client.force_authenticate(self.user)
        return client

    def admin(self) -> CommittingClient:
        client = CommittingClient()
        if self.user is not None:
            client.force_login(self.user)
        return client

    def stripe_requests(self) -> list[tuple[str, str]]:
        return [(entry.method, entry.path) for entry in self.emulator.requests]


# -- the users -------------------------------------------------------------------------------

USERS: dict[str, tuple[bool, bool, tuple[str, ...]]] = {
    # name: (exists, is_superuser, customer permissions); every existing user is staff.
    "anonymous": (False, False, ()),
    "staff_no_permission": (True, False, ()),
    "view_only": (True, False, ("view_customer",)),
    "add_only": (True, False, ("add_customer",)),
    "change_only": (True, False, ("change_customer",)),
    "superuser": (True, True, ()),
}


def make_user(name: str) -> User | None:
    exists, is_superuser, codenames = USERS[name]
    if not exists:
        return None
    user = User.objects.create_user(name, is_staff=True, is_superuser=is_superuser)
    permissions = Permission.objects.filter(
        content_type__app_label="stripe_customers", codename__in=codenames
    )
    user.user_permissions.add(*permissions)
    return user


# -- the operations: each returns the status code and whether its effect happened ------------


def api_list(world: World) -> tuple[int, bool]:
    response = world.api().get("/api/customers/")
    shown = response.status_code == 200 and response.json()["data"][0]["id"]
    return response.status_code, shown == world.customer.stripe_id


def api_retrieve(world: World) -> tuple[int, bool]:
    response = world.api().get(f"/api/customers/{world.customer.stripe_id}/")
    return response.status_code, response.status_code == 200 and "email" in response.json()


def api_create(world: World) -> tuple[int, bool]:
    response = world.api().post("/api/customers/", {"email": "new@example.com"}, format="json")
    created = Customer.objects.filter(email="new@example.com").first()
    in_stripe = created is not None and created.stripe_id in world.emulator.customers
    return response.status_code, in_stripe


def api_update(world: World) -> tuple[int, bool]:
    url = f"/api/customers/{world.customer.stripe_id}/"
    response = world.api().patch(url, {"name": "Changed"}, format="json")
    return response.status_code, world.emulator.customers[world.customer.stripe_id]["name"] == (
        "Changed"
    )


def api_pull(world: World) -> tuple[int, bool]:
    world.emulator.customers[world.customer.stripe_id]["name"] = "Renamed upstream"
    response = world.api().post(f"/api/customers/{world.customer.stripe_id}/pull/")
    world.customer.refresh_from_db()
    return response.status_code, world.customer.name == "Renamed upstream"


def _admin_action(world: World, action: str) -> tuple[int, list[str]]:
    response = world.admin().post(
        CHANGELIST, {"action": action, "_selected_action": [world.customer.pk]}
    )
    notes = [str(message) for message in get_messages(response.wsgi_request)]
    return response.status_code, notes


def admin_pull(world: World) -> tuple[int, bool]:
    world.emulator.customers[world.customer.stripe_id]["name"] = "Renamed upstream"
    status, notes = _admin_action(world, "pull_from_stripe")
    world.customer.refresh_from_db()
    return status, world.customer.name == "Renamed upstream" and "Pulled 1 customer." in notes


def _edited_locally(world: World, sync_status: str) -> None:
    """A local edit whose push never ran: Django's plain ``UPDATE`` (the app's ``update()``
    would schedule the push, and bump the row's version)."""
    row = Customer.objects.filter(pk=world.customer.pk)
    QuerySet.update(row, name="Edited locally", sync_status=sync_status)


def admin_push(world: World) -> tuple[int, bool]:
    _edited_locally(world, SyncStatus.PENDING)
    status, notes = _admin_action(world, "push_to_stripe")
    remote = world.emulator.customers[world.customer.stripe_id]
    return status, remote["name"] == "Edited locally" and "Pushed 1 customer." in notes


def admin_retry(world: World) -> tuple[int, bool]:
    _edited_locally(world, SyncStatus.FAILED)
    status, notes = _admin_action(world, "retry_failed_pushes")
    remote = world.emulator.customers[world.customer.stripe_id]
    return status, remote["name"] == "Edited locally" and "Pushed 1 customer." in notes


OPERATIONS: dict[str, Callable[[World], tuple[int, bool]]] = {
    "api_list": api_list,
    "api_retrieve": api_retrieve,
    "api_create": api_create,
    "api_update": api_update,
    "api_pull": api_pull,
    "admin_pull": admin_pull,
    "admin_push": admin_push,
    "admin_retry": admin_retry,
}

# What an allowed operation answers. An admin action redirects back to the changelist.
ALLOWED_STATUS = {"api_create": 201, "admin_pull": 302, "admin_push": 302, "admin_retry": 302}

# -- the table: who may do what (the admin's rules, applied by the API too) ------------------

READ = {"api_list", "api_retrieve"}
CHANGE = READ | {"api_update", "api_pull", "admin_pull", "admin_push", "admin_retry"}
ALLOWED: dict[str, set[str]] = {
    "anonymous": set(),
    "staff_no_permission": set(),
    "view_only": READ,
    "add_only": {"api_create"},
    "change_only": CHANGE,
    "superuser": set(OPERATIONS),
}


def refusal(user: str, operation: str) -> set[int]:
    """The status codes a refusal may have for this user and operation."""
    if operation.startswith("api_"):
        # Anonymous: 401 or 403 depending on the project's authentication classes.
        return {401, 403} if user == "anonymous" else {403}
    if user == "anonymous":
        return {302}  # to the admin's login page
    if user == "view_only":
        return {200}  # the changelist again: the action is not offered to this user
    return {403}  # no access to the changelist at all


@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("user_name", list(USERS))
def test_the_api_and_the_admin_share_one_permission_model(stripe_settings, user_name, operation):
    customer = pushed(email="a@example.com", name="Original")
    world = World(stripe_settings, customer, make_user(user_name))
    before_stripe = world.stripe_requests()
    before_rows = list(Customer.objects.order_by("pk").values())

    status, happened = OPERATIONS[operation](world)

    if operation in ALLOWED[user_name]:
        assert status == ALLOWED_STATUS.get(operation, 200), f"{user_name} may {operation}"
        assert happened, f"{user_name}'s {operation} did not take effect"
        return
    assert status in refusal(user_name, operation), f"{user_name} may not {operation}"
    assert not happened
    assert world.stripe_requests() == before_stripe, "nothing reached Stripe"
    rows = list(Customer.objects.order_by("pk").values())
    if operation in {"admin_push", "admin_retry"}:  # the test itself edited the row first
        rows = [{**row, "name": "Original", "sync_status": SyncStatus.SYNCED} for row in rows]
    assert rows == before_rows, "nothing changed in the mirror"


def test_a_refusal_names_the_permission_needed(stripe_settings):
    customer = Customer.objects.create(email="a@example.com")
    client = CommittingAPIClient()
    client.force_authenticate(make_user("view_only"))
    response = client.patch(f"/api/customers/{customer.pk}/", {"name": "B"}, format="json")
    assert response.status_code == 403
    assert "stripe_customers.change_customer" in response.json()["detail"]


def test_options_describes_only_what_the_user_may_do(stripe_settings):
    viewer, adder = CommittingAPIClient(), CommittingAPIClient()
    viewer.force_authenticate(make_user("view_only"))
    adder.force_authenticate(make_user("add_only"))
    viewed = viewer.options("/api/customers/")
    assert viewed.status_code == 200
    assert "actions" not in viewed.json(), "a viewer is not offered the create form"
    assert adder.options("/api/customers/").status_code == 403, "no permission to read"
