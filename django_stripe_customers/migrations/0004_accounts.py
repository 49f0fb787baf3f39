"""Accounts and modes (``accounts``): every row, run and event names its Stripe account.

Existing rows are the key's own account (null), or ``STRIPE_ACCOUNT``'s when that setting is
set; rows not in Stripe yet take the mode of the configured key.
"""

import django.db.models.functions.comparison
import django_stripe_customers.accounts
from django_stripe_customers.accounts import default_livemode
from django_stripe_customers.conf import get_setting
from django.conf import settings
from django.db import migrations, models


def fill_accounts(apps, schema_editor):
    alias = schema_editor.connection.alias
    stripe_account = get_setting("STRIPE_ACCOUNT")
    for name in ("Customer", "PullRun", "WebhookEvent"):
        if stripe_account:
            apps.get_model("stripe_customers", name).objects.using(alias).update(
                stripe_account=stripe_account
            )
    customers = apps.get_model("stripe_customers", "Customer").objects.using(alias)
    customers.filter(stripe_id__isnull=True).update(livemode=default_livemode())


class Migration(migrations.Migration):
    dependencies = [
        ("stripe_customers", "0003_owner_deletion_retries"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="StripeAccount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("stripe_account", models.CharField(blank=True, max_length=255, null=True)),
                ("livemode", models.BooleanField(default=False)),
                (
                    "connected",
                    models.BooleanField(default=False, help_text="Reached with Stripe-Account."),
                ),
                (
                    "listed_at",
                    models.DateTimeField(
                        blank=True,
                        help_text="When Stripe last listed it among the platform's.",
                        null=True,
                    ),
                ),
                (
                    "deauthorized_at",
                    models.DateTimeField(
                        blank=True, help_text="When it disconnected from the platform.", null=True
                    ),
                ),
            ],
            options={
                "verbose_name": "Stripe account",
                "ordering": ("livemode", "stripe_account"),
            },
        ),
        migrations.RemoveConstraint(
            model_name="customer",
            name="stripe_customers_one_live_customer_per_user",
        ),
        migrations.AddField(
            model_name="customer",
            name="stripe_account",
            field=models.CharField(
                blank=True,
                default=None,
                help_text="Empty: the API key's own account; else the connected account (acct_...).",
                max_length=255,
                null=True,
                verbose_name="Stripe account",
            ),
        ),
        migrations.AddField(
            model_name="pullrun",
            name="livemode",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="pullrun",
            name="stripe_account",
            field=models.CharField(
                blank=True, help_text="Empty: the key's own account.", max_length=255, null=True
            ),
        ),
        migrations.AddField(
            model_name="webhookevent",
            name="stripe_account",
            field=models.CharField(
                blank=True,
                db_index=True,
                help_text="The account the event is of (a Connect event's ``account``); empty: own.",
                max_length=255,
                null=True,
            ),
        ),
        migrations.RunPython(fill_accounts, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="customer",
            name="stripe_account",
            field=models.CharField(
                blank=True,
                default=django_stripe_customers.accounts.default_stripe_account,
                help_text="Empty: the API key's own account; else the connected account (acct_...).",
                max_length=255,
                null=True,
                verbose_name="Stripe account",
            ),
        ),
        migrations.AlterField(
            model_name="customer",
            name="livemode",
            field=models.BooleanField(
                default=django_stripe_customers.accounts.default_livemode,
                help_text="Live or test mode; a new row takes its account's mode (``ACCOUNTS``).",
            ),
        ),
        migrations.AddConstraint(
            model_name="customer",
            constraint=models.UniqueConstraint(
                models.F("user"),
                django.db.models.functions.comparison.Coalesce("stripe_account", models.Value("")),
                models.F("livemode"),
                condition=models.Q(("deleted", False)),
                name="stripe_customers_one_live_customer_per_user",
                violation_error_message="This user already has a customer in this account.",
            ),
        ),
        migrations.AddConstraint(
            model_name="stripeaccount",
            constraint=models.UniqueConstraint(
                django.db.models.functions.comparison.Coalesce("stripe_account", models.Value("")),
                models.F("livemode"),
                name="stripe_customers_one_record_per_account_and_mode",
            ),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(
                fields=["stripe_account", "livemode", "created"],
                name="stripe_cust_account_created",
            ),
        ),
    ]
