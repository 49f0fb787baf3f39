"""A backlog of pending rows drained in parallel streams (``sync.drain``, issue 22 part 3).

Real HTTP to the emulator (with latency where time matters), on the suite's database: SQLite,
where the streams take turns at the database, and PostgreSQL
(``DJANGO_SETTINGS_MODULE=tests.support.settings_postgres``), where they write at once. What
must hold: faster, nothing lost, nothing sent twice, one push per row at a time, an edit saved
during the drain pushed too, one row's transient failure leaving the others alone.
"""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from django_stripe_customers import tasks
from django_stripe_customers.models import Customer, SyncStatus
from django_stripe_customers.sync import drain as drain_module
from django_stripe_customers.sync.drain import ROUNDS, DrainResult, drain, stream_count
from django_stripe_customers.sync.push import PushOutcome, push_customer
from tests.support.faultproxy import HOLD_RESPONSE, STATUS
from tests.support.stripe_servers import settings_through_proxy
from tests.support.threads import database_thread

# Transactional: the streams' threads have connections of their own, which see only what
# committed.
pytestmark = pytest.mark.django_db(transaction=True)

CREATE = ("POST", "/v1/customers")


@pytest.fixture
def quiet(stripe_settings, settings):
    """No push on save: rows wait, as after an outage, until a drain sends them."""
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    return stripe_settings


@pytest.fixture
def proxy(quiet, settings):
    """The same, through a fault proxy; one try per request (the drain's own policy shows)."""
    with settings_through_proxy(settings, quiet.url, MAX_RETRIES=0, TIMEOUT=5) as faults:
        yield faults


def backlog(count, tag="row"):
    """``count`` local rows not yet in Stripe, pending."""
    made = Customer.objects.bulk_create(
        [Customer(email=f"{tag}{n}@example.com", name=f"{tag} {n}") for n in range(count)]
    )
    pks = [row.pk for row in made]
    assert Customer.objects.filter(pk__in=pks, sync_status=SyncStatus.PENDING).count() == count
    return pks


def in_stripe(count, tag="old"):
    """``count`` rows in Stripe and synced, then each edited (``PUSH_ON_SAVE`` off: pending)."""
    rows = [Customer.objects.get(pk=pk) for pk in backlog(count, tag)]
    assert drain([row.pk for row in rows], streams=4).counts == {PushOutcome.CREATED: count}
    for row in rows:
        row.refresh_from_db()
        row.name = f"edited {row.pk}"
        row.save()
    return rows


def assert_synced_once(emulator, pks, result: DrainResult):
    """Every row synced, in Stripe with its data, created by exactly one request."""
    rows = Customer.objects.filter(pk__in=pks)
    assert {row.sync_status for row in rows} == {SyncStatus.SYNCED}, result.failures
    for row in rows:
        assert emulator.customers[row.stripe_id]["email"] == row.email
        assert emulator.customers[row.stripe_id]["name"] == row.name
    expected = sorted(row.email for row in rows)
    creates = [r.params["email"] for r in emulator.requests if (r.method, r.path) == CREATE]
    assert sorted(email for email in creates if email in expected) == expected, "one each"


def wait_on(event, seconds=10.0):
    assert event.wait(seconds), "timed out"


# -- faster, nothing lost, nothing twice --------------------------------------------------------


@pytest.mark.stripe_emulator(latency_ms=50)
def test_eight_streams_drain_a_backlog_several_times_faster_and_every_row_once(quiet):
    one_by_one, in_streams = backlog(60, "one"), backlog(60, "eight")

    serial = drain(one_by_one, streams=1)
    parallel = drain(in_streams, streams=8)

    assert (serial.streams, parallel.streams) == (1, 8)
    assert serial.counts == parallel.counts == {PushOutcome.CREATED: 60}
    assert serial.failures == parallel.failures == []
    assert parallel.pushes == parallel.rows == 60
    assert serial.seconds >= 60 * 0.05, "each push waited for Stripe's answer"
    assert serial.seconds / parallel.seconds >= 3, (serial.seconds, parallel.seconds)
    assert_synced_once(quiet, one_by_one + in_streams, parallel)
    assert quiet.count(*CREATE) == 120 and len(quiet.customers) == 120
    keys = [r.headers["Idempotency-Key"] for r in quiet.requests if r.method == "POST"]
    assert len(set(keys)) == 120, "push_customer's keys, one per request"


@pytest.mark.stripe_emulator(latency_ms=20)
def test_edits_of_customers_in_stripe_are_each_sent_once_to_their_customer(quiet):
    rows = in_stripe(30)
    before = quiet.count()

    result = drain(Customer.objects.filter(pk__in=[row.pk for row in rows]), streams=8)

    assert result.counts == {PushOutcome.UPDATED: 30}
    assert quiet.count() - before == 30 and quiet.count(*CREATE) == 30, "no create"
    for row in rows:
        assert quiet.customers[row.stripe_id]["name"] == f"edited {row.pk}"
    assert not Customer.objects.exclude(sync_status=SyncStatus.SYNCED).exists()


