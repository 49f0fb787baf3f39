"""``CustomerSerializer``: a row as Stripe's Customer object, plus the local sync bookkeeping.

Writes are checked once, by the model's own ``requested_edit`` (``edits.check_edit``, as the
model's ``clean`` and the push do), so each error names the field and Stripe's limit, once.

A row's account, ``stripe_account`` (null: the key's own account) and ``livemode``, is chosen on
create only (either omitted: the default account's, ``accounts.default_account``) and must be one
a configured key reaches; on an existing row both are read-only (Stripe cannot move a customer).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from rest_framework import serializers
from rest_framework.fields import empty

from .. import schema
from ..accounts import UnknownAccount, default_livemode, default_stripe_account, find, is_account_id
from ..edits import check_one_shot
from ..models import Customer

#: Pushable, yet read-only here: it must name a source attached to the customer, and this app
#: does not manage sources (Stripe has no ``default_source`` parameter on create either).
NOT_WRITABLE: Final = frozenset({"default_source"})

#: Attributes the API writes (on create and update).
WRITABLE_FIELDS: Final[tuple[str, ...]] = tuple(
    name for name in schema.PUSHABLE if name not in NOT_WRITABLE
)
AnyField = serializers.Field[Any, Any, Any, Any]


class StripeAttributeField(serializers.Field[Any, Any, Any, Any]):
    """A writable attribute, JSON as is: Stripe's types and limits are checked by the model's
    ``requested_edit`` (no coercion, no DRF length or choice checks repeating it)."""

    def __init__(self, name: str) -> None:
        super().__init__(required=False, allow_null=True)
        column = Customer._meta.get_field(name)
        assert isinstance(column, models.Field)
        self.column: models.Field[Any, Any] = column

    def run_validation(self, data: Any = empty) -> Any:
        value = super().run_validation(data)
        if value in (None, "") and not self.column.null:  # metadata, preferred_locales
            return self.column.get_default()  # cleared: Stripe unsets metadata with ""
        return value

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class UnixTimestampField(serializers.ReadOnlyField):
    """A datetime as Stripe renders times: whole seconds since the epoch."""

    def to_representation(self, value: datetime) -> int:
        return int(value.timestamp())


class ConstantField(serializers.ReadOnlyField):
    def __init__(self, value: str) -> None:
        super().__init__(source="*")
        self.value = value

    def to_representation(self, value: Any) -> str:
        return self.value


class AccountField(serializers.Field[Any, Any, Any, Any]):
    """``stripe_account`` on create: an ``acct_`` id, or null for the key's own account."""

    def __init__(self) -> None:
        super().__init__(required=False, allow_null=True)

    def to_internal_value(self, data: Any) -> str:
        if not is_account_id(data):
            raise serializers.ValidationError(
                f"stripe_account: must be an acct_ id, or null for the API key's own account "
                f"(got {data!r})"
            )
        return str(data)

    def to_representation(self, value: Any) -> Any:
        return value


