"""Several Stripe accounts in one mirror: a Connect platform with two connected accounts, each
with a customer of the same email, and a test and a live key side by side.

Everything runs over real HTTP against the emulator, whose stores are per account and mode
(``Stripe-Account``, the key's prefix): what a push sent is checked in the store it reached.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from django_stripe_customers import accounts
from django_stripe_customers.clients import clear_client_cache, get_client
from django_stripe_customers.models import (
    Customer,
    PullRun,
    StripeAccount,
    SyncStatus,
    WebhookEvent,
)
from django_stripe_customers.sync import pull_all, pull_customer, push_customer
from django_stripe_customers.sync.connect import every_account
from django_stripe_customers.sync.push import PushOutcome
from django_stripe_customers.sync.runs import pull_accounts
from tests.support.webhook_events import post

ACCT_A = "acct_1AaaaaaaaaaaaaaA"
ACCT_B = "acct_1BbbbbbbbbbbbbbB"
CONNECT_SECRET = "whsec_connect_endpoint"
EMAIL = "same@example.com"
LIVE_KEY = "sk_live_local"


@pytest.fixture
def platform(stripe_settings: Any, settings: Any) -> Iterator[Any]:
    """The platform (the key's own account) and two connected accounts, each holding one
    customer of the same email; ``ACCOUNTS`` mirrors the platform and every connected one."""
    emulator = stripe_settings
    for account_id in (ACCT_A, ACCT_B):
        emulator.add_account(account_id=account_id)
    key = settings.STRIPE_CUSTOMERS["API_KEY"]
    settings.STRIPE_CUSTOMERS = {
        **settings.STRIPE_CUSTOMERS,
        "ACCOUNTS": [
            {"API_KEY": key, "CONNECTED": "all", "CONNECT_WEBHOOK_SECRETS": [CONNECT_SECRET]}
        ],
    }
    clear_client_cache()
    client = get_client()
    for account_id in (None, ACCT_A, ACCT_B):
        client.for_account(account_id).customers.create({"email": EMAIL, "name": "Same"})
    yield emulator
    clear_client_cache()


def rows_by_account() -> dict[str | None, list[str]]:
    found: dict[str | None, list[str]] = {}
    for row in Customer.objects.order_by("pk"):
        found.setdefault(row.stripe_account, []).append(str(row.email))
    return found


def only_id(emulator: Any, account: str | None) -> str:
    (stripe_id,) = emulator.customers_of(account)
    return str(stripe_id)


def test_a_pull_of_one_account_writes_its_customers_only(platform, db):
    before = len(platform.requests)
    result = pull_all(account=accounts.find(ACCT_A, False))

    assert result.created == 1
    assert rows_by_account() == {ACCT_A: [EMAIL]}
    row = Customer.objects.get()
    assert row.stripe_id == only_id(platform, ACCT_A)
    assert row.livemode is False and row.sync_status == SyncStatus.SYNCED
    assert PullRun.objects.get().stripe_account == ACCT_A
    sent = platform.requests[before:]
    assert sent and all(r.headers.get("Stripe-Account") == ACCT_A for r in sent)


@pytest.mark.parametrize("parallel", [1, 4])
def test_a_pull_of_every_account_lists_the_connected_ones_and_keeps_them_apart(
    platform, db, parallel
):
    listed = every_account()
    assert [a.stripe_account for a in listed] == [None, ACCT_B, ACCT_A]  # Stripe: newest first

    results = pull_accounts(listed, parallel=parallel)

    assert {a.stripe_account: r.created for a, r in results.items()} == {
        None: 1,
        ACCT_A: 1,
        ACCT_B: 1,
    }
    assert rows_by_account() == {None: [EMAIL], ACCT_A: [EMAIL], ACCT_B: [EMAIL]}
    for account_id in (None, ACCT_A, ACCT_B):
        row = Customer.objects.get(stripe_account=account_id)
        assert row.stripe_id == only_id(platform, account_id)
    runs = PullRun.objects.order_by("stripe_account")
    assert sorted(str(r.stripe_account) for r in runs) == sorted(["None", ACCT_A, ACCT_B])
    assert {r.status for r in runs} == {"succeeded"}
    assert set(StripeAccount.objects.values_list("stripe_account", flat=True)) == {ACCT_A, ACCT_B}

    again = pull_accounts(every_account(), parallel=parallel)  # nothing changed upstream
    assert sum(r.unchanged for r in again.values()) == 3
    assert sum(r.created + r.updated for r in again.values()) == 0


def test_the_command_pulls_every_account_and_status_shows_each(platform, db, capsys):
    call_command("stripe_customers", "pull", "--all-accounts", "--parallel", "3")
    call_command("stripe_customers", "status")
    out = capsys.readouterr().out
    assert "in 3 accounts" in out
    assert f"{ACCT_A} (test): 1 customer" in out
    assert f"{ACCT_B} (test): 1 customer" in out
    assert "own account (test): 1 customer" in out


def test_the_command_refuses_an_account_no_key_reaches(platform, db, settings):
    key = settings.STRIPE_CUSTOMERS["API_KEY"]
    settings_accounts = [{"API_KEY": key, "CONNECTED": [ACCT_A]}]
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "ACCOUNTS": settings_accounts}
    with pytest.raises(Exception, match=f"reaches {ACCT_B} in test mode"):
        call_command("stripe_customers", "pull", "--account", ACCT_B)
    assert Customer.objects.count() == 0


def test_deletion_detection_stays_in_the_account_pulled(platform, db):
    pull_accounts(every_account(), parallel=1)
    b_row = Customer.objects.get(stripe_account=ACCT_B)
    get_client().for_account(ACCT_B).customers.delete(b_row.stripe_id)
    before = len(platform.requests)

    pull_all(account=accounts.find(ACCT_A, False))

    b_row.refresh_from_db()
    assert b_row.deleted is False, "a pull of A never looks at B's rows"
    assert not any(b_row.stripe_id in r.path for r in platform.requests[before:])
    pull_all(account=accounts.find(ACCT_B, False))
    b_row.refresh_from_db()
    assert b_row.deleted is True


def test_edits_are_pushed_to_the_account_of_their_row(platform, db):
    pull_accounts(every_account(), parallel=1)
    a_row = Customer.objects.get(stripe_account=ACCT_A)
    a_row.name = "Only in A"
    a_row.save()

    assert push_customer(a_row.pk).outcome is PushOutcome.UPDATED

    assert platform.customers_of(ACCT_A)[a_row.stripe_id]["name"] == "Only in A"
    assert [c["name"] for c in platform.customers_of(ACCT_B).values()] == ["Same"]
    assert [c["name"] for c in platform.customers_of(None).values()] == ["Same"]
    sent = [r for r in platform.requests if r.method == "POST"][-1]
    assert sent.headers.get("Stripe-Account") == ACCT_A


def test_a_customer_created_here_for_a_connected_account_is_created_there(platform, db):
    row = Customer(email="new@example.com", stripe_account=ACCT_B)
    row.save()

    assert push_customer(row.pk).outcome is PushOutcome.CREATED

    row.refresh_from_db()
    assert row.stripe_id in platform.customers_of(ACCT_B)
    assert row.stripe_id not in platform.customers_of(None)
    assert row.stripe_id not in platform.customers_of(ACCT_A)


def test_a_new_row_defaults_to_the_first_keys_own_account(platform, db):
    row = Customer.objects.create(email="default@example.com")
    assert (row.stripe_account, row.livemode) == (None, False)
    push_customer(row.pk)
    row.refresh_from_db()
    assert row.stripe_id in platform.customers_of(None)


def test_a_row_in_stripe_cannot_move_to_another_account(platform, db):
    pull_all(account=accounts.find(ACCT_A, False))
    row = Customer.objects.get()
    row.stripe_account = ACCT_B
    with pytest.raises(Exception, match="stripe_account: the customer exists in Stripe"):
        row.save()
    assert Customer.objects.get().stripe_account == ACCT_A


def connect_event(account: str, stripe_id: str, **fields: Any) -> dict[str, Any]:
    obj = {"id": stripe_id, "object": "customer", "created": 1_700_000_000, **fields}
    return {
        "id": f"evt_{account[-4:]}{stripe_id[-6:]}",
        "object": "event",
        "type": "customer.updated",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "account": account,
        "data": {"object": obj},
    }


def test_a_connect_webhook_is_applied_to_the_row_of_its_account(platform, db):
    pull_accounts(every_account(), parallel=1)
    a_row = Customer.objects.get(stripe_account=ACCT_A)
    a_client = get_client().for_account(ACCT_A)
    a_client.customers.update(a_row.stripe_id, {"name": "From A's event"})
    (event,) = [e for e in platform.events_of(ACCT_A) if e["type"] == "customer.updated"]
    assert event["account"] == ACCT_A

    response = post(event, secret=CONNECT_SECRET)

    assert response.status_code == 200, response.content
    stored = WebhookEvent.objects.get(event_id=event["id"])
    assert (stored.status, stored.stripe_account) == ("processed", ACCT_A)
    a_row.refresh_from_db()
    assert a_row.name == "From A's event"
    names = dict(Customer.objects.values_list("stripe_account", "name"))
    assert names == {None: "Same", ACCT_A: "From A's event", ACCT_B: "Same"}


def test_an_event_naming_another_accounts_customer_is_not_applied(platform, db):
    pull_accounts(every_account(), parallel=1)
    b_row = Customer.objects.get(stripe_account=ACCT_B)

    payload = connect_event(ACCT_A, b_row.stripe_id, name="Wrong account")
    post(payload, secret=CONNECT_SECRET)

    b_row.refresh_from_db()
    assert b_row.name == "Same" and b_row.stripe_account == ACCT_B
    stored = WebhookEvent.objects.get(event_id=payload["id"])
    assert stored.status == "refused"
    assert f"is a customer of {ACCT_B} (test)" in stored.error


def test_an_event_of_an_account_the_endpoints_key_does_not_reach_is_refused(platform, db, settings):
    key = settings.STRIPE_CUSTOMERS["API_KEY"]
    settings.STRIPE_CUSTOMERS = {
        **settings.STRIPE_CUSTOMERS,
        "ACCOUNTS": [
            {"API_KEY": key, "CONNECTED": [ACCT_A], "CONNECT_WEBHOOK_SECRETS": [CONNECT_SECRET]}
        ],
    }
    payload = connect_event(ACCT_B, "cus_NotMirrored01", name="B")

    response = post(payload, secret=CONNECT_SECRET)

    assert response.status_code == 400
    assert "is not mirrored through this endpoint's key" in response.json()["error"]
    assert not Customer.objects.exists()


def deauthorized_event(emulator: Any, account: str) -> dict[str, Any]:
    """Disconnect ``account`` in the emulator; the event it recorded in that account's store
    (as Stripe sends it to the platform's Connect endpoint)."""
    event_id = emulator.deauthorize(account)
    with emulator.store.lock:
        store = emulator.stores.platform(False).stores[account]
        return dict(json.loads(json.dumps(store.events[event_id])))


def test_a_deauthorized_account_keeps_its_rows_flagged_and_pushes_stop(platform, db):
    pull_accounts(every_account(), parallel=1)
    a_row = Customer.objects.get(stripe_account=ACCT_A)
    event = deauthorized_event(platform, ACCT_A)
    assert event["account"] == ACCT_A

    response = post(event, secret=CONNECT_SECRET)

    assert response.status_code == 200, response.content
    a_row.refresh_from_db()
    assert a_row.deleted is False, "kept, not deleted"
    assert "disconnected from the platform" in a_row.sync_error
    other = Customer.objects.get(stripe_account=ACCT_B)
    assert other.sync_error == ""

    a_row.name = "Edited after"
    a_row.save()
    sent_before = len(platform.requests)
    result = push_customer(a_row.pk)
    assert result.outcome is PushOutcome.FAILED
    assert "disconnected" in result.error
    assert len(platform.requests) == sent_before, "nothing sent to a disconnected account"
    assert ACCT_A not in [a.stripe_account for a in every_account()]


@pytest.fixture
def test_and_live(stripe_settings: Any, settings: Any) -> Iterator[Any]:
    """A test key and a live key of the same account; one customer in each mode."""
    emulator = stripe_settings
    emulator.app.live_keys = True
    test_key = settings.STRIPE_CUSTOMERS["API_KEY"]
    settings.STRIPE_CUSTOMERS = {
        **settings.STRIPE_CUSTOMERS,
        "ACCOUNTS": [{"API_KEY": test_key}, {"API_KEY": LIVE_KEY}],
    }
    clear_client_cache()
    get_client().customers.create({"email": EMAIL, "name": "Test"})
    get_client(api_key=LIVE_KEY).customers.create({"email": EMAIL, "name": "Live"})
    try:
        yield emulator
    finally:
        emulator.app.live_keys = False
        clear_client_cache()


def test_test_and_live_rows_never_cross(test_and_live, db):
    pull_accounts(every_account(), parallel=2)

    test_row = Customer.objects.get(livemode=False)
    live_row = Customer.objects.get(livemode=True)
    assert (test_row.name, live_row.name) == ("Test", "Live")
    assert test_row.stripe_id in test_and_live.customers_of(None, livemode=False)
    assert live_row.stripe_id in test_and_live.customers_of(None, livemode=True)

    live_row.name = "Live, edited"
    live_row.save()
    push_customer(live_row.pk)
    assert test_and_live.customers_of(None, livemode=True)[live_row.stripe_id]["name"] == (
        "Live, edited"
    )
    assert [c["name"] for c in test_and_live.customers_of(None).values()] == ["Test"]

    new_live = Customer(email="live-new@example.com", livemode=True)
    new_live.save()
    push_customer(new_live.pk)
    new_live.refresh_from_db()
    assert new_live.stripe_id in test_and_live.customers_of(None, livemode=True)
    assert new_live.stripe_id not in test_and_live.customers_of(None)

    # a pull of the test account never flags the live row it does not list
    pull_all(account=accounts.find(None, False))
    live_row.refresh_from_db()
    assert live_row.deleted is False


def test_pull_customer_asks_the_rows_own_account(platform, db):
    pull_accounts(every_account(), parallel=1)
    b_row = Customer.objects.get(stripe_account=ACCT_B)
    get_client().for_account(ACCT_B).customers.update(b_row.stripe_id, {"name": "Renamed in B"})

    pull_customer(b_row.stripe_id)

    b_row.refresh_from_db()
    assert b_row.name == "Renamed in B"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"API_KEY": "sk_test_a"}, {"API_KEY": "sk_test_b"}], "give the later one its 'ACCOUNT'"),
        ([{"API_KEY": "sk_test_a", "CONECTED": []}], "unknown key(s) CONECTED"),
        ([{"API_KEY": "sk_test_a", "CONNECTED": "acct_x"}], "must be a list of acct_ ids"),
        ([{"API_KEY": "sk_test_a", "CONNECTED": ["cus_1"]}], "not an acct_ id: 'cus_1'"),
        ([{"CONNECTED": []}], "ACCOUNTS'][0]['API_KEY'] is missing"),
        ([], "non-empty list"),
    ],
)
def test_a_wrong_accounts_setting_says_what_is_wrong(settings, entries, message):
    settings.STRIPE_CUSTOMERS = {"API_KEY": "sk_test_a", "ACCOUNTS": entries}
    with pytest.raises(ImproperlyConfigured) as raised:
        accounts.entries()
    assert message in str(raised.value)


