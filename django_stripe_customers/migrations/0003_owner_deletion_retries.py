# The owner link becomes a foreign key with at most one live customer per user: a deleted
# customer keeps its owner, and the owner can be given a new customer (for_owner).
# next_attempt_at: when a push Stripe did not take yet is tried again (shown while retrying).
# delete_requested_at: a deletion asked here, sent to Stripe by the push (the row is kept).
# push_params: Stripe's write-only parameters, sent once with the next push.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("stripe_customers", "0002_webhook_event_refused"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="push_params",
            field=models.JSONField(
                blank=True,
                editable=False,
                help_text=(
                    "Stripe's write-only parameters (payment_method, source, tax_id_data...) "
                    "sent once with the next push, kept until Stripe took them."
                ),
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="customer",
            name="delete_requested_at",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text="When the customer's deletion was asked here (sent to Stripe by the push).",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="customer",
            name="next_attempt_at",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text=(
                    "When a push Stripe did not take yet (unreachable, 429, 5xx) is tried again."
                ),
                null=True,
            ),
        ),
        migrations.AlterField(
            model_name="customer",
            name="user",
            field=models.ForeignKey(
                blank=True,
                help_text="The user whose customer this is (one live customer per user).",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="stripe_customers",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddConstraint(
            model_name="customer",
            constraint=models.UniqueConstraint(
                condition=models.Q(("deleted", False)),
                fields=("user",),
                name="stripe_customers_one_live_customer_per_user",
                violation_error_message="This user already has a customer.",
            ),
        ),
    ]
