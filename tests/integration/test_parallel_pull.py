"""A whole-account pull in parallel streams (``--parallel``) or Celery partitions gives exactly
the rows of a single pass: the same customers, the same data, the same deletions found."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from django_stripe_customers.clients import clear_client_cache, get_client
from django_stripe_customers.models import Customer, PullRun
from django_stripe_customers.stripe import AuthenticationError
from django_stripe_customers.stripe.responses import PageData
from django_stripe_customers.sync import pages, pull_all
from django_stripe_customers.sync.runs import SLICES_PER_PARTITION, slices_requested
from django_stripe_customers.sync.slicing import (
    MIN_SPLIT_PAGES,
    PAGE_SIZE,
    UNKNOWN_SLICES,
    WAIT,
    Board,
    Slice,
)
from django_stripe_customers.sync.streams import WRITERS, writer_count
from tests.support.faultproxy import AFTER, STATUS
from tests.support.stripe_servers import settings_through_proxy

# Transactional: the pull's writer threads have connections of their own, and its slices are
# handed out once the run's row commits.
pytestmark = pytest.mark.django_db(transaction=True)

DAY = 86_400


def mirror_state():
    """What a pull decides: each row's Stripe data and whether it is deleted."""
    return {
        stripe_id: (data, deleted)
        for stripe_id, data, deleted in Customer.objects.values_list(
            "stripe_id", "stripe_data", "deleted"
        )
    }


def stripe_truth(emulator):
    return {cid: c for cid, c in emulator.customers.items() if not c.get("deleted")}


def change_upstream(emulator, ids):
    """Deletions, updates, and customers added in ranges already mirrored (old created)."""
    client = get_client()
    for stripe_id in ids[5::97]:
        client.customers.delete(stripe_id)
    for stripe_id in ids[3::41]:
        client.customers.update(stripe_id, {"name": "Changed upstream"})
    emulator.clock.advance(5)
    return ids[5::97]


@pytest.mark.parametrize("how", ["parallel", "partitions"])
def test_the_rows_are_those_of_a_single_pass(stripe_settings, how):
    emulator = stripe_settings
    ids = emulator.seed(1234, spacing=90)
    pull_all()
    deleted = change_upstream(emulator, ids)
    before = {c.pk: c.stripe_id for c in Customer.objects.all()}

    result = pull_all(parallel=4) if how == "parallel" else pull_all(partitions=3)

    after = mirror_state()
    truth = stripe_truth(emulator)
    assert {cid for cid, (_, gone) in after.items() if not gone} == set(truth)
    assert {cid for cid, (_, gone) in after.items() if gone} == set(deleted)
    for stripe_id, customer in truth.items():
        assert after[stripe_id][0]["name"] == customer["name"]
    assert result.marked_deleted == len(deleted)
    assert {c.pk: c.stripe_id for c in Customer.objects.all()} == before, "no row replaced"

    single = pull_all()  # a single pass over the result finds nothing left to do
    assert (single.created, single.updated, single.marked_deleted) == (0, 0, 0)


def test_a_first_pull_in_streams_writes_every_customer_once(stripe_settings):
    emulator = stripe_settings
    emulator.seed(987, spacing=30)

    result = pull_all(parallel=8)

    assert result.created == Customer.objects.count() == 987
    assert result.unchanged == 0, "no customer was listed twice"
    assert PullRun.objects.get().status == "succeeded"