def test_a_pk_given_twice_is_pushed_once_and_nothing_pending_is_nothing_to_do(quiet):
    (pk,) = backlog(1)
    result = drain([pk, pk, pk], streams=4)
    assert (result.rows, result.pushes, result.counts) == (1, 1, {PushOutcome.CREATED: 1})
    again = drain([pk], streams=4)
    assert again.counts == {PushOutcome.UNCHANGED: 1}
    assert quiet.count(*CREATE) == 1
    assert drain([], streams=8).rows == 0
    with pytest.raises(ValueError, match="at least 1"):
        drain([pk], streams=0)


# -- one push per row at a time -----------------------------------------------------------------


@pytest.mark.stripe_emulator(latency_ms=30)
def test_two_drains_of_the_same_rows_at_once_send_one_create_per_row(quiet):
    pks = backlog(40)
    start = threading.Barrier(3)
    results: list[DrainResult] = []
    errors: list[Exception] = []

    def drainer(prefix):
        start.wait(10)
        try:
            results.append(drain(pks, streams=4, owner_prefix=prefix))
        except Exception as exc:  # reported below
            errors.append(exc)

    # the same prefix (two drains of one process), and another (as another process would)
    threads = [database_thread(lambda p=p: drainer(p)) for p in ("drain", "drain", "other")]
    for thread in threads:
        thread.join(60)

    assert errors == []
    created = sum(result.counts.get(PushOutcome.CREATED, 0) for result in results)
    assert created == 40, [result.counts for result in results]
    assert quiet.count(*CREATE) == 40 and len(quiet.customers) == 40
    assert_synced_once(quiet, pks, results[0])


def test_a_row_another_push_holds_in_flight_is_left_to_it(proxy, quiet):
    held, *others = backlog(4)
    gate, reached = threading.Event(), threading.Event()
    proxy.enqueue(HOLD_RESPONSE(gate, reached, method="POST", path="/v1/customers"))
    first: list[object] = []
    elsewhere = database_thread(lambda: first.append(push_customer(held, owner="elsewhere")))
    wait_on(reached)  # Stripe created it; the answer is on its way back

    result = drain([held, *others], streams=4)
    gate.set()
    elsewhere.join(10)

    assert result.counts == {PushOutcome.IN_FLIGHT: 1, PushOutcome.CREATED: 3}
    assert result.left_pending == [held], "for the push that holds it, or the next sweep"
    assert first[0].outcome is PushOutcome.CREATED
    assert quiet.count(*CREATE) == 4 and len(quiet.customers) == 4
    assert not Customer.objects.exclude(sync_status=SyncStatus.SYNCED).exists()


# -- edits saved meanwhile ----------------------------------------------------------------------


def test_an_edit_saved_while_its_request_is_in_flight_is_pushed_in_the_next_round(proxy, quiet):
    rows = in_stripe(5)
    edited = rows[2]
    gate, reached, others_done = threading.Event(), threading.Event(), threading.Event()
    path = f"/v1/customers/{edited.stripe_id}"
    proxy.enqueue(HOLD_RESPONSE(gate, reached, method="POST", path=path))

    def done(count, row):  # from the drain's threads: no database here
        if count == len(rows) - 1:
            others_done.set()

    results: list[DrainResult] = []
    drainer = database_thread(
        lambda: results.append(drain([row.pk for row in rows], streams=4, progress=done))
    )
    wait_on(reached)
    wait_on(others_done)  # the other streams are done with the database
    row = Customer.objects.get(pk=edited.pk)
    row.name = "saved during the drain"
    row.save()
    gate.set()
    drainer.join(20)

    (result,) = results
    assert result.counts == {PushOutcome.UPDATED: 5}
    assert result.pushes == 6, "the edited row twice"
    assert result.left_pending == [] and result.failures == []
    assert quiet.customers[edited.stripe_id]["name"] == "saved during the drain"
    row.refresh_from_db()
    assert row.sync_status == SyncStatus.SYNCED and row.name == "saved during the drain"


def test_a_row_edited_at_every_round_is_left_pending_after_the_last(quiet, monkeypatch):
    (pk,) = backlog(1)
    real = drain_module.push_customer

    def edited_meanwhile(row_pk, **kwargs):  # as if an edit was saved during each push
        result = real(row_pk, **kwargs)
        return type(result)(result.outcome, row_pk, still_pending=True)

    monkeypatch.setattr(drain_module, "push_customer", edited_meanwhile)
    result = drain([pk], streams=2)
    assert result.pushes == ROUNDS and result.left_pending == [pk]
    assert result.counts == {PushOutcome.CREATED: 1}


# -- failures -----------------------------------------------------------------------------------