def test_two_keys_of_one_mode_with_the_later_ones_account_are_two_accounts(settings):
    settings.STRIPE_CUSTOMERS = {
        "ACCOUNTS": [{"API_KEY": "sk_test_a"}, {"API_KEY": "sk_test_b", "ACCOUNT": "acct_other"}]
    }
    assert [str(a) for a in accounts.listed()] == ["own account (test)", "acct_other (test)"]
    other = accounts.find("acct_other", False)
    assert other.connected is False, "its own account: no Stripe-Account header"
    assert other.client().stripe_account is None


def test_an_owner_has_one_live_customer_per_account(platform, db, django_user_model):
    ada = django_user_model.objects.create_user("ada", email="ada@example.com")
    own = Customer.objects.for_owner(ada)
    in_a = Customer.objects.for_owner(ada, account=accounts.find(ACCT_A, False))

    assert own.pk != in_a.pk
    assert (own.stripe_account, in_a.stripe_account) == (None, ACCT_A)
    assert Customer.objects.for_owner(ada, account=accounts.find(ACCT_A, False)).pk == in_a.pk
    with pytest.raises(IntegrityError):  # the constraint holds per account and mode
        with transaction.atomic():
            Customer.objects.create(user=ada, email="again@example.com", stripe_account=ACCT_A)


