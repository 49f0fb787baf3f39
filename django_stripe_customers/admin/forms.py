"""The admin's Customer form: nested objects edited as labelled parts, metadata as rows.

What Stripe would refuse is found once, by the model's ``clean`` (``edits.check_edit``, as the
API and the push do), which ``ModelForm`` runs; its errors land on the fields they name. The
form's own fields only turn inputs into values (naming the field when they cannot).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import (
    MaxLengthValidator,
    MaxValueValidator,
    MinValueValidator,
    ProhibitNullCharactersValidator,
)
from django.utils.translation import gettext_lazy as _

from .. import schema
from ..edits import check_one_shot
from ..models import Customer
from .accounts import account_choices, parse_choice
from .conflicts import Resolution, resolve, sign_read, unsign_read
from .fields import (
    LocalesField,
    MetadataField,
    address_field,
    invoice_settings_field,
    meaningful,
    name_in_messages,
    shipping_field,
)

#: What a person may edit: the attributes a local edit sends to Stripe, and the user link.
EDITABLE_FIELDS: Final = (*schema.PUSHABLE, "user")
#: The form's fields for Stripe's write-only parameters on create.
ONE_SHOT_FORM_FIELDS: Final = ("payment_method", "tax_id_type", "tax_id_value")
TAX_ID_TYPES: Final = [
    (value, value) for value in schema.CREATE_PARAMS["tax_id_data"]["fields"]["type"]["enum"]
]
#: Fields edited through a nested-object field, compared to the stored value ignoring unset keys.
NESTED_FIELDS: Final = ("address", "shipping", "invoice_settings")
#: Django's own checks, which the model's ``clean`` makes naming the field and Stripe's limit.
REPLACED_VALIDATORS: Final = (
    MaxLengthValidator,
    MaxValueValidator,
    MinValueValidator,
    ProhibitNullCharactersValidator,
)

if TYPE_CHECKING:
    _CustomerModelForm = forms.ModelForm[Customer]
else:  # ModelForm is generic for type checkers only
    _CustomerModelForm = forms.ModelForm


class CustomerAdminForm(_CustomerModelForm):
    """The admin's form; Stripe's rules are checked once, by the model (see the module)."""

    address = address_field()
    shipping = shipping_field()
    invoice_settings = invoice_settings_field()
    metadata = MetadataField(required=False)
    preferred_locales = LocalesField(
        required=False, help_text=_("Comma-separated, in order of preference: en, fr-CA")
    )

    # Stripe's write-only parameters on create (``edits.ONE_SHOT``), sent once with the push.
    payment_method = forms.CharField(
        required=False,
        label=_("Payment method to attach"),
        help_text=_("A PaymentMethod id (pm_...), e.g. from your sign-up form; sent once."),
    )
    tax_id_type = forms.ChoiceField(
        required=False, label=_("Tax id type"), choices=[("", "---------"), *TAX_ID_TYPES]
    )
    tax_id_value = forms.CharField(required=False, label=_("Tax id"))
    # The account a new customer goes to, when several are configured (``accounts``).
    account = forms.ChoiceField(
        required=False,
        label=_("Stripe account"),
        help_text=_("Where Stripe creates the customer; it stays there (Stripe cannot move it)."),
    )
    # What the page showed, signed (``conflicts``): a field someone else changed meanwhile is
    # kept, or a conflict when this page changed it too.
    read_values = forms.CharField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = Customer
        fields = EDITABLE_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resolution: Resolution | None = None
        if self.instance.pk is not None:  # Stripe takes these on create only
            for name in ONE_SHOT_FORM_FIELDS:
                self.fields.pop(name, None)
            # the row as it is now: when the page opens, or when it is submitted
            self._now = {name: self._current(name) for name in EDITABLE_FIELDS}
            if not self.is_bound:
                self.initial["read_values"] = sign_read(self.instance.pk, self._now)
        else:
            self.fields.pop("read_values")
        choices: list[tuple[str, str]] = account_choices() if self.instance.pk is None else []
        if len(choices) > 1:
            account = self.fields["account"]
            assert isinstance(account, forms.ChoiceField)
            account.choices = choices
            account.initial = choices[0][0]  # the default account
        else:
            self.fields.pop("account")
        for name, field in self.fields.items():
            name_in_messages(name, field)
            if name in schema.PUSHABLE:  # the input keeps its maxlength attribute
                field.validators = [
                    v for v in field.validators if not isinstance(v, REPLACED_VALIDATORS)
                ]

    def _current(self, name: str) -> Any:
        return self.instance.user_id if name == "user" else getattr(self.instance, name)

    def fields_to_write(self) -> list[str] | None:
        """The fields this submit writes (``None``: every field, a page without a snapshot)."""
        return None if self.resolution is None else list(self.resolution.values)

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # ModelForm's own, not in the stubs
        token = self.cleaned_data.get("read_values") if hasattr(self, "cleaned_data") else None
        read = unsign_read(token, self.instance.pk) if token and self.instance.pk else None
        if read is None:
            return
        mine = {
            name: self.cleaned_data[name] for name in EDITABLE_FIELDS if name in self.cleaned_data
        }
        self.resolution = resolve(read, mine, self._now)
        for name, (now, yours) in self.resolution.conflicts.items():
            self.add_error(
                name if name in self.fields else None,
                ValidationError(
                    _(
                        "%(field)s: changed by someone else since you opened this page (now: "
                        "%(now)s; yours: %(yours)s). Reload the page, then make your edit again."
                    ),
                    code="conflict",
                    params={"field": name, "now": _shown(now), "yours": _shown(yours)},
                ),
            )
        for name in EDITABLE_FIELDS:  # what this page did not change stays as the row has it
            if name in self.resolution.values:
                value = self.resolution.values[name]
                setattr(self.instance, "user_id" if name == "user" else name, _pk(value))
            elif name in self._now:
                setattr(self.instance, "user_id" if name == "user" else name, self._now[name])

    def stripe_params(self) -> dict[str, Any]:
        """The write-only parameters this form asks to send with the push (checked by
        ``clean``)."""
        cleaned = getattr(self, "cleaned_data", {})
        params: dict[str, Any] = {}
        if cleaned.get("payment_method"):
            params["payment_method"] = cleaned["payment_method"]
        if cleaned.get("tax_id_type") or cleaned.get("tax_id_value"):
            item = {"type": cleaned.get("tax_id_type"), "value": cleaned.get("tax_id_value")}
            params["tax_id_data"] = [{k: v for k, v in item.items() if v}]
        return params

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("account"):  # a choice among the accounts a key reaches
            self.instance.stripe_account, self.instance.livemode = parse_choice(cleaned["account"])
        params = self.stripe_params()
        if params:
            try:
                check_one_shot(params, stripe_id=self.instance.stripe_id)
            except ValidationError as exc:
                for name, errors in exc.error_dict.items():
                    field = "tax_id_value" if name == "tax_id_data" else name
                    self.add_error(field if field in self.fields else None, errors)
        for name in NESTED_FIELDS:
            # An object that differs from the stored one only by unset keys is left as stored
            # (so an untouched address is not pushed again, nor invoice_settings "cleared").
            if name in cleaned and meaningful(cleaned[name]) == meaningful(self.initial.get(name)):
                cleaned[name] = self.initial.get(name)
        return cleaned

    def _update_errors(self, errors: ValidationError) -> None:
        # ModelForm would replace a model error's message by the form field's message of the
        # same code ("required", "invalid"): Stripe's message, naming the sub-field, stays.
        self.add_error(None, errors)

    def add_error(self, field: str | None, error: ValidationError | str | Any) -> None:
        """The model's errors go next to their field; those about a field this page does not
        show, or one that already has the form's own error, to the top of the form."""
        if isinstance(error, ValidationError) and hasattr(error, "error_dict"):
            routed: dict[str, list[ValidationError]] = {}
            for name, errors in error.error_dict.items():
                if name in self.fields and name in self.errors:
                    continue  # the form's own conversion already said what is wrong
                target = name if name in self.fields else NON_FIELD_ERRORS
                routed.setdefault(target, []).extend(errors)
            for name, errors in routed.items():
                super().add_error(None if name == NON_FIELD_ERRORS else name, errors)
            return
        super().add_error(field, error)


def _shown(value: Any) -> str:
    return "(empty)" if value in (None, "", [], {}) else str(value)


def _pk(value: Any) -> Any:
    pk = getattr(value, "pk", None)
    return pk if pk is not None else value
