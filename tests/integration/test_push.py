"""Pushing local edits to the Stripe emulator: signals, diff, idempotency, failure policy.

Tier 1 runs Celery eagerly, so a committed save pushes in the same process right after commit.
"""

from __future__ import annotations

import pytest
from django.db import transaction
from django.db.models import QuerySet

from django_stripe_customers.clients import get_client
from django_stripe_customers.models import Customer, SyncStatus
from django_stripe_customers.signals import customer_push_failed, customer_pushed
from django_stripe_customers.sync import outbox, pull_customer, push
from django_stripe_customers.sync.push import push_customer
from django_stripe_customers.tasks import push_pending_task
from tests.support.celery_app import app
from tests.support.customers import posts
from tests.support.faultproxy import DROP_RESPONSE, RATE_LIMIT, STALL, STATUS
from tests.support.stripe_servers import settings_through_proxy

# Transactional: what is tested is what the commit (or the rollback) of a saving transaction
# sends, and when (guarantees 1 to 3): only a real commit shows it.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def proxied_settings(stripe_settings, settings):
    """STRIPE_CUSTOMERS pointed at a fault proxy in front of the emulator (fast retries)."""
    with settings_through_proxy(settings, stripe_settings.url, TIMEOUT=2) as proxy:
        yield stripe_settings, proxy


def test_a_committed_create_reaches_stripe_once_with_only_what_was_set(stripe_settings):
    emulator = stripe_settings
    customer = Customer.objects.create(email="jenny@example.com", metadata={"order": "1"})

    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.SYNCED
    assert customer.stripe_id in emulator.customers
    (create,) = posts(emulator)
    assert create.path == "/v1/customers"
    assert create.params == {"email": "jenny@example.com", "metadata": {"order": "1"}}
    key = create.headers["Idempotency-Key"]
    assert key.startswith(f"django-stripe-customers-{customer.pk}-v1-"), "row and version"
    assert customer.stripe_data["email"] == "jenny@example.com"
    assert customer.invoice_prefix == emulator.customers[customer.stripe_id]["invoice_prefix"]


def test_an_update_sends_only_the_changed_fields(stripe_settings):
    emulator = stripe_settings
    customer = Customer.objects.create(email="a@example.com", name="A", phone="+331")
    customer.refresh_from_db()
    customer.name = "B"
    customer.save()

    update = posts(emulator)[-1]
    assert update.path == f"/v1/customers/{customer.stripe_id}"
    assert update.params == {"name": "B"}
    assert emulator.customers[customer.stripe_id]["name"] == "B"


def test_metadata_per_key_cleared_scalar_and_whole_address(stripe_settings):
    emulator = stripe_settings
    customer = Customer.objects.create(
        email="a@example.com",
        description="to be cleared",
        metadata={"keep": "1", "drop": "2"},
        address={"line1": "1 Main St", "city": "Paris", "country": "FR"},
    )
    customer.refresh_from_db()
    customer.metadata = {"keep": "1", "new": "3"}
    customer.description = ""
    customer.address = {"line1": "2 Other St", "city": "Paris", "country": "FR"}
    customer.save()

    update = posts(emulator)[-1]
    assert update.params["metadata"] == {"new": "3", "drop": ""}
    assert update.params["description"] == ""
    assert update.params["address"] == {"line1": "2 Other St", "city": "Paris", "country": "FR"}
    remote = emulator.customers[customer.stripe_id]
    assert remote["metadata"] == {"keep": "1", "new": "3"}
    assert remote["description"] is None
    assert remote["address"]["line1"] == "2 Other St"


def test_a_rolled_back_save_sends_nothing(stripe_settings):
    with pytest.raises(RuntimeError), transaction.atomic():
        Customer.objects.create(email="never@example.com")
        raise RuntimeError("rollback")
    assert stripe_settings.count("POST") == 0
    assert Customer.objects.count() == 0


def test_no_network_call_while_the_saving_transaction_is_open(stripe_settings):
    with transaction.atomic():
        Customer.objects.create(email="later@example.com")
        assert stripe_settings.count() == 0, "nothing sent before commit"
    assert stripe_settings.count("POST", "/v1/customers") == 1


