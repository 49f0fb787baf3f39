"""``manage.py`` run as a user runs it: a process of its own, settings from a module, a SQLite
file under ``tmp_path`` and Stripe where nothing listens (``tests.support.manage_subprocess``).

What only a real process shows: exit codes, one-line errors without a traceback, options after
the subcommand, and a project without a Celery app.
"""

from __future__ import annotations

import pytest

from tests.support.manage_subprocess import manage

# -- system checks --------------------------------------------------------------------------


@pytest.mark.slow
def test_without_a_key_migrate_works_deploy_check_fails_and_pull_says_one_line(tmp_path):
    migrated = manage(tmp_path, "migrate", "-v0", TEST_NO_API_KEY="1")
    assert migrated.returncode == 0, migrated.stderr
    assert "stripe_customers.W005" in migrated.stderr

    deploy = manage(tmp_path, "check", "--deploy", "--tag", "stripe_customers", TEST_NO_API_KEY="1")
    assert deploy.returncode == 1
    assert "(stripe_customers.E001) No Stripe API key is configured" in deploy.stderr

    pulled = manage(tmp_path, "stripe_customers", "pull", TEST_NO_API_KEY="1")
    assert pulled.returncode == 1
    assert "Traceback" not in pulled.stderr
    last_line = pulled.stderr.strip().splitlines()[-1]
    assert last_line.startswith("CommandError: No Stripe API key: set STRIPE_CUSTOMERS['API_KEY']")


@pytest.mark.slow
def test_a_pull_with_a_bad_api_base_stops_at_the_check_without_a_traceback(tmp_path):
    done = manage(tmp_path, "stripe_customers", "pull", TEST_API_BASE="127.0.0.1:12111")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    expected = "(stripe_customers.E004) STRIPE_CUSTOMERS['API_BASE'] is '127.0.0.1:12111'"
    assert expected in done.stderr


# -- stripe_customers pull, status -------------------------------------------------------


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


@pytest.mark.slow
def test_django_options_work_after_the_subcommand(tmp_path):
    assert manage(tmp_path, "migrate", "-v0").returncode == 0
    done = manage(
        tmp_path,
        "stripe_customers",
        "status",
        "--settings=tests.support.settings_file_db",
        "--no-color",
        "-v",
        "0",
        DJANGO_SETTINGS_MODULE="",  # only the option after the subcommand says which settings
    )
    assert done.returncode == 0, done.stderr
    assert "customers: 0" in done.stdout and "last full pull: never" in done.stdout
    unknown = manage(tmp_path, "stripe_customers", "status", "--bogus")
    assert unknown.returncode != 0 and "unrecognized arguments: --bogus" in unknown.stderr


# -- PUSH_MODE ------------------------------------------------------------------------------


@pytest.mark.standalone
def test_without_a_celery_app_auto_is_inline_and_celery_is_warned(tmp_path):
    shell = "from django_stripe_customers import dispatch; print(dispatch.push_mode())"
    assert manage(tmp_path, "shell", "-c", shell).stdout.strip().splitlines()[-1] == "inline"

    warned = manage(tmp_path, "check", TEST_PUSH_MODE="celery")
    assert "stripe_customers.W008" in warned.stderr + warned.stdout
    quiet = manage(tmp_path, "check")
    assert "W008" not in quiet.stderr + quiet.stdout and "W007" not in quiet.stderr + quiet.stdout
