"""How pushes run (``PUSH_MODE``): through Celery, or in the saving process; never a long wait.

The suite's own Celery app is eager, so ``auto`` resolves to Celery here; ``inline`` is set
explicitly. A project with no Celery app at all is a subprocess
(``tests/system/test_manage_py.py``): there ``auto`` is inline (``tests/system/test_install.py``
checks it in a fresh ``startproject`` too).
"""

from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta

import pytest
from django.core import checks
from django.db import OperationalError
from django.utils import timezone

from django_stripe_customers import dispatch, tasks
from django_stripe_customers.models import Customer, SyncStatus
from tests.support.admin_pages import change_url, form_data
from tests.support.celery_app import app
from tests.support.faultproxy import DROP_RESPONSE, STATUS
from tests.support.stripe_servers import settings_through_proxy

# Transactional: inline pushes run in a background thread, on a connection of its own, after
# the commit.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def inline(stripe_settings, settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_MODE": "inline"}
    return stripe_settings


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not _holds(condition):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _holds(condition):
    """The condition, or False while SQLite's shared-cache test database has the table locked
    by the inline thread's write (an in-memory database shared by threads locks tables at
    once, without the busy timeout a file database waits; the next poll reads)."""
    try:
        return condition()
    except OperationalError as exc:
        if "database table is locked" not in str(exc):
            raise
        return False


def check_ids(**tags):
    return [message.id for message in checks.run_checks(tags=["stripe_customers"])]


# -- inline --------------------------------------------------------------------------------------


def test_auto_is_celery_when_the_project_has_a_celery_app(stripe_settings):
    assert dispatch.project_celery_app() is app
    assert dispatch.push_mode() == "celery"


def test_inline_pushes_right_after_the_commit_from_a_background_thread(inline):
    threads = []
    real_push = tasks.push.push_customer

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real_push(*args, **kwargs)

    tasks.push.push_customer = recording
    try:
        Customer.objects.create(email="inline@example.com", name="Inline")
    finally:
        tasks.push.push_customer = real_push

    row = Customer.objects.get()
    assert row.sync_status == SyncStatus.SYNCED, "the save waited for its push"
    assert inline.customers[row.stripe_id]["name"] == "Inline"
    assert threads == ["stripe-customers-inline"], "not on the saving thread"


def test_inline_admin_edit_reaches_stripe(inline, admin_client):
    Customer.objects.create(email="admin@example.com", name="Before")
    customer = Customer.objects.get()
    data = form_data(admin_client, change_url(customer))
    data["name"] = "After"

    response = admin_client.post(change_url(customer), data)

    assert response.status_code == 302
    assert inline.customers[customer.stripe_id]["name"] == "After"