@pytest.mark.django_db(transaction=True)
def test_the_migration_files_existing_rows_as_the_keys_own_account(settings):
    """Rows from before accounts: in Stripe, the key's own account (or STRIPE_ACCOUNT's);
    not in Stripe yet, the mode of the configured key."""
    settings.STRIPE_CUSTOMERS = {"API_KEY": LIVE_KEY, "STRIPE_ACCOUNT": ACCT_A}
    executor = MigrationExecutor(connection)
    before = [("stripe_customers", "0003_owner_deletion_retries")]
    after = [("stripe_customers", "0004_accounts")]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("stripe_customers", "Customer")
    old.objects.create(stripe_id="cus_Before0000001", livemode=False, sync_status="synced")
    old.objects.create(email="local@example.com", livemode=False, sync_status="pending")
    executor = MigrationExecutor(connection)
    executor.migrate(after)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    rows = {row.email or row.stripe_id: row for row in Customer.objects.all()}
    assert rows["cus_Before0000001"].stripe_account == ACCT_A
    assert rows["cus_Before0000001"].livemode is False, "its mode is Stripe's, as mirrored"
    assert (rows["local@example.com"].stripe_account, rows["local@example.com"].livemode) == (
        ACCT_A,
        True,
    )


@pytest.mark.django_db(transaction=True)  # the tasks it sends run as Celery runs them
def test_the_pull_task_of_every_account_sends_one_task_per_account(platform):
    from django_stripe_customers.tasks import pull_all_task

    answer = pull_all_task.apply(kwargs={"all_accounts": True}).get()

    assert answer == {"accounts": 3}
    assert rows_by_account() == {None: [EMAIL], ACCT_A: [EMAIL], ACCT_B: [EMAIL]}
    assert PullRun.objects.filter(status="succeeded").count() == 3