def test_a_transient_failure_of_one_row_leaves_it_pending_while_the_others_finish(proxy, quiet):
    rows = in_stripe(8)
    bad = rows[3]
    path = f"/v1/customers/{bad.stripe_id}"
    proxy.enqueue(STATUS(503, method="POST", path=path))

    result = drain([row.pk for row in rows], streams=4)

    assert result.counts == {PushOutcome.UPDATED: 7}
    (failure,) = result.failures
    assert (failure.pk, failure.transient) == (bad.pk, True) and "503" in failure.error
    assert result.retrying == [failure]
    bad.refresh_from_db()
    assert bad.sync_status == SyncStatus.PENDING
    assert bad.sync_error.startswith("Stripe did not take the change yet (HTTP 503")
    intent = bad.push_intent
    assert intent is not None and intent["owner"] == "", "recorded, released for any push"
    for row in rows:
        if row.pk != bad.pk:
            assert quiet.customers[row.stripe_id]["name"] == f"edited {row.pk}"
    assert quiet.customers[bad.stripe_id]["name"] != f"edited {bad.pk}"

    again = drain([bad.pk], streams=4, owner_prefix="the-next-sweep")

    assert again.counts == {PushOutcome.UPDATED: 1}
    tries = [r for r in proxy.requests if r.path == path]
    assert len(tries) == 2 and {r.idempotency_key for r in tries} == {intent["key"]}
    assert quiet.customers[bad.stripe_id]["name"] == f"edited {bad.pk}"


def test_a_refused_row_is_failed_and_the_others_are_pushed(quiet):
    good = backlog(3)
    (bad,) = QuerySet.bulk_create(
        Customer.objects.all(), [Customer(email="bad@example.com", metadata={"k[1]": "x"})]
    )
    result = drain([*good, bad.pk], streams=4)
    assert result.counts == {PushOutcome.CREATED: 3, PushOutcome.FAILED: 1}
    (failure,) = result.failures
    assert failure.pk == bad.pk and not failure.transient and "metadata" in failure.error
    assert Customer.objects.get(pk=bad.pk).sync_status == SyncStatus.FAILED


# -- where it runs ------------------------------------------------------------------------------


def test_inside_a_transaction_the_caller_pushes_alone(quiet):
    assert stream_count(8, 100) == 8 and stream_count(8, 3) == 3 and stream_count(8, 0) == 1
    pks = backlog(3)
    with transaction.atomic():
        assert stream_count(8, 3) == 1, "other connections could not see its rows"
        Customer.objects.filter(pk__in=pks).update(name="in the transaction")
        result = drain(pks, streams=8)
    assert (result.streams, result.counts) == (1, {PushOutcome.CREATED: 3})
    assert {c["name"] for c in quiet.customers.values()} == {"in the transaction"}


@pytest.mark.stripe_emulator(latency_ms=30)
def test_push_pending_drains_in_parallel_streams_with_the_usual_output(quiet, monkeypatch):
    threads: set[str] = set()
    real = drain_module.push_customer

    def recording(pk, **kwargs):
        threads.add(threading.current_thread().name)
        return real(pk, **kwargs)

    monkeypatch.setattr(drain_module, "push_customer", recording)
    backlog(12)
    out, err = io.StringIO(), io.StringIO()
    call_command("stripe_customers", "push", "--pending", "--parallel", "4", stdout=out, stderr=err)

    assert "Pushed 12 customers: 12 created." in out.getvalue()
    assert "12/12" in out.getvalue(), "the progress"
    assert err.getvalue() == ""
    assert len(threads) == 4 and all(name.startswith("push-drain-") for name in threads)
    assert quiet.count(*CREATE) == 12
    with pytest.raises(CommandError, match="--parallel must be at least 1"):
        call_command("stripe_customers", "push", "--pending", "--parallel", "0")


@pytest.mark.stripe_emulator(latency_ms=30)
def test_the_inline_sweep_drains_its_batch_in_a_few_streams(quiet, settings, monkeypatch):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_MODE": "inline"}
    pks = backlog(12)
    Customer.objects.filter(pk__in=pks).update(pending_since=timezone.now() - timedelta(hours=1))
    threads: set[str] = set()
    real = drain_module.push_customer

    def recording(pk, **kwargs):
        threads.add(threading.current_thread().name)
        assert kwargs["owner"] == tasks._inline_owner(pk), "takes back its own in-flight pushes"
        return real(pk, **kwargs)

    monkeypatch.setattr(drain_module, "push_customer", recording)
    tasks._inline_sweep(force=True)

    assert len(threads) == tasks.INLINE_STREAMS
    assert quiet.count(*CREATE) == 12
    assert not Customer.objects.filter(pk__in=pks).exclude(sync_status=SyncStatus.SYNCED).exists()


def test_the_celery_sweep_sends_a_row_once_and_not_one_whose_retry_is_queued(quiet, monkeypatch):
    due, retrying = backlog(2)
    long_ago = timezone.now() - timedelta(hours=1)
    Customer.objects.update(pending_since=long_ago)
    Customer.objects.filter(pk=retrying).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    sent: list[int] = []
    monkeypatch.setattr(tasks, "enqueue_push", sent.append)

    assert tasks.push_pending_task(older_than=60) == 1
    assert sent == [due]
    Customer.objects.filter(pk=retrying).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    assert tasks.push_pending_task(older_than=60) == 2  # its retry is due: the sweep sends it