def test_push_on_save_off_leaves_rows_pending_and_the_sweep_pushes_them(stripe_settings, settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    customer = Customer.objects.create(email="swept@example.com")
    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.PENDING
    assert stripe_settings.count() == 0

    assert push_pending_task.delay(older_than=0).get() == 1

    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.SYNCED
    assert stripe_settings.count("POST", "/v1/customers") == 1


def test_broker_down_at_commit_loses_nothing_and_the_sweep_pushes(stripe_settings):
    """The broker is really unreachable (a closed port), not mocked."""
    saved = {k: app.conf[k] for k in ("task_always_eager", "broker_url")}
    app.conf.update(task_always_eager=False, broker_url="redis://127.0.0.1:9/0")
    try:
        customer = Customer.objects.create(email="outbox@example.com")
    finally:  # back to the in-memory broker, with fresh connection pools
        app.conf.update(saved)
        app._pool = None
        app.amqp._producer_pool = None
    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.PENDING
    assert stripe_settings.count() == 0

    push_pending_task.delay(older_than=0)

    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.SYNCED
    assert len(stripe_settings.customers) == 1


def test_a_create_whose_response_is_dropped_creates_exactly_one_customer(proxied_settings):
    emulator, proxy = proxied_settings
    proxy.enqueue(DROP_RESPONSE(method="POST"))

    customer = Customer.objects.create(email="once@example.com")

    customer.refresh_from_db()
    assert len(emulator.customers) == 1
    assert customer.stripe_id in emulator.customers
    tries = [r for r in proxy.requests if r.method == "POST"]
    assert len(tries) == 2 and tries[0].idempotency_key == tries[1].idempotency_key


def test_a_crash_between_stripe_and_the_database_is_resolved_by_the_retry(
    stripe_settings, monkeypatch, settings
):
    """The worker's death after Stripe answered is simulated in-process (raising instead of
    applying the answer): the request stays recorded and the retry resends it with its key."""
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    customer = Customer.objects.create(email="crash@example.com")
    real_apply = push._apply_answer

    def crash(*args, **kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(push, "_apply_answer", crash)
    with pytest.raises(SystemExit):
        push_customer(customer.pk, owner="task-1")
    customer.refresh_from_db()
    assert customer.stripe_id is None and customer.push_intent is not None
    assert len(stripe_settings.customers) == 1

    monkeypatch.setattr(push, "_apply_answer", real_apply)
    result = push_customer(customer.pk, owner="task-1")

    customer.refresh_from_db()
    assert result.outcome == "created"
    assert len(stripe_settings.customers) == 1, "the resend was replayed, not executed"
    assert customer.stripe_id in stripe_settings.customers
    keys = [r.headers["Idempotency-Key"] for r in posts(stripe_settings)]
    assert len(keys) == 2 and keys[0] == keys[1]


def test_edits_saved_while_a_push_is_in_flight_go_in_the_next_push(stripe_settings, settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    customer = Customer.objects.create(email="first@example.com")
    intent = push._claim(customer.pk, "task-a")
    edited = Customer.objects.get(pk=customer.pk)
    edited.email = "second@example.com"
    edited.save()
    assert push_customer(customer.pk, owner="task-b").outcome == "in_flight"

    result = push._apply_answer(
        get_client(), customer.pk, intent, push._send(get_client(), intent)
    )

    assert result.still_pending
    customer.refresh_from_db()
    assert customer.email == "second@example.com", "the newer local edit is not overwritten"
    assert customer.sync_status == SyncStatus.PENDING
    push_customer(customer.pk)
    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.SYNCED
    assert stripe_settings.customers[customer.stripe_id]["email"] == "second@example.com"


def test_many_saves_while_not_pushing_become_one_call(stripe_settings, settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    customer = Customer.objects.create(email="v1@example.com")
    for version in range(2, 6):
        customer.email = f"v{version}@example.com"
        customer.save()
    push_customer(customer.pk)
    (create,) = posts(stripe_settings)
    assert create.params == {"email": "v5@example.com"}


def test_invalid_data_saved_around_validation_fails_before_any_call(stripe_settings):
    customer = Customer.objects.create(email="ok@example.com")
    before = stripe_settings.count()
    too_many = {f"key{n}": "v" for n in range(51)}  # a JSON column takes it; Stripe would not
    # Django's plain UPDATE (raw SQL alike): the app's update() would refuse the value
    QuerySet.update(Customer.objects.filter(pk=customer.pk), metadata=too_many)
    assert Customer.objects.mark_pending(Customer.objects.filter(pk=customer.pk)) == 1

    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.FAILED
    assert "metadata" in customer.sync_error and "50" in customer.sync_error
    assert stripe_settings.count() == before, "nothing sent"
    assert customer.metadata == too_many, "the local edit is kept"


def test_a_permanent_stripe_error_fails_the_row_keeps_the_edit_and_fires_the_signal(
    proxied_settings,
):
    _, proxy = proxied_settings
    failures = []

    def on_failed(**kwargs):
        failures.append(kwargs["error"])

    customer_push_failed.connect(on_failed)
    error = {"type": "invalid_request_error", "param": "phone", "message": "Invalid phone"}
    proxy.enqueue(STATUS(400, body={"error": error}, method="POST"))

    customer = Customer.objects.create(email="bad@example.com", phone="+999")

    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.FAILED
    assert "param: phone" in customer.sync_error and "Invalid phone" in customer.sync_error
    assert customer.phone == "+999"
    assert len([r for r in proxy.requests if r.method == "POST"]) == 1, "not retried"
    customer_push_failed.disconnect(on_failed)
    assert failures and "Invalid phone" in failures[-1]


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param(lambda: [STATUS(503, method="POST"), STATUS(500, method="POST")], id="5xx"),
        pytest.param(lambda: [RATE_LIMIT(retry_after=1, method="POST")], id="429"),
        pytest.param(lambda: [DROP_RESPONSE(method="POST")], id="dropped-response"),
        pytest.param(lambda: [STALL(3, method="POST")], id="timeout"),
    ],
)
def test_an_update_retried_after_a_transient_failure_is_applied_once(proxied_settings, faults):
    emulator, proxy = proxied_settings
    customer = Customer.objects.create(email="t@example.com")
    customer.refresh_from_db()
    proxy.enqueue(*faults())

    customer.name = "Retried"
    customer.save()

    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.SYNCED
    updated = [e for e in emulator.events if e["type"] == "customer.updated"]
    assert len(updated) == 1


def test_a_customer_deleted_upstream_is_flagged_not_recreated(stripe_settings):
    customer = Customer.objects.create(email="gone@example.com")
    customer.refresh_from_db()
    get_client().customers.delete(customer.stripe_id)

    customer.name = "edit after deletion"
    customer.save()

    customer.refresh_from_db()
    assert customer.deleted is True
    assert customer.sync_status == SyncStatus.FAILED
    assert stripe_settings.count("POST", "/v1/customers") == 1, "no second create"


def test_pull_does_not_echo_back(stripe_settings):
    customer = Customer.objects.create(email="echo@example.com")
    customer.refresh_from_db()
    get_client().customers.update(customer.stripe_id, {"name": "Remote"})
    posts_before = stripe_settings.count("POST")

    pull_customer(customer.stripe_id)

    customer.refresh_from_db()
    assert customer.name == "Remote" and customer.sync_status == SyncStatus.SYNCED
    assert stripe_settings.count("POST") == posts_before


def test_concurrent_local_and_remote_edits_to_different_fields_both_survive(
    stripe_settings, settings
):
    customer = Customer.objects.create(email="m@example.com", metadata={"a": "1", "b": "1"})
    customer.refresh_from_db()
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    customer.name = "Local"
    customer.metadata = {"a": "local", "b": "1"}
    customer.save()
    get_client().customers.update(
        customer.stripe_id, {"email": "remote@example.com", "metadata": {"b": "remote"}}
    )

    pull_customer(customer.stripe_id)
    customer.refresh_from_db()
    assert (customer.name, customer.email) == ("Local", "remote@example.com")
    assert customer.metadata == {"a": "local", "b": "remote"}
    edit = customer.requested_edit()
    assert (edit.method, edit.params) == ("update", {"name": "Local", "metadata": {"a": "local"}})

    push_customer(customer.pk)
    remote = stripe_settings.customers[customer.stripe_id]
    assert (remote["name"], remote["email"]) == ("Local", "remote@example.com")
    assert remote["metadata"] == {"a": "local", "b": "remote"}


def test_concurrent_edits_to_the_same_field_local_wins_and_is_pushed(stripe_settings, settings):
    customer = Customer.objects.create(email="same@example.com")
    customer.refresh_from_db()
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    customer.name = "Local"
    customer.save()
    get_client().customers.update(customer.stripe_id, {"name": "Remote"})

    pull_customer(customer.stripe_id)
    customer.refresh_from_db()
    assert customer.name == "Local" and customer.stripe_data["name"] == "Remote"

    push_customer(customer.pk)
    assert stripe_settings.customers[customer.stripe_id]["name"] == "Local"


def test_pushed_signal_fires_with_created_flag(stripe_settings):
    seen = []

    def on_pushed(**kwargs):
        seen.append(kwargs["created"])

    customer_pushed.connect(on_pushed)
    customer = Customer.objects.create(email="sig@example.com")
    customer.refresh_from_db()
    customer.name = "x"
    customer.save()
    customer_pushed.disconnect(on_pushed)
    assert seen == [True, False]


def test_update_fields_saves_still_push(stripe_settings):
    customer = Customer.objects.create(email="uf@example.com")
    customer.refresh_from_db()
    customer.name = "Only name"
    customer.save(update_fields=["name"])
    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.SYNCED
    assert stripe_settings.customers[customer.stripe_id]["name"] == "Only name"


def test_clearing_a_value_stripe_cannot_unset_is_refused_before_any_call(stripe_settings):
    """schema.UPDATE_PARAMS["preferred_locales"] has no accepts_empty: Stripe refuses ""."""
    from django.core.exceptions import ValidationError

    customer = Customer.objects.create(email="loc@example.com", preferred_locales=["fr", "en"])
    customer.refresh_from_db()
    customer.preferred_locales = []
    with pytest.raises(ValidationError) as refused:
        customer.full_clean()
    assert "preferred_locales" in refused.value.message_dict
    posts_before = stripe_settings.count("POST")

    customer.save()  # around full_clean: the push catches it, sends nothing

    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.FAILED
    assert "preferred_locales" in customer.sync_error
    assert stripe_settings.count("POST") == posts_before


def test_one_failing_row_does_not_stop_the_sweep(proxied_settings, settings):
    _, proxy = proxied_settings
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    first = Customer.objects.create(email="a@example.com")
    second = Customer.objects.create(email="b@example.com")
    proxy.enqueue(*[STATUS(503, method="POST")] * 3)  # every try of the first push

    assert push_pending_task.delay(older_than=0).get() == 2

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.sync_status == SyncStatus.PENDING and first.push_intent is not None
    assert second.sync_status == SyncStatus.SYNCED


# -- a push whose worker died ------------------------------------------------------------------


def _claimed_by(customer_pk, **process):
    """Record an in-flight request for the row as another push (``process``) would."""
    push._claim(customer_pk, "task-dead")
    row = Customer.objects.get(pk=customer_pk)
    Customer.objects.filter(pk=customer_pk).update(push_intent={**row.push_intent, **process})


def _dead_pid():
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_push_whose_worker_died_on_this_host_is_taken_over_at_once(stripe_settings, settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    customer = Customer.objects.create(email="orphan@example.com")
    _claimed_by(customer.pk, pid=_dead_pid())

    result = push_customer(customer.pk, owner="task-sweep")

    assert result.outcome == "created"
    assert len(stripe_settings.customers) == 1


def test_a_push_held_by_a_live_process_waits_for_the_lease(stripe_settings, settings):
    import os

    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    customer = Customer.objects.create(email="held@example.com")
    _claimed_by(customer.pk, pid=os.getpid())

    assert push_customer(customer.pk, owner="task-other").outcome == "in_flight"
    assert stripe_settings.count("POST") == 0

    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_LEASE": 0}
    assert push_customer(customer.pk, owner="task-other").outcome == "created"


def test_a_push_held_on_another_host_waits_for_the_lease(stripe_settings, settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    customer = Customer.objects.create(email="remote@example.com")
    _claimed_by(customer.pk, host="another-host", pid=_dead_pid())

    assert push_customer(customer.pk, owner="task-other").outcome == "in_flight"


def test_the_default_lease_is_the_clients_worst_case(settings):
    from datetime import timedelta

    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "TIMEOUT": 10, "MAX_RETRIES": 2}
    assert outbox.intent_lease() == timedelta(seconds=10 * 3 + 5 * 2 + 10)
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_LEASE": 7.5}
    assert outbox.intent_lease() == timedelta(seconds=7.5)


def test_a_taken_over_push_does_not_apply_its_answer_twice(stripe_settings, settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    pushed = []

    def record(customer, **kwargs):
        pushed.append(customer.pk)

    customer = Customer.objects.create(email="twice@example.com")
    first = push._claim(customer.pk, "task-first")
    answer = push._send(get_client(), first)
    _claimed_by(customer.pk, pid=_dead_pid())  # taken over, as after a lease expired
    customer_pushed.connect(record)
    try:
        assert push_customer(customer.pk, owner="task-second").outcome == "created"
        late = push._apply_answer(get_client(), customer.pk, first, answer)
    finally:
        customer_pushed.disconnect(record)

    assert late.outcome == "taken_over"
    assert pushed.count(customer.pk) == 1
    assert len(stripe_settings.customers) == 1