def test_a_partitioned_pull_of_a_connected_account_pulls_that_account(platform, db):
    from django_stripe_customers.tasks import pull_slice_task

    run = PullRun.objects.create(partitions=1, stripe_account=ACCT_B)
    pull_slice_task.apply(args=(0, 2**31, run.pk)).get()

    run.refresh_from_db()
    assert (run.status, run.created) == ("succeeded", 1)
    assert rows_by_account() == {ACCT_B: [EMAIL]}


def test_catch_up_of_every_account_applies_each_accounts_events(platform, db, capsys):
    since = int(time.time()) - 60
    pull_accounts(every_account(), parallel=1)
    for account_id in (ACCT_A, ACCT_B):
        row = Customer.objects.get(stripe_account=account_id)
        get_client().for_account(account_id).customers.update(
            row.stripe_id, {"name": f"Renamed in {account_id[-1]}"}
        )

    call_command("stripe_customers", "events", "--since", str(since), "--all-accounts")

    names = dict(Customer.objects.values_list("stripe_account", "name"))
    assert names == {None: "Same", ACCT_A: "Renamed in A", ACCT_B: "Renamed in B"}
    stored = WebhookEvent.objects.filter(type="customer.updated")
    assert sorted(stored.values_list("stripe_account", flat=True)) == [ACCT_A, ACCT_B]
    assert "applied" in capsys.readouterr().out


