"""``manage.py stripe_customers``: output and exit codes, against the Stripe emulator."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.test import TestCase

from django_stripe_customers.clients import get_client
from django_stripe_customers.management.commands.stripe_customers import Command
from django_stripe_customers.models import Customer, PullRun
from tests.support.customers import local_only
from tests.support.faultproxy import AFTER, REFUSE, STATUS
from tests.support.stripe_servers import settings_through_proxy


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("stripe_customers", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_pull_all_prints_a_summary(stripe_settings):
    stripe_settings.seed(130)
    out, err = run("pull")
    assert "Pulled 130 customers: 130 created, 0 updated, 0 unchanged, 0 marked deleted" in out
    assert "2 requests (2 pages)" in out
    assert err == ""
    assert Customer.objects.count() == 130


@pytest.mark.django_db
def test_pull_since_limits_by_created(stripe_settings):
    stripe_settings.seed(10, spacing=3600)
    created = sorted(c["created"] for c in stripe_settings.customers.values())
    out, _ = run("pull", "--since", str(created[6]))
    assert "Pulled 4 customers" in out
    assert PullRun.objects.latest().created_gte == created[6]


@pytest.mark.django_db
def test_pull_dry_run_writes_nothing(stripe_settings):
    stripe_settings.seed(5)
    out, _ = run("pull", "--dry-run")
    assert "Dry run, 5 customers seen: would create 5, update 0, mark deleted 0" in out
    assert "dry run: nothing was written" in out
    assert Customer.objects.count() == 0
    assert PullRun.objects.count() == 0


@pytest.mark.django_db
def test_pull_dry_run_of_ids_says_what_would_happen(stripe_settings):
    (stripe_id,) = stripe_settings.seed(1)
    out, _ = run("pull", "--dry-run", stripe_id)
    assert f"{stripe_id}: would be pulled" in out
    assert Customer.objects.count() == 0


@pytest.mark.django_db
def test_pull_ids_reports_each_and_fails_on_404(stripe_settings):
    remote = get_client().customers.create({"email": "one@example.com"})
    with pytest.raises(CommandError, match="1 of 2 customers could not be pulled"):
        run("pull", remote["id"], "cus_DoesNotExist00")
    assert Customer.objects.get(stripe_id=remote["id"]).email == "one@example.com"


@pytest.mark.django_db
def test_status_counts_and_last_full_pull(stripe_settings):
    out, _ = run("status")
    assert "customers: 0" in out and "last full pull: never" in out
    stripe_settings.seed(3)
    run("pull")
    out, _ = run("status")
    assert "customers: 3" in out
    assert "synced   3" in out
    assert "last full pull: " in out and "(succeeded, 3 customers, 0 errors)" in out


@pytest.mark.django_db
def test_a_pull_that_fails_half_way_says_what_it_wrote_and_status_shows_it(
    stripe_settings, settings
):
    stripe_settings.seed(250)
    err = io.StringIO()
    with settings_through_proxy(settings, stripe_settings.url, MAX_RETRIES=0) as proxy:
        proxy.enqueue(AFTER(2, REFUSE(method="GET", path="/v1/customers")))
        with pytest.raises(CommandError, match="could not connect"):
            call_command("stripe_customers", "pull", stdout=io.StringIO(), stderr=err)
    assert "Stopped after 200 customers (200 new, 0 updated) in 2 pages" in err.getvalue()
    assert Customer.objects.count() == 200
    out, _ = run("status")
    assert "customers: 200" in out
    assert "(failed, 200 customers, 1 error)" in out


@pytest.mark.django_db
def test_bad_arguments_are_clear_errors(stripe_settings):
    with pytest.raises(CommandError, match="--partitions must be at least 1"):
        run("pull", "--partitions", "0")
    with pytest.raises(CommandError, match="cannot use --partitions"):
        run("pull", "--dry-run", "--partitions", "2")
    with pytest.raises(CommandError, match="not a date"):
        run("pull", "--since", "yesterday-ish")


@pytest.mark.django_db
def test_push_pending_pushes_every_pending_row(stripe_settings, settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    for n in range(3):
        Customer.objects.create(email=f"p{n}@example.com")
    out, err = run("push", "--pending")
    assert err == ""
    assert "Pushed 3 customers: 3 created." in out
    assert len(stripe_settings.customers) == 3
    assert not Customer.objects.filter(sync_status="pending").exists()


@pytest.mark.django_db
def test_push_by_stripe_id_or_pk_and_failures_exit_1(stripe_settings, settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    first = Customer.objects.create(email="one@example.com")
    run("push", str(first.pk))
    first.refresh_from_db()
    first.name = "Renamed"
    first.save()
    # written around validation (raw SQL alike): save() would refuse the key
    bad = local_only(email="two@example.com", metadata={"k[1]": "bracket"})
    Customer.objects.mark_pending(Customer.objects.filter(pk=bad.pk))

    with pytest.raises(CommandError, match="1 of 2 pushes failed"):
        run("push", first.stripe_id, str(bad.pk))

    assert stripe_settings.customers[first.stripe_id]["name"] == "Renamed"
    bad.refresh_from_db()
    assert bad.sync_status == "failed" and "metadata" in bad.sync_error
    with pytest.raises(CommandError, match="give either --pending"):
        run("push")
    with pytest.raises(CommandError, match="no local customer cus_Nope"):
        run("push", "cus_Nope")


@pytest.mark.django_db
def test_counts_of_one_are_singular(stripe_settings, settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    customer = Customer.objects.create(email="one@example.com")
    out, _ = run("push", str(customer.pk))
    assert "Pushed 1 customer: 1 created." in out
    out, _ = run("pull")
    assert "1 customer (0 new, 1 updated) in 1 page" in out, "the progress line"
    assert "Pulled 1 customer: 0 created, 1 updated, 0 unchanged" in out
    assert "1 request (1 page)" in out
    out, _ = run("status")
    assert "(succeeded, 1 customer, 0 errors)" in out
    # written around validation (raw SQL alike): save() would refuse the key
    bad = local_only(email="two@example.com", metadata={"k[1]": "bracket"})
    Customer.objects.mark_pending(Customer.objects.filter(pk=bad.pk))
    with pytest.raises(CommandError, match=r"^1 of 1 push failed$"):
        run("push", str(bad.pk))


@pytest.mark.django_db
def test_replay_failed_with_nothing_to_do_says_so(stripe_settings):
    out, err = run("replay", "--failed")
    assert out == "No failed events to replay.\n"
    assert err == ""


@pytest.mark.parametrize(
    ("subcommand", "shown"),
    [
        ("pull", "cus_... ids to pull one by one (default: every customer, paged)"),
        ("push", "cus_... ids or local pks"),
        ("replay", "evt_... ids of stored events"),
    ],
)
def test_positional_ids_have_help_text(subcommand, shown):
    out = io.StringIO()
    parser = Command().create_parser("manage.py", "stripe_customers")
    commands = next(a for a in parser._actions if a.dest == "subcommand")
    commands.choices[subcommand].print_help(out)
    assert shown in " ".join(out.getvalue().split())


@pytest.mark.django_db
def test_push_of_a_failed_row_sends_its_unsent_edit(stripe_settings, settings):
    """Reported (issue 20): "Pushed 1 customer: 1 unchanged." and nothing sent."""
    customer = Customer.objects.create(email="failed@example.com")
    with settings_through_proxy(settings, stripe_settings.url) as proxy:
        proxy.enqueue(STATUS(400, method="POST"))
        with TestCase.captureOnCommitCallbacks(execute=True):
            customer.name = "Unsent"
            customer.save()
        customer.refresh_from_db()
        assert customer.sync_status == "failed"

        out, _ = run("push", str(customer.pk))
    customer.refresh_from_db()

    assert f"customer {customer.pk} ({customer.stripe_id}): created in Stripe" in out
    assert stripe_settings.customers[customer.stripe_id]["name"] == "Unsent"
    assert Customer.objects.get(pk=customer.pk).sync_status == "synced"