class StrictBooleanField(serializers.Field[Any, Any, Any, Any]):
    """A JSON boolean, as is (``"yes"`` or ``1`` are refused, not read as true)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            required=False, error_messages={"null": f"{name}: must be true or false (got None)"}
        )
        self.name_in_messages = name

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            raise serializers.ValidationError(
                f"{self.name_in_messages}: must be true or false (got {data!r})"
            )
        return data

    def to_representation(self, value: Any) -> Any:
        return value


def _attribute_field(name: str) -> AnyField:
    if name in WRITABLE_FIELDS:
        return StripeAttributeField(name)
    if name == "created":
        return UnixTimestampField()
    return serializers.ReadOnlyField()


class CustomerSerializer(serializers.ModelSerializer[Customer]):
    """``id`` is the Stripe id (null until created upstream) and ``pk`` the local one.

    Read-only fields sent in a request are ignored (a GET body can be sent back as a PUT);
    unknown ones are refused.
    """

    class Meta:
        model = Customer
        fields: tuple[str, ...] = ()  # all declared by get_fields, none generated from the model

    def get_fields(self) -> dict[str, AnyField]:
        fields: dict[str, AnyField] = {
            "id": serializers.ReadOnlyField(source="stripe_id"),
            "object": ConstantField("customer"),
        }
        fields.update({name: _attribute_field(name) for name in schema.MIRRORED})
        fields["deleted"] = serializers.ReadOnlyField()
        fields["pk"] = serializers.ReadOnlyField()
        # Where the customer lives: chosen on create, fixed after (``_account``).
        if self.instance is None:
            fields["stripe_account"] = AccountField()
            fields["livemode"] = StrictBooleanField("livemode")
        else:
            fields["stripe_account"] = serializers.ReadOnlyField()
        # Stripe's write-only parameters, sent once with the push this write makes.
        fields["stripe_params"] = serializers.DictField(write_only=True, required=False)
        # The owner's pk: written with the add or change permission, as any field.
        fields["user"] = serializers.PrimaryKeyRelatedField(
            queryset=get_user_model()._default_manager.all(), allow_null=True, required=False
        )
        fields["sync_status"] = serializers.ReadOnlyField()
        fields["synced_at"] = UnixTimestampField()
        fields["sync_error"] = serializers.ReadOnlyField()
        return fields

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(str(key) for key in data if key not in self.fields)
            if unknown:
                raise serializers.ValidationError(
                    {key: [f"{key}: unknown field (not a Customer attribute)"] for key in unknown}
                )
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Refuse what the push could not send: a create-only field changed on a customer
        Stripe already has, or a value Stripe cannot clear once set."""
        customer = self.instance
        if customer is not None and customer.stripe_id:
            changed = {
                name: [f"{name}: can only be set when the customer is created in Stripe"]
                for name in schema.CREATE_ONLY
                if name in attrs and attrs[name] != getattr(customer, name)
            }
            if changed:
                raise serializers.ValidationError(changed)
        if customer is None:
            attrs.update(_account(attrs))
        owner = attrs.get("user")
        if owner is not None:
            where = _values(customer, ("stripe_account", "livemode")) if customer else attrs
            others = Customer.objects.filter(
                user=owner,
                deleted=False,
                stripe_account=where.get("stripe_account", default_stripe_account()),
                livemode=where.get("livemode", default_livemode()),
            )
            if customer is not None:
                others = others.exclude(pk=customer.pk)
            other = others.only("pk").first()
            if other is not None:
                raise serializers.ValidationError(
                    {
                        "user": [
                            f"user: already has a customer in this account (pk {other.pk}); "
                            "one per user and account"
                        ]
                    }
                )
        stripe_params = attrs.get("stripe_params")
        if stripe_params:
            try:
                check_one_shot(stripe_params, stripe_id=customer.stripe_id if customer else None)
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"stripe_params": exc.message_dict}) from exc
        fields = {name: value for name, value in attrs.items() if name != "stripe_params"}
        candidate = Customer(**{**_values(customer), **fields})
        try:
            candidate.requested_edit()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(serializers.as_serializer_error(exc)) from exc
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Customer:
        return Customer.objects.create(**validated_data)

    def update(self, instance: Customer, validated_data: dict[str, Any]) -> Customer:
        stripe_params = validated_data.pop("stripe_params", None)
        for name, value in validated_data.items():
            setattr(instance, name, value)
        instance.save(stripe_params=stripe_params)
        return instance


def _values(customer: Customer | None, names: tuple[str, ...] = ()) -> dict[str, Any]:
    """What ``requested_edit`` reads of a row: its pushable fields and its Stripe snapshot
    (or the fields ``names``)."""
    if customer is None:
        return {}
    names = names or (*schema.PUSHABLE, "stripe_id", "stripe_data")
    return {name: getattr(customer, name) for name in names}


def _account(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The account a create names (what it omits: the default account's), checked: some
    configured key must reach it, else a 400 naming the field given."""
    if "stripe_account" not in attrs and "livemode" not in attrs:
        return {}  # the default account, as the columns' defaults make it
    stripe_account = attrs.get("stripe_account", default_stripe_account())
    livemode = attrs.get("livemode", default_livemode())
    try:
        find(stripe_account, livemode)
    except UnknownAccount as exc:
        name = "stripe_account" if "stripe_account" in attrs else "livemode"
        raise serializers.ValidationError({name: [f"{name}: {exc}"]}) from exc
    return {"stripe_account": stripe_account, "livemode": livemode}