OTHER_KEY = "sk_test_other_platform"
OTHER_ACCOUNT = "acct_1OtherPlatform01"


def test_two_unrelated_accounts_each_with_its_own_key(stripe_settings, settings, db):
    """Two Stripe accounts, nothing in common but the database: each key's own customers, in
    rows of their own; pushes go with the row's key."""
    emulator = stripe_settings
    emulator.add_key(OTHER_KEY, OTHER_ACCOUNT)
    key = settings.STRIPE_CUSTOMERS["API_KEY"]
    settings.STRIPE_CUSTOMERS = {
        **settings.STRIPE_CUSTOMERS,
        "ACCOUNTS": [{"API_KEY": key}, {"API_KEY": OTHER_KEY, "ACCOUNT": OTHER_ACCOUNT}],
    }
    clear_client_cache()
    get_client().customers.create({"email": EMAIL, "name": "First"})
    get_client(api_key=OTHER_KEY).customers.create({"email": EMAIL, "name": "Other"})

    pull_accounts(every_account(), parallel=2)

    names = dict(Customer.objects.values_list("stripe_account", "name"))
    assert names == {None: "First", OTHER_ACCOUNT: "Other"}
    other = Customer.objects.get(stripe_account=OTHER_ACCOUNT)
    assert other.stripe_id in emulator.customers_of(OTHER_ACCOUNT)
    other.name = "Other, edited"
    other.save()
    before = len(emulator.requests)
    assert push_customer(other.pk).outcome is PushOutcome.UPDATED
    assert emulator.customers_of(OTHER_ACCOUNT)[other.stripe_id]["name"] == "Other, edited"
    sent = emulator.requests[before:]
    assert sent and all("Stripe-Account" not in r.headers for r in sent), "its own account"
    clear_client_cache()
