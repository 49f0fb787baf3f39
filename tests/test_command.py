"""``manage.py stripe_customers``: output and exit codes, against the Stripe emulator."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from django_stripe_customers.models import Customer, PullRun
from django_stripe_customers.stripe.factory import get_client
from tests.manage_subprocess import manage


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
    assert "5 created" in out and "dry run: nothing was written" in out
    assert Customer.objects.count() == 0
    assert PullRun.objects.count() == 0


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
def test_bad_arguments_are_clear_errors(stripe_settings):
    with pytest.raises(CommandError, match="--partitions must be at least 1"):
        run("pull", "--partitions", "0")
    with pytest.raises(CommandError, match="cannot use --partitions"):
        run("pull", "--dry-run", "--partitions", "2")
    with pytest.raises(CommandError, match="not a date"):
        run("pull", "--since", "yesterday-ish")


@pytest.mark.slow
def test_unreachable_stripe_is_one_line_and_exit_1_without_traceback(tmp_path):
    assert manage(tmp_path, "migrate", "-v0").returncode == 0
    done = manage(tmp_path, "stripe_customers", "pull", STRIPE_TEST_MAX_RETRIES="0")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "could not connect" in done.stderr
    assert "sk_test" not in done.stderr + done.stdout


@pytest.mark.slow
def test_missing_key_is_one_line_and_exit_1(tmp_path):
    assert manage(tmp_path, "migrate", "-v0").returncode == 0
    done = manage(tmp_path, "stripe_customers", "pull", TEST_NO_API_KEY="1")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "No Stripe API key" in done.stderr


@pytest.mark.django_db(transaction=True)
def test_push_pending_pushes_every_pending_row(stripe_settings, settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    for n in range(3):
        Customer.objects.create(email=f"p{n}@example.com")
    out, err = run("push", "--pending")
    assert err == ""
    assert "Pushed 3 customers: 3 created." in out
    assert len(stripe_settings.customers) == 3
    assert not Customer.objects.filter(sync_status="pending").exists()


@pytest.mark.django_db(transaction=True)
def test_push_by_stripe_id_or_pk_and_failures_exit_1(stripe_settings, settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    first = Customer.objects.create(email="one@example.com")
    run("push", str(first.pk))
    first.refresh_from_db()
    first.name = "Renamed"
    first.save()
    bad = Customer.objects.create(email="two@example.com", metadata={"k[1]": "bracket"})

    with pytest.raises(CommandError, match="1 of 2 pushes failed"):
        run("push", first.stripe_id, str(bad.pk))

    assert stripe_settings.customers[first.stripe_id]["name"] == "Renamed"
    bad.refresh_from_db()
    assert bad.sync_status == "failed" and "metadata" in bad.sync_error
    with pytest.raises(CommandError, match="give either --pending"):
        run("push")
    with pytest.raises(CommandError, match="no local customer cus_Nope"):
        run("push", "cus_Nope")
