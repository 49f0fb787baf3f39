"""The admin in headless Chromium: what staff see and do, end to end, against the Stripe emulator.

Seeded like ``make demo`` (the demo's own ``sample()`` customers, created in the emulator and
pulled). ``UPDATE_SCREENSHOTS=1`` also writes the README's screenshots to ``docs/``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

from django_stripe_customers.clients import get_client
from django_stripe_customers.models import Customer, SyncStatus
from django_stripe_customers.sync import pull_all

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # One worker runs them all (``--dist loadgroup``): one Chromium and one live server.
    pytest.mark.xdist_group("browser"),
]

DOCS = Path(__file__).resolve().parents[2] / "docs"
CHANGELIST = "/admin/stripe_customers/customer/"
VIEWPORT_WIDTH = 1280
PASSWORD = "correct horse battery staple"


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def seed(count: int = 12) -> dict[str, str]:
    """The demo's sample customers, created in the emulator and pulled; email -> Stripe id."""
    from demo.management.commands.demo_seed import sample

    client = get_client()
    ids = {}
    for number in range(1, count + 1):
        created = client.customers.create(sample(number))
        ids[created["email"]] = created["id"]
    pull_all()
    return ids


def staff(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def log_in(page: Any, username: str) -> None:
    page.goto("/admin/login/?next=" + CHANGELIST)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    heading = re.compile("Select customer to (change|view)")
    expect(page.get_by_role("heading", name=heading)).to_be_visible()


def row(page: Any, email: str) -> Any:
    return page.locator("#result_list tbody tr").filter(has_text=email)


def run_action(page: Any, email: str, action: str) -> None:
    row(page, email).locator("input.action-select").check()
    page.locator("select[name=action]").select_option(label=action)
    # The actions' button says "Go" up to Django 5.2, "Run" from 6.0.
    page.get_by_role("button", name=re.compile(r"^(Go|Run)$")).click()


@pytest.fixture
def editor(page: Any) -> Any:
    staff("editor", "view_customer", "change_customer")
    log_in(page, "editor")
    return page


def _search_and_open(page: Any, term: str, email: str) -> None:
    search = page.locator("#searchbar")
    search.fill(term)
    search.press("Enter")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    page.get_by_role("link", name=email, exact=True).click()
    expect(page.get_by_role("heading", name="Sync")).to_be_visible()


def test_staff_edit_email_and_metadata_then_push_badge_goes_pending_to_synced(
    editor, example_project_settings, settings
):
    """With pushes on save turned off the saved edit waits, visibly, until "Push to Stripe"
    (with them on, Celery eager pushes before the page even reloads: see the next test)."""
    emulator = example_project_settings
    ids = seed()
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    page = editor
    page.reload()

    _search_and_open(page, '"Sample Customer 5"', "customer5@example.com")
    page.get_by_label("Email:").fill("vip5@example.com")
    rows = page.locator("#id_metadata tr")
    expect(rows.nth(1).get_by_role("textbox", name="Metadata key 1")).to_have_value("demo_number")
    expect(rows.nth(2).get_by_role("textbox", name="Metadata key 2")).to_have_value("plan")
    page.get_by_role("textbox", name="Metadata value 2").fill("enterprise")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    badge = row(page, "vip5@example.com").locator(".sc-badge")
    expect(badge).to_have_text("pending push")
    upstream = emulator.customers[ids["customer5@example.com"]]
    assert upstream["email"] == "customer5@example.com", "not pushed yet"

    run_action(page, "vip5@example.com", "Push to Stripe")

    expect(page.locator(".messagelist")).to_contain_text("Pushed 1 customer.")
    expect(row(page, "vip5@example.com").locator(".sc-badge")).to_have_text("synced")
    assert upstream["email"] == "vip5@example.com"
    assert upstream["metadata"]["plan"] == "enterprise"


def test_saving_in_the_admin_pushes_like_any_save(editor, example_project_settings):
    emulator = example_project_settings
    ids = seed(3)
    page = editor
    page.reload()
    _search_and_open(page, '"Sample Customer 2"', "customer2@example.com")
    page.get_by_label("Email:").fill("renamed2@example.com")
    page.get_by_role("textbox", name="Metadata key 4").fill("source")
    page.get_by_role("textbox", name="Metadata value 4").fill("admin")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(row(page, "renamed2@example.com").locator(".sc-badge")).to_have_text("synced")
    upstream = emulator.customers[ids["customer2@example.com"]]
    assert upstream["email"] == "renamed2@example.com"
    assert upstream["metadata"]["source"] == "admin"


def test_an_email_over_512_characters_is_refused_next_to_the_field(
    editor, example_project_settings
):
    emulator = example_project_settings
    seed(2)
    page = editor
    page.reload()
    _search_and_open(page, "customer1@", "customer1@example.com")
    sent = len(emulator.requests)

    email = page.get_by_label("Email:")
    expect(email).to_have_attribute("maxlength", "512")  # a person cannot even type more
    # Any client can send more, though: the server check is what protects Stripe's limit.
    email.evaluate("input => input.removeAttribute('maxlength')")
    email.fill("a" * 600 + "@example.com")
    page.get_by_role("button", name="Save", exact=True).click()

    error = page.locator(".form-row.field-email .errorlist")
    expect(error).to_have_text("email: at most 512 characters (got 612)")
    expect(page.locator(".errornote")).to_be_visible()
    assert len(emulator.requests) == sent, "nothing sent to Stripe"
    assert Customer.objects.get(email="customer1@example.com").sync_status == SyncStatus.SYNCED


def test_pull_action_shows_a_value_changed_upstream(editor, example_project_settings):
    ids = seed(3)
    get_client().customers.update(ids["customer3@example.com"], {"name": "Changed In Stripe"})
    page = editor
    page.reload()
    expect(row(page, "customer3@example.com")).to_contain_text("Sample Customer 3")

    run_action(page, "customer3@example.com", "Pull from Stripe")

    expect(page.locator(".messagelist")).to_contain_text("Pulled 1 customer.")
    expect(row(page, "customer3@example.com")).to_contain_text("Changed In Stripe")


def test_a_user_without_change_permission_sees_no_actions(page, example_project_settings):
    seed(2)
    staff("viewer", "view_customer")
    log_in(page, "viewer")
    expect(row(page, "customer1@example.com")).to_be_visible()
    expect(page.locator("select[name=action]")).to_have_count(0)
    expect(page.locator("input.action-select")).to_have_count(0)
    page.get_by_role("link", name="customer1@example.com").click()
    expect(page.get_by_role("button", name="Save", exact=True)).to_have_count(0)


def test_screenshots_of_the_list_and_change_pages(
    page, example_project_settings, settings, tmp_path
):
    """A realistic admin: the demo's customers, some with a currency (Stripe sets it with the
    first invoice), one edited locally and not pushed yet, one whose push Stripe refused."""
    emulator = example_project_settings
    ids = seed()
    for number, currency in enumerate(["eur", "eur", "usd"] * 3 + ["jpy"], start=1):
        emulator.customers[ids[f"customer{number}@example.com"]]["currency"] = currency
    emulator.customers[ids["customer10@example.com"]]["balance"] = -1500
    emulator.customers[ids["customer4@example.com"]]["delinquent"] = True
    pull_all()
    client = get_client()
    client.customers.delete(ids["customer12@example.com"])
    pull_all()

    refused = Customer.objects.get(email="customer7@example.com")
    emulator.customers.pop(ids["customer7@example.com"])  # gone from this account: 404
    refused.phone = "+33600000777"
    refused.save()

    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    edited = Customer.objects.get(email="customer9@example.com")
    edited.email = "jenny.rosen@example.com"
    edited.name = "Jenny Rosen"
    edited.metadata = {**edited.metadata, "plan": "enterprise", "account_manager": "Ada"}
    edited.address = {**(edited.address or {}), "city": "Lyon", "line1": "12 Rue de la Paix"}
    edited.save()

    User.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    log_in(page, "admin")
    expect(page.locator(".sc-badge--failed")).to_have_count(1)
    expect(page.locator(".sc-badge--pending")).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text("-10.00 EUR")
    expect(page.locator("#result_list")).to_contain_text("-1,500 JPY")
    # More room for the table: the sidebar closed, as its toggle leaves it for the next pages.
    page.evaluate("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
    page.reload()
    shots = DOCS if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path
    shots.mkdir(exist_ok=True)
    page.screenshot(path=str(shots / "admin-changelist.png"))

    page.get_by_role("link", name="jenny.rosen@example.com").click()
    panel = page.locator("#sync-panel")
    expect(panel.locator(".sc-badge")).to_have_text("pending push")
    expect(panel.locator("table.sc-diff")).to_contain_text("jenny.rosen@example.com")
    expect(panel.locator("table.sc-diff")).to_contain_text("metadata[account_manager]")
    link = panel.get_by_role("link", name=re.compile("Stripe dashboard"))
    expect(link).to_have_attribute(
        "href", f"https://dashboard.stripe.com/test/customers/{edited.stripe_id}"
    )
    # The top of the page: the sync panel and the structured fields down to the addresses.
    addresses = page.locator("fieldset").filter(has_text="Addresses").bounding_box()
    bottom = addresses["y"] + addresses["height"] + 16
    page.screenshot(
        path=str(shots / "admin-change.png"),
        full_page=True,
        clip={"x": 0, "y": 0, "width": VIEWPORT_WIDTH, "height": bottom},
    )
    assert (shots / "admin-changelist.png").stat().st_size > 10_000