def test_the_inline_thread_sweeps_overdue_rows(inline, settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_SWEEP_AFTER": 1}
    (forgotten,) = Customer.objects.bulk_create([Customer(email="forgotten@example.com")])
    Customer.objects.filter(pk=forgotten.pk).update(
        sync_status=SyncStatus.PENDING, pending_since=timezone.now() - timedelta(minutes=5)
    )
    tasks._last_inline_sweep = 0.0

    Customer.objects.create(email="next@example.com")

    wait_for(lambda: Customer.objects.get(pk=forgotten.pk).sync_status == SyncStatus.SYNCED)
    assert len(inline.customers) == 2


def test_an_inline_push_that_stripe_does_not_answer_stays_pending(settings, stripe_settings):
    settings.STRIPE_CUSTOMERS = {
        **settings.STRIPE_CUSTOMERS,
        "PUSH_MODE": "inline",
        "API_BASE": "http://127.0.0.1:9",  # nothing listens: connection refused
        "MAX_RETRIES": 0,
    }
    Customer.objects.create(email="offline@example.com")
    assert Customer.objects.get().sync_status == SyncStatus.PENDING


# -- a broker that does not answer -------------------------------------------------------------


@pytest.fixture
def silent_broker():
    """A TCP server that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    stop.set()
    thread.join(2)
    for connection in accepted:
        connection.close()
    server.close()
    # the sender thread, held by this broker, is free again once it went away
    freed = dispatch.SENDER.submit(lambda: None)
    assert freed is not None and freed.wait(20), "the enqueue thread is still stuck"


@pytest.fixture
def real_broker_app(silent_broker):
    """The suite's Celery app, not eager, pointed at ``silent_broker``."""
    overrides = {"task_always_eager": False, "broker_url": silent_broker}
    saved = {name: app.conf[name] for name in overrides}
    app.conf.update(overrides)
    app._pool = None
    app.amqp._producer_pool = None
    yield app
    app.conf.update(saved)
    app._pool = None
    app.amqp._producer_pool = None


def test_a_save_never_waits_more_than_a_second_for_the_broker(stripe_settings, real_broker_app):
    started = time.monotonic()
    Customer.objects.create(email="slow-broker@example.com")
    first = time.monotonic() - started
    started = time.monotonic()
    Customer.objects.create(email="slow-broker-2@example.com")
    second = time.monotonic() - started

    assert first < dispatch.ENQUEUE_TIMEOUT + 0.5, f"the save waited {first:.2f} s"
    assert second < dispatch.ENQUEUE_TIMEOUT + 0.5, f"the save waited {second:.2f} s"
    assert set(Customer.objects.values_list("sync_status", flat=True)) == {"pending"}
    assert stripe_settings.count() == 0


# -- checks --------------------------------------------------------------------------------------


def test_celery_pushes_without_the_sweep_in_beat_are_warned(stripe_settings, real_broker_app):
    real_broker_app.conf.beat_schedule = {}
    assert "stripe_customers.W007" in check_ids()
    real_broker_app.conf.beat_schedule = {
        "stripe-customers-push-sweep": {"task": "stripe_customers.push_pending", "schedule": 60}
    }
    try:
        assert "stripe_customers.W007" not in check_ids()
    finally:
        real_broker_app.conf.beat_schedule = {}


def test_an_unknown_push_mode_is_an_error(stripe_settings, settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_MODE": "asap"}
    assert "stripe_customers.E007" in check_ids()


# -- the admin sees a stuck outbox ---------------------------------------------------------------


def test_the_customer_list_says_how_many_pushes_are_overdue_and_links_to_them(
    admin_client, stripe_settings, settings
):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    Customer.objects.bulk_create(
        [Customer(email=f"stuck{n}@example.com") for n in range(3)]
        + [Customer(email="fresh@example.com")]
    )
    long_ago = timezone.now() - timedelta(minutes=10)
    Customer.objects.filter(email__startswith="stuck").update(
        sync_status=SyncStatus.PENDING, pending_since=long_ago
    )
    Customer.objects.filter(email="stuck2@example.com").update(sync_status=SyncStatus.FAILED)
    Customer.objects.filter(email="fresh@example.com").update(
        sync_status=SyncStatus.PENDING, pending_since=timezone.now()
    )

    page = admin_client.get("/admin/stripe_customers/customer/").content.decode()
    assert "3 customers have been waiting to reach Stripe" in page
    assert "for more than 60 seconds" in page
    assert "?push_overdue=yes" in page

    listed = admin_client.get("/admin/stripe_customers/customer/", {"push_overdue": "yes"})
    emails = {c.email for c in listed.context["cl"].result_list}
    assert emails == {"stuck0@example.com", "stuck1@example.com", "stuck2@example.com"}


def test_no_notice_when_nothing_is_overdue(admin_client, stripe_settings):
    Customer.objects.create(email="fine@example.com")
    page = admin_client.get("/admin/stripe_customers/customer/").content.decode()
    assert "waiting to reach Stripe" not in page


# -- inline, while Stripe is away --------------------------------------------------------------


@pytest.fixture
def inline_through_proxy(stripe_settings, settings):
    """Inline pushes through a fault proxy, one try per request, the sweep every 0.3 s; the
    retry timer is stopped afterwards, so it never runs into another test."""
    with settings_through_proxy(
        settings, stripe_settings.url, PUSH_MODE="inline", MAX_RETRIES=0, PUSH_SWEEP_AFTER=0.3
    ) as proxy:
        try:
            yield proxy
        finally:
            dispatch.RETRIER.stop()


def test_a_push_left_pending_while_stripe_was_down_is_retried_on_a_timer(
    inline_through_proxy, stripe_settings
):
    """Reported: nothing happened for 3 minutes, until an unrelated save."""
    proxy = inline_through_proxy
    proxy.enqueue(STATUS(503), STATUS(503))
    Customer.objects.create(email="down@example.com", name="While down")
    row = Customer.objects.get()
    assert row.sync_status == SyncStatus.PENDING
    assert "HTTP 503" in row.sync_error and "sent again" in row.sync_error, "visible"
    assert row.next_attempt_at is not None and row.next_attempt_at > row.pending_since

    wait_for(lambda: Customer.objects.get().sync_status == SyncStatus.SYNCED)  # no other save

    row.refresh_from_db()
    assert (row.sync_error, row.next_attempt_at) == ("", None)
    assert stripe_settings.customers[row.stripe_id]["name"] == "While down"
    tries = proxy.requests
    assert [r.fault is not None for r in tries[:3]] == [True, True, False], "refused twice"
    assert {r.idempotency_key for r in tries} == {tries[0].idempotency_key}, "one request"
    assert len(stripe_settings.customers) == 1
    wait_for(lambda: not dispatch.RETRIER.running)  # nothing left: the timer ends


def test_an_edit_stripe_took_whose_answer_was_lost_becomes_synced(
    inline_through_proxy, stripe_settings
):
    """Reported: the row stayed pending although Stripe had the data, and `push --pending`
    said "1 unchanged". The retry resends the recorded request with its key; Stripe replays."""
    proxy = inline_through_proxy
    proxy.enqueue(DROP_RESPONSE(method="POST"))
    Customer.objects.create(email="lost@example.com")
    assert Customer.objects.get().push_intent is not None, "in flight, answer lost"
    assert len(stripe_settings.customers) == 1, "Stripe has it"

    wait_for(lambda: Customer.objects.get().sync_status == SyncStatus.SYNCED)

    row = Customer.objects.get()
    assert row.push_intent is None and row.stripe_id in stripe_settings.customers
    assert len(stripe_settings.customers) == 1, "replayed, not created twice"
    keys = {r.idempotency_key for r in proxy.requests if r.method == "POST"}
    assert len(keys) == 1


def test_the_admin_notice_describes_inline_retries_on_an_inline_site(
    inline_through_proxy, admin_client
):
    proxy = inline_through_proxy
    proxy.enqueue(*[STATUS(503)] * 50)
    Customer.objects.create(email="notice@example.com")
    dispatch.RETRIER.stop()  # this test reads the notice; the timer would write meanwhile
    Customer.objects.update(pending_since=timezone.now() - timedelta(minutes=5))

    page = admin_client.get("/admin/stripe_customers/customer/").content.decode()

    assert "This site pushes inline (no Celery)" in page
    assert "PUSH_MODE" not in page, "not a suggestion to do what the site already does"