def test_skewed_created_times_are_shared_out(stripe_settings):
    emulator = stripe_settings
    emulator.seed(40, spacing=30 * DAY)  # a few, years apart
    emulator.seed(900, spacing=1)  # then many in a quarter of an hour

    result = pull_all(parallel=4)

    assert result.created == Customer.objects.count() == 940
    pages = -(-940 // PAGE_SIZE)
    assert result.requests <= pages + 12, "slice boundaries cost a few partial pages only"


@pytest.mark.stripe_emulator(latency_ms=20)
def test_customers_created_during_the_run_do_not_disturb_it(stripe_settings):
    emulator = stripe_settings
    ids = emulator.seed(600, spacing=60)
    done = threading.Event()

    def create_meanwhile():
        client = get_client()
        while not done.is_set():
            client.customers.create({"email": "meanwhile@example.com"})
            time.sleep(0.01)

    creator = threading.Thread(target=create_meanwhile)
    creator.start()
    try:
        pull_all(parallel=4)
    finally:
        done.set()
        creator.join()

    assert set(ids) <= set(Customer.objects.values_list("stripe_id", flat=True))
    pull_all(parallel=4)
    assert set(stripe_truth(emulator)) == set(Customer.objects.values_list("stripe_id", flat=True))


def test_a_stream_that_fails_stops_the_pull_and_the_run_records_what_was_written(
    stripe_settings, settings
):
    stripe_settings.seed(700, spacing=60)
    with settings_through_proxy(settings, stripe_settings.url, MAX_RETRIES=0) as proxy:
        proxy.enqueue(AFTER(3, STATUS(401, method="GET", path="/v1/customers")))
        with pytest.raises(AuthenticationError):
            pull_all(parallel=4)
    clear_client_cache()

    run = PullRun.objects.get()
    assert run.status == "failed" and run.finished_at is not None
    assert run.created == Customer.objects.count() > 0
    assert not [t for t in threading.enumerate() if t.name.startswith("pull-stream")]


def test_on_postgresql_two_writers_apply_the_pages_and_on_sqlite_the_caller_alone(
    stripe_settings,
):
    stripe_settings.seed(800, spacing=60)
    writers = set()

    result = pull_all(parallel=8, progress=lambda _: writers.add(threading.current_thread().name))

    assert result.created == Customer.objects.count() == 800
    if connection.vendor == "sqlite":  # one writer at a time: the calling thread
        assert writers == {threading.current_thread().name}
    else:  # every page of a slice to one writer, each on its own connection
        assert writers == {f"pull-writer-{n}" for n in range(WRITERS)}
    with transaction.atomic():  # other connections could not join the caller's transaction
        assert writer_count() == 1


def test_a_writer_that_fails_stops_the_pull_and_the_run_records_what_was_written(
    stripe_settings, monkeypatch
):
    stripe_settings.seed(900, spacing=60)
    # A mock, as the database refusing one page while it takes the others cannot be provoked
    # for real: the fourth page applied raises, in whichever writer gets it.
    upsert_page = pages._upsert_page
    applied = itertools.count(1)

    def fail_on_the_fourth(page, result, account):
        if next(applied) == 4:
            raise DatabaseError("the database refused this page")
        return upsert_page(page, result, account)

    monkeypatch.setattr(pages, "_upsert_page", fail_on_the_fourth)
    with pytest.raises(DatabaseError, match="refused this page"):
        pull_all(parallel=4)

    run = PullRun.objects.get()
    assert run.status == "failed" and "refused this page" in run.errors[0]
    assert run.created == Customer.objects.count() > 0, "the counts of every writer"
    assert not [t for t in threading.enumerate() if t.name.startswith("pull-")]


def test_the_rest_of_a_partitioned_range_is_pulled_in_streams(stripe_settings):
    emulator = stripe_settings
    emulator.seed(5000, spacing=60)  # far more than the first slices (7 of ~5 pages) hold
    requested = []

    def capture(sender, run, slices, **kwargs):
        requested.extend(slices)

    slices_requested.connect(capture, sender=PullRun, weak=False, dispatch_uid="test-capture")
    try:
        result = pull_all(partitions=2)
    finally:
        slices_requested.disconnect(sender=PullRun, dispatch_uid="test-capture")

    assert result.created == Customer.objects.count() == 5000
    assert [streams for _, _, streams in requested] == [1] * 7 + [SLICES_PER_PARTITION * 2]
    bounds = [(low, high) for low, high, _ in requested]
    assert all(low < high for low, high in bounds), "every slice a real range"
    assert all(a[0] == b[1] for a, b in itertools.pairwise(bounds)), "adjacent, back in time"
    rest_low, rest_high, _ = requested[-1]
    first_pages = [
        r
        for r in emulator.requests
        if r.path == "/v1/customers"
        and "starting_after" not in r.params
        and rest_low <= int(r.params["created"]["gte"])
        and int(r.params["created"]["lt"]) <= rest_high
    ]
    assert len(first_pages) > 5, "the rest was cut into slices of its own, pulled in streams"


def empty_first_pages(emulator, logged):
    """List requests of the pull that began a slice holding no customer (an empty page)."""
    created = [c["created"] for c in emulator.customers.values()]
    empty = 0
    for r in logged:
        if r.path != "/v1/customers" or "starting_after" in r.params:
            continue  # a next page is asked for only when the last said there is more
        low, high = int(r.params["created"]["gte"]), int(r.params["created"]["lt"])
        empty += not any(low <= c < high for c in created)
    return empty


@pytest.mark.stripe_emulator(latency_ms=30)
def test_a_walk_past_the_oldest_customer_costs_a_few_empty_pages_whatever_the_streams(
    stripe_settings,
):
    """Seen in the pull benchmark (N = 10,000, 16 streams): 9 of 113 requests were empty
    pages, slices cut below the oldest customer by streams that ran out at the same time."""
    emulator = stripe_settings
    emulator.seed(2_000, spacing=60)  # 20 pages: 16 streams want more slices than there are
    before = len(emulator.requests)

    result = pull_all(parallel=16)

    assert result.created == Customer.objects.count() == 2_000
    # Those cut before the first one came back, and the rest of the range, asked once.
    assert empty_first_pages(emulator, emulator.requests[before:]) <= UNKNOWN_SLICES + 1
    assert result.requests <= 20 + UNKNOWN_SLICES + 1 + 6, "and a few partial pages"


def test_the_command_pulls_in_streams(stripe_settings, capsys):
    stripe_settings.seed(321, spacing=60)
    call_command("stripe_customers", "pull", "--parallel", "4")
    assert "Pulled 321 customers: 321 created" in capsys.readouterr().out
    assert Customer.objects.count() == 321


# -- the board the streams share -----------------------------------------------------------------


def page(*created, more=True):
    data = PageData({"id": f"cus_{c}", "created": c} for c in created)
    data.has_more = more
    return data


def test_new_slices_hold_about_a_few_pages_at_the_density_seen():
    board = Board(low=0, frontier=100_000, density=1.0)  # a customer a second
    first = board.take()
    assert (first.low, first.high) == (100_000 - 500, 100_000)
    assert board.take().high == first.low


def test_after_an_empty_slice_the_next_takes_everything_left():
    board = Board(low=0, frontier=100_000, density=1.0)
    empty = board.take()
    board.finish(empty)
    rest = board.take()
    assert (rest.low, rest.high) == (0, empty.low)
    assert board.take() is WAIT, "the rest may be split once its first page is back"
    board.finish(rest)
    assert board.take() is None, "nothing left, and nothing worth splitting"


def test_a_slice_is_split_only_once_its_density_says_it_is_worth_it():
    board = Board(low=0, frontier=10_000, density=1e6)
    board._everything_left = True
    whole = board.take()  # [0, 10000): the one slice
    assert board.take() is WAIT, "its density is not known yet: ask again, don't end"
    board.advance(whole, page(*range(9999, 9899, -1)))  # 100 customers in 100 s
    older = board.take()
    assert older is not None and older.high == whole.low
    assert older.low == 0 and whole.low == 9900 // 2 + 1, "the older half of what is left"
    assert whole.expected_left() >= 0


def test_a_page_reaching_below_a_split_slice_is_cut_and_ends_the_slice():
    board = Board(low=0, frontier=0, density=1.0)
    piece = Slice(1, 500, 1000)
    kept = board.advance(piece, page(700, 600, 499, 400))
    assert [obj["created"] for obj in kept] == [700, 600]
    assert piece.done and piece.cursor == 600


def test_small_slices_are_not_split():
    board = Board(low=0, frontier=0, density=1.0)
    board.slices = [Slice(1, 0, 1000, cursor=900, fetched=10)]  # ~90 customers left
    assert board.slices[0].expected_left() < MIN_SPLIT_PAGES * PAGE_SIZE
    assert board.take() is None


def test_after_a_burst_of_new_customers_the_rest_is_still_shared_between_streams():
    """Reported by the reconcile benchmark: 100 customers made in a few seconds on top of
    100,000 older ones made the newest page promise a density the older range lacks; the next
    slices came back empty, the one after took everything left, and every other stream ended
    (``take`` said None before that slice's first page) so one stream pulled it all."""
    board = Board(low=0, frontier=1_000_000, density=50.0)  # the burst's density
    first, second = board.take(), board.take()
    board.finish(first)  # empty: the burst was all on the newest page
    rest = board.take()
    assert (rest.low, rest.high) == (0, second.low)
    assert board.take() is WAIT, "the other streams wait for the rest's first page"
    board.advance(rest, page(*range(rest.high - 1, rest.high - 10_001, -100)))  # 100 in 10,000 s
    older = board.take()
    assert older is not None and older is not WAIT and older.high == rest.low


def test_streams_wait_while_a_few_slices_have_not_told_where_the_customers_end():
    board = Board(low=0, frontier=100_000, density=1.0)
    cut = [board.take() for _ in range(UNKNOWN_SLICES)]
    assert board.take() is WAIT, "no first page back: the oldest customer may be above them"
    board.advance(cut[0], page(*range(cut[0].high - 1, cut[0].high - 101, -1)))
    nxt = board.take()
    assert nxt is not None and nxt is not WAIT and nxt.high == cut[-1].low


def test_a_slice_whose_customers_end_well_above_its_bound_sends_the_next_for_all_that_is_left():
    board = Board(low=0, frontier=100_000, density=1.0)
    full, second = board.take(), board.take()  # [99,500, 100,000), [99,000, 99,500)
    board.advance(full, page(*range(full.high - 1, full.low - 1, -1), more=False))
    board.finish(full)  # its customers went down to its bound: not thinned out
    third = board.take()
    assert (third.low, third.high) == (second.low - 500, second.low), "a slice as before"

    board = Board(low=0, frontier=100_000, density=1.0)
    piece = board.take()
    board.advance(piece, page(*range(99_999, 99_899, -1), more=False))  # ends 400 s above
    board.finish(piece)
    rest = board.take()
    assert (rest.low, rest.high) == (0, piece.low), "the rest, in one slice"
