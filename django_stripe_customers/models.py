"""The local mirror of Stripe Customers: a data definition; sync logic lives in ``sync/``.

Every attribute of Stripe's Customer object is a field under its API name (``schema.py`` is the
list; ``tests/test_models.py`` checks that none is missing). String lengths come from Stripe's
published limits in ``schema.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, models, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from . import schema
from .accounts import default_livemode, default_stripe_account
from .bookkeeping import SAVE_TRACKING_FIELDS, SYNC_COLUMNS, SyncStatus, marked_pending
from .columns import column
from .deletion import delete_rows, erase
from .edits import ONE_SHOT, Edit, check_edit, check_one_shot
from .managers import CustomerManager, CustomerQuerySet
from .metadata_patch import SUPPORTED, MetadataPatch, key_changes
from .records import ID_LENGTH, PullRun, StripeAccount, WebhookEvent
from .saved_fields import (
    LOADED_ATTRIBUTE,
    changed_fields,
    loaded_value,
    note_assignment,
    remember,
    tracked_fields,
)
from .validation import validate_customer_fields

__all__ = [
    "SAVE_TRACKING_FIELDS",
    "SYNC_COLUMNS",
    "Customer",
    "CustomerManager",
    "CustomerQuerySet",
    "PullRun",
    "StripeAccount",
    "SyncStatus",
    "WebhookEvent",
    "marked_pending",
]


class Customer(models.Model):
    """One Stripe Customer, mirrored. ``stripe_id`` is null until the customer exists upstream."""

    stripe_id = models.CharField(
        _("Stripe id"), max_length=ID_LENGTH, unique=True, null=True, blank=True, editable=False
    )
    # The account the customer lives in, with ``livemode`` its mode: null for the own account
    # of the first key of its mode, else its acct_ id (``accounts``). Fixed once in Stripe.
    stripe_account = models.CharField(  # noqa: DJ001 (null: the key's own account)
        _("Stripe account"),
        max_length=ID_LENGTH,
        null=True,
        blank=True,
        default=default_stripe_account,
        help_text=_("Empty: the API key's own account; else the connected account (acct_...)."),
    )

    # Attributes of Stripe's Customer object, under their API names (``schema.MIRRORED``);
    # each column is made from the attribute's role. What is named here besides is particular
    # to that attribute: defaults, indexes, help.
    address = column("address")
    balance = column("balance", default=0, help_text=_("In the currency's smallest unit."))
    business_name = column("business_name")
    cash_balance = column("cash_balance")
    created = column("created", db_index=True)
    currency = column("currency")
    customer_account = column("customer_account")
    default_source = column("default_source")
    delinquent = column("delinquent", default=False)
    description = column("description")
    discount = column("discount")
    email = column("email", db_index=True)
    individual_name = column("individual_name")
    invoice_credit_balance = column("invoice_credit_balance")
    invoice_prefix = column("invoice_prefix")
    invoice_settings = column("invoice_settings")
    livemode = column(
        "livemode",
        default=default_livemode,
        help_text=_("Live or test mode; a new row takes its account's mode (``ACCOUNTS``)."),
    )
    metadata = column("metadata", default=dict)
    name = column("name")
    next_invoice_sequence = column("next_invoice_sequence")
    phone = column("phone")
    preferred_locales = column("preferred_locales", default=list)
    shipping = column("shipping")
    sources = column("sources")
    subscriptions = column("subscriptions")
    tax = column("tax")
    tax_exempt = column("tax_exempt")
    tax_ids = column("tax_ids")
    test_clock = column("test_clock")
    deleted = models.BooleanField(
        default=False, db_index=True, help_text=_("Deleted in Stripe; the row is kept.")
    )

    # Sync bookkeeping.
    stripe_data = models.JSONField(
        default=dict, blank=True, editable=False, help_text=_("The last object seen from Stripe.")
    )
    sync_status = models.CharField(
        max_length=16, choices=SyncStatus.choices, default=SyncStatus.PENDING, db_index=True
    )
    synced_at = models.DateTimeField(null=True, blank=True, editable=False)
    sync_error = models.TextField(blank=True, default="", editable=False)
    local_version = models.PositiveBigIntegerField(
        default=0, editable=False, help_text=_("Bumped by every local save.")
    )
    pushed_version = models.PositiveBigIntegerField(
        default=0, editable=False, help_text=_("The local version Stripe has acknowledged.")
    )
    pending_since = models.DateTimeField(null=True, blank=True, editable=False)
    push_intent = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text=_("The request being sent to Stripe (resent as is, same key, until answered)."),
    )
    delete_requested_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text=_("When the customer's deletion was asked here (sent to Stripe by the push)."),
    )
    push_params = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "Stripe's write-only parameters (payment_method, source, tax_id_data...) sent once "
            "with the next push, kept until Stripe took them."
        ),
    )
    next_attempt_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text=_("When a push Stripe did not take yet (unreachable, 429, 5xx) is tried again."),
    )
    remote_updated_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text=_("Time of the newest Stripe data applied (refuses older events)."),
    )

    # The owner: at most one live customer per user (``Customer.objects.for_owner(user)``);
    # a deleted customer keeps its link, so a user may have had several.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="stripe_customers",
        help_text=_("The user whose customer this is (one live customer per user)."),
    )

    objects = CustomerManager()

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ("-created", "-id")
        # A pull pages through one account's rows by ``created`` (its deletion check, per
        # page): one index serves the account, the mode and the range.
        indexes = [
            models.Index(
                fields=["stripe_account", "livemode", "created"],
                name="stripe_cust_account_created",
            )
        ]
        constraints = [
            models.UniqueConstraint(
                F("user"),
                Coalesce("stripe_account", Value("")),
                F("livemode"),
                condition=Q(deleted=False),
                name="stripe_customers_one_live_customer_per_user",
                violation_error_message=_("This user already has a customer in this account."),
            )
        ]

    def __setattr__(self, name: str, value: Any) -> None:
        if name in USER_ATTNAMES and LOADED_ATTRIBUTE in self.__dict__:
            note_assignment(self, name)  # after loading only: __init__ sets every field
        object.__setattr__(self, name, value)

    def __str__(self) -> str:
        label = self.email or self.name or (f"customer #{self.pk}" if self.pk else "new customer")
        return f"{label} ({self.stripe_id})" if self.stripe_id else label

    def save(
        self, *args: Any, stripe_params: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Insert every column, or update the ones changed since the row was loaded.

        The sync columns (``SYNC_COLUMNS``) are never written by an update: the push and the
        pull write them. Either way the row is marked pending, so the change is pushed.

        ``stripe_params``: Stripe's write-only parameters (``edits.ONE_SHOT``: a
        ``payment_method`` to attach, ``tax_id_data``, ...), checked now and sent once with the
        next push, in its request and under its Idempotency-Key, kept until Stripe took them.
        """
        if stripe_params:
            with transaction.atomic(using=kwargs.get("using") or self._state.db):
                self._add_stripe_params(stripe_params)
                self.save(*args, **kwargs)
            return
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            if isinstance(update_fields, str):
                update_fields = [update_fields]
            refused = sorted(set(update_fields) & (SYNC_COLUMNS - set(SAVE_TRACKING_FIELDS)))
            if refused:
                raise ValueError(
                    f"save(update_fields=...) cannot write {', '.join(refused)}: the sync "
                    "with Stripe writes these columns, never a save()."
                )
            kwargs["update_fields"] = {*update_fields, *SAVE_TRACKING_FIELDS}
        elif not self._state.adding:
            changed = changed_fields(self, USER_FIELDS)
            if changed is not None:
                kwargs["update_fields"] = {*changed, *SAVE_TRACKING_FIELDS}
        if not self._state.adding:
            self._refuse_moving(kwargs.get("update_fields"))
        if self.deleted and not self._state.adding:
            self._refuse_edits_of_deleted(kwargs.get("update_fields"))
        self._check_as_assigned(kwargs.get("update_fields"))
        patched = self._patch_metadata(kwargs.get("update_fields"), kwargs.get("using"))
        super().save(*args, **kwargs)
        if patched:  # the column as the database merged it (others' keys included)
            super().refresh_from_db(fields=["metadata"])
        written = kwargs.get("update_fields")
        fields = USER_FIELDS
        remember(self, fields if written is None else [f for f in fields if f.name in written])

    def _check_as_assigned(self, written: Any) -> None:
        """The attributes this save writes, checked as they were assigned, before Django and
        the database convert them (``1.5`` would be stored, and sent, as ``1``; ``["x"]`` as
        ``"['x']"``): a ``ValidationError`` naming each field, and nothing written."""
        names = schema.PUSHABLE if written is None else [n for n in schema.PUSHABLE if n in written]
        validate_customer_fields(
            {name: self.__dict__[name] for name in names if name in self.__dict__}
        )

    def _patch_metadata(self, written: Any, using: str | None) -> bool:
        """When this update writes ``metadata``, write only the keys this instance changed
        since it was loaded (``metadata_patch``), so keys another editor set meanwhile stay."""
        if self._state.adding or written is None or "metadata" not in written:
            return False
        vendor = connections[using or self._state.db or "default"].vendor
        if vendor not in SUPPORTED or not isinstance(self.metadata, dict):
            return False
        changes, removed = key_changes(loaded_value(self, "metadata"), self.metadata)
        self.__dict__["metadata"] = MetadataPatch("metadata", changes, removed)
        return True

    def _add_stripe_params(self, params: Mapping[str, Any]) -> None:
        """Check ``params`` against the request they will ride with, and add them to the row's
        (an insert writes them; an update of the locked row, before this save's own)."""
        if self._state.adding:
            check_one_shot(params, stripe_id=self.stripe_id)
            self.push_params = {**(self.push_params or {}), **params}
            return
        rows = type(self)._base_manager.select_for_update().filter(pk=self.pk)
        stripe_id, waiting, deleted = rows.values_list("stripe_id", "push_params", "deleted").get()
        if deleted:
            self._refuse_edits_of_deleted(params)
        check_one_shot(params, stripe_id=stripe_id)
        models.QuerySet.update(rows, push_params={**(waiting or {}), **params})

    def _refuse_moving(self, written: Any) -> None:
        """A customer in Stripe stays in its account and mode: Stripe cannot move it, so a
        save that would (``stripe_account``, ``livemode``) is refused, naming the field."""
        moved = [
            name
            for name in ACCOUNT_FIELDS
            if (written is None or name in written)
            and getattr(self, name) != loaded_value(self, name, getattr(self, name))
        ]
        in_stripe = type(self)._base_manager.filter(pk=self.pk, stripe_id__isnull=False)
        if moved and in_stripe.exists():
            message = _(
                "%(field)s: the customer exists in Stripe in its account and mode; Stripe "
                "cannot move it to another"
            )
            raise ValidationError(
                {
                    name: ValidationError(message, code="account", params={"field": name})
                    for name in moved
                }
            )

    def _refuse_edits_of_deleted(self, written: Any) -> None:
        """Stripe takes no edit of a deleted customer: one rule for every door (the admin
        shows it read-only, the API answers 409). Its owner link may still change."""
        edited = sorted((ONE_SHOT_NAMES | set(schema.PUSHABLE)) & set(written or schema.PUSHABLE))
        if edited:
            message = _("%(field)s: the customer was deleted in Stripe; it cannot be edited")
            raise ValidationError(
                {
                    name: ValidationError(message, code="deleted", params={"field": name})
                    for name in edited
                }
            )

    def delete(self, using: Any = None, keep_parents: bool = False) -> tuple[int, dict[str, int]]:
        """Delete the customer in Stripe (through the outbox) and keep the row as a tombstone;
        a row that never reached Stripe, or a tombstone, is removed (``deletion``)."""
        if self.pk is None:
            raise ValueError(f"{self!r} cannot be deleted: it is not saved.")
        rows = type(self)._default_manager.db_manager(using).filter(pk=self.pk)
        done = delete_rows(rows)
        if done.removed:
            self.pk = None
        else:
            self.deleted = True
        return done.as_django_result(self._meta.label)

    def erase(self) -> None:
        """Scrub the personal data of this customer deleted in Stripe (``deletion.erase``)."""
        erase(type(self)._default_manager.filter(pk=self.pk))
        self.refresh_from_db()

    @classmethod
    def from_db(cls, *args: Any, **kwargs: Any) -> Customer:
        instance = super().from_db(*args, **kwargs)
        remember(instance, USER_FIELDS, replace=True)
        return instance

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        super().refresh_from_db(*args, **kwargs)
        names = kwargs.get("fields", args[1] if len(args) > 1 else None)
        fields = USER_FIELDS
        if names is not None:
            fields = [f for f in fields if f.name in names or f.attname in names]
        remember(self, fields)

    def clean_fields(self, exclude: Any = None) -> None:
        """Django's checks of the columns ``clean`` does not judge (Stripe's attributes are
        checked there, as they are, without Django's coercion: ``1.5`` is not ``1``)."""
        super().clean_fields(exclude=[*(exclude or ()), *schema.PUSHABLE])

    def clean(self) -> None:
        """Whether Stripe can take this row's edits: every value that would be sent checked
        against Stripe's rules, and changes Stripe cannot express refused (``full_clean``,
        so the admin form, runs this)."""
        self.requested_edit()

    def requested_edit(self) -> Edit:
        """The request to Stripe the row's edits call for (``edits.check_edit``); raises
        ``ValidationError`` naming each field Stripe would refuse."""
        return check_edit(
            {name: getattr(self, name) for name in schema.PUSHABLE},
            self.stripe_data,
            stripe_id=self.stripe_id,
            defaults=PUSHABLE_DEFAULTS,
        )

    @property
    def dashboard_url(self) -> str | None:
        """This customer in Stripe's dashboard (its account's, test or live from ``livemode``),
        if it exists."""
        if not self.stripe_id:
            return None
        account = f"{self.stripe_account}/" if self.stripe_account else ""
        mode = "" if self.livemode else "test/"
        return f"https://dashboard.stripe.com/{account}{mode}customers/{self.stripe_id}"


#: Where a row lives: set when it is made, then fixed (``_refuse_moving``).
ACCOUNT_FIELDS: tuple[str, ...] = ("stripe_account", "livemode")

#: Column defaults of the pushable attributes: not sent when a customer is created.
PUSHABLE_DEFAULTS: dict[str, Any] = {
    field.name: field.get_default()
    for field in Customer._meta.concrete_fields
    if field.name in schema.PUSHABLE
}

#: Write-only parameters of either request (``save(stripe_params=...)``).
ONE_SHOT_NAMES: frozenset[str] = frozenset(ONE_SHOT["create"]) | frozenset(ONE_SHOT["update"])

#: The columns a ``save()`` of an existing row may write: all but ``SYNC_COLUMNS``.
USER_FIELDS: list[models.Field[Any, Any]] = tracked_fields(Customer, SYNC_COLUMNS)
USER_ATTNAMES: frozenset[str] = frozenset(field.attname for field in USER_FIELDS)
