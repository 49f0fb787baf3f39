"""The admin's Customer form: nested objects edited as labelled sub-fields, metadata as rows.

Every value is checked with ``validation`` (Stripe's limits; each error names the field and the
limit), and a change Stripe cannot express (clearing what it cannot clear) is refused here, not
discovered by the push.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import (
    MaxLengthValidator,
    MaxValueValidator,
    MinValueValidator,
    ProhibitNullCharactersValidator,
)
from django.utils.datastructures import MultiValueDict
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from . import schema
from .models import Customer
from .sync.push import PUSHABLE_FIELDS, compute_request
from .validation import FIELD_VALIDATORS

Pairs = list[tuple[str, str]]

#: Empty rows offered below the existing metadata keys (save to get more: no JavaScript).
METADATA_EXTRA_ROWS: Final = 3
#: Django's own checks that ``validation`` makes, naming the field and Stripe's limit.
REPLACED_VALIDATORS: Final = (
    MaxLengthValidator,
    MaxValueValidator,
    MinValueValidator,
    ProhibitNullCharactersValidator,
)
#: Stripe allows at most 4 custom fields on invoices.
INVOICE_CUSTOM_FIELDS: Final = 4


def _limit(*path: str) -> int | None:
    """Stripe's ``maxLength`` for a (nested) parameter, e.g. ``("shipping", "name")``."""
    spec: dict[str, Any] = schema.UPDATE_PARAMS.get(path[0]) or schema.CREATE_PARAMS[path[0]]
    for key in path[1:]:
        spec = spec["fields"][key]
    limit = spec.get("maxLength")
    return int(limit) if limit is not None else None


def _is_blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _name_in_messages(name: str, field: forms.Field) -> None:
    """Prefix Django's own messages (invalid choice, not a number, ...) with the field name."""
    field.error_messages = {
        code: format_lazy("{}: {}", name, message) for code, message in field.error_messages.items()
    }


def meaningful(value: Any) -> Any:
    """``value`` without its empty parts (``None``, ``""``, ``[]``, ``{}``), recursively; ``None``
    when nothing is left. Two objects that differ only by unset keys are the same edit."""
    if isinstance(value, Mapping):
        kept = {key: meaningful(item) for key, item in value.items()}
        value = {key: item for key, item in kept.items() if item is not None}
    elif isinstance(value, list | tuple):
        value = [item for item in map(meaningful, value) if item is not None]
    return None if _is_blank(value) else value


# -- key/value rows ----------------------------------------------------------------------------


class KeyValueRowsWidget(forms.Widget):
    """A table of key/value text inputs: the existing entries, then empty rows to add more.

    Inputs are named ``<name>_key_<i>`` and ``<name>_value_<i>``; each has its own accessible
    name (``Metadata key 1``, ``Metadata value 1``, ...).
    """

    template_name = "stripe_customers/widgets/key_value_rows.html"

    def __init__(
        self,
        *,
        row_label: Any,
        key_label: Any,
        value_label: Any,
        key_maxlength: int | None = None,
        value_maxlength: int | None = None,
        extra_rows: int = METADATA_EXTRA_ROWS,
        total_rows: int | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(attrs)
        self.row_label, self.key_label, self.value_label = row_label, key_label, value_label
        self.key_maxlength, self.value_maxlength = key_maxlength, value_maxlength
        self.extra_rows, self.total_rows = extra_rows, total_rows

    @staticmethod
    def as_pairs(value: Any) -> Pairs:
        """Rows from a dict (sorted by key: the same order on every database), a list of
        ``{"name", "value"}`` objects, or a list of pairs (both kept in their order)."""
        if isinstance(value, Mapping):
            return sorted(
                (str(key), "" if item is None else str(item)) for key, item in value.items()
            )
        rows: Pairs = []
        for item in value or ():
            if isinstance(item, Mapping):
                key, text = item.get("name"), item.get("value")
            else:
                key, text = item
            rows.append(("" if key is None else str(key), "" if text is None else str(text)))
        return rows

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        pairs = self.as_pairs(value)
        count = self.total_rows or len(pairs) + self.extra_rows
        pairs += [("", "")] * (count - len(pairs))
        base_id = context["widget"]["attrs"].get("id") or f"id_{name}"
        context["widget"].update(
            row_label=self.row_label,
            key_label=self.key_label,
            value_label=self.value_label,
            key_maxlength=self.key_maxlength,
            value_maxlength=self.value_maxlength,
            rows=[
                {
                    "number": index + 1,
                    "key": key,
                    "value": text,
                    "key_name": f"{name}_key_{index}",
                    "value_name": f"{name}_value_{index}",
                    "key_id": f"{base_id}_key_{index}",
                    "value_id": f"{base_id}_value_{index}",
                }
                for index, (key, text) in enumerate(pairs)
            ],
        )
        return context

    def value_from_datadict(
        self, data: Mapping[str, Any], files: MultiValueDict[str, Any], name: str
    ) -> Pairs:
        rows: Pairs = []
        index = 0
        while f"{name}_key_{index}" in data or f"{name}_value_{index}" in data:
            key = str(data.get(f"{name}_key_{index}") or "").strip()
            text = str(data.get(f"{name}_value_{index}") or "").strip()
            rows.append((key, text))
            index += 1
        return rows

    def value_omitted_from_data(
        self, data: Mapping[str, Any], files: Mapping[str, Any], name: str
    ) -> bool:
        return f"{name}_key_0" not in data and f"{name}_value_0" not in data

    def id_for_label(self, id_: str) -> str:
        return ""  # one label per input, inside the table


class MetadataField(forms.Field):
    """Metadata as key/value rows -> a dict. A row whose value is emptied removes its key
    (Stripe unsets a key sent with an empty value); empty rows are ignored."""

    widget = KeyValueRowsWidget

    def __init__(self, **kwargs: Any) -> None:
        limits = schema.METADATA_LIMITS
        kwargs.setdefault(
            "widget",
            KeyValueRowsWidget(
                row_label=_("Metadata"),
                key_label=_("Key"),
                value_label=_("Value"),
                key_maxlength=limits["key_max_length"],
                value_maxlength=limits["value_max_length"],
            ),
        )
        kwargs.setdefault(
            "help_text",
            _("Empty a value to remove its key. Save to get more empty rows."),
        )
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> dict[str, str]:
        if isinstance(value, Mapping):
            return dict(value)
        result: dict[str, str] = {}
        for number, (key, text) in enumerate(KeyValueRowsWidget.as_pairs(value), start=1):
            if not key and text:
                raise ValidationError(
                    _("metadata: row %(row)d has a value but no key"),
                    code="missing_key",
                    params={"row": number},
                )
            if not key or not text:
                continue
            if key in result:
                raise ValidationError(
                    _("metadata[%(key)s]: the key appears twice"),
                    code="duplicate_key",
                    params={"key": key},
                )
            result[key] = text
        return result


class CustomFieldsField(forms.Field):
    """Invoice custom fields as name/value rows -> a list of ``{"name", "value"}`` objects."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "widget",
            KeyValueRowsWidget(
                row_label=_("Custom field"),
                key_label=_("Name"),
                value_label=_("Value"),
                key_maxlength=_limit("invoice_settings", "custom_fields", "name"),
                value_maxlength=_limit("invoice_settings", "custom_fields", "value"),
                total_rows=INVOICE_CUSTOM_FIELDS,
            ),
        )
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> list[dict[str, str | None]]:
        return [
            {"name": key or None, "value": text or None}
            for key, text in KeyValueRowsWidget.as_pairs(value)
            if key or text
        ]


# -- nested objects as labelled parts ----------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One sub-field of a nested object: where it lives in the object, its label, its field."""

    path: tuple[str, ...]
    label: Any  # a (lazy) string
    field: forms.Field

    @property
    def suffix(self) -> str:
        return "_".join(self.path)


def _text_part(param: str, *path: str, label: Any) -> Part:
    limit = _limit(param, *path)
    field = forms.CharField(required=False, max_length=limit)
    field.validators = []  # the object's validator reports the limit, naming the sub-field
    return Part(path, label, field)


def _dig(value: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _nest(parts: Sequence[Part], values: Sequence[Any]) -> dict[str, Any]:
    """The object the parts' values describe; a nested object with nothing set is ``None``."""
    result: dict[str, Any] = {}
    for part, value in zip(parts, values, strict=True):
        target = result
        for key in part.path[:-1]:
            target = target.setdefault(key, {})
        target[part.path[-1]] = None if _is_blank(value) else value
    for key, item in result.items():
        if isinstance(item, dict) and all(sub is None for sub in item.values()):
            result[key] = None
    return result


class LabelledPartsWidget(forms.MultiWidget):
    """The sub-inputs of a nested object, each with its own visible label."""

    template_name = "stripe_customers/widgets/labelled_parts.html"
    use_fieldset = False

    def __init__(self, parts: Sequence[Part], attrs: dict[str, Any] | None = None) -> None:
        self.parts = list(parts)
        super().__init__({part.suffix: part.field.widget for part in self.parts}, attrs)

    def decompress(self, value: Any) -> list[Any]:
        return [_dig(value, part.path) for part in self.parts]

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        for part, subwidget in zip(self.parts, context["widget"]["subwidgets"], strict=True):
            subwidget["label"] = part.label
            subwidget["part"] = part.suffix
            subwidget["is_rows"] = isinstance(part.field.widget, KeyValueRowsWidget)
        return context

    def id_for_label(self, id_: str) -> str:
        return ""  # each part has its own label


class NestedObjectField(forms.MultiValueField):
    """A nested Stripe object (address, shipping, invoice settings) edited part by part.

    ``empty_is_none``: whether an object with nothing set is ``None`` (cleared) or an object of
    ``None``s (Stripe merges ``invoice_settings`` key by key and cannot clear it whole).
    """

    def __init__(
        self, param: str, parts: Sequence[Part], *, empty_is_none: bool = True, **kwargs: Any
    ) -> None:
        self.parts = list(parts)
        self.empty_is_none = empty_is_none
        for part in self.parts:
            _name_in_messages(param + "".join(f"[{key}]" for key in part.path), part.field)
        kwargs.setdefault("required", False)
        super().__init__(
            fields=[part.field for part in self.parts],
            widget=LabelledPartsWidget(self.parts),
            require_all_fields=False,
            **kwargs,
        )

    def compress(self, data_list: list[Any]) -> dict[str, Any] | None:
        values = list(data_list) or [None] * len(self.parts)
        nested = _nest(self.parts, values)
        if self.empty_is_none and all(item is None for item in nested.values()):
            return None
        return nested


def _address_parts(param: str, *prefix: str) -> list[Part]:
    """The six parts of an address, ``address[...]`` or ``shipping[address][...]``."""
    labels = {
        "line1": _("Line 1"),
        "line2": _("Line 2"),
        "postal_code": _("Postal code"),
        "city": _("City"),
        "state": _("State"),
        "country": _("Country (2-letter code)"),
    }
    return [_text_part(param, *prefix, key, label=label) for key, label in labels.items()]


def address_field() -> NestedObjectField:
    return NestedObjectField("address", _address_parts("address"), label=_("Address"))


def shipping_field() -> NestedObjectField:
    parts = [
        _text_part("shipping", "name", label=_("Recipient name")),
        _text_part("shipping", "phone", label=_("Phone")),
        *_address_parts("shipping", "address"),
    ]
    return NestedObjectField("shipping", parts, label=_("Shipping"))


def invoice_settings_field() -> NestedObjectField:
    choices = schema.UPDATE_PARAMS["invoice_settings"]["fields"]["rendering_options"]["fields"][
        "amount_tax_display"
    ]["enum"]
    tax_display = forms.ChoiceField(
        required=False, choices=[("", "---------"), *((value, value) for value in choices)]
    )
    parts = [
        _text_part("invoice_settings", "footer", label=_("Footer")),
        _text_part(
            "invoice_settings", "default_payment_method", label=_("Default payment method id")
        ),
        Part(("rendering_options", "amount_tax_display"), _("Amount tax display"), tax_display),
        _text_part(
            "invoice_settings", "rendering_options", "template", label=_("Rendering template id")
        ),
        Part(("custom_fields",), _("Custom fields (up to 4)"), CustomFieldsField(required=False)),
    ]
    return NestedObjectField(
        "invoice_settings", parts, empty_is_none=False, label=_("Invoice settings")
    )


class LocalesField(forms.CharField):
    """``preferred_locales`` as comma-separated text: ``en, fr-CA``."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(str(item) for item in value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        if isinstance(value, list | tuple):
            return [str(item) for item in value]
        text = super().to_python(value) or ""
        return [item.strip() for item in text.split(",") if item.strip()]


# -- the form ----------------------------------------------------------------------------------

#: Fields edited through a nested-object field, compared to the stored value ignoring unset keys.
NESTED_FIELDS: Final = ("address", "shipping", "invoice_settings")


if TYPE_CHECKING:
    _CustomerModelForm = forms.ModelForm[Customer]
else:  # ModelForm is generic for type checkers only
    _CustomerModelForm = forms.ModelForm

#: What a person may edit (the admin narrows it further per page).
EDITABLE_FIELDS: Final = (
    "name",
    "business_name",
    "individual_name",
    "description",
    "user",
    "email",
    "phone",
    "preferred_locales",
    "address",
    "shipping",
    "balance",
    "invoice_prefix",
    "next_invoice_sequence",
    "invoice_settings",
    "default_source",
    "test_clock",
    "tax_exempt",
    "metadata",
)


class CustomerAdminForm(_CustomerModelForm):
    """Stripe's limits checked field by field with ``validation``'s validators (each message
    starts with the field or sub-field it is about), then the whole edit with ``compute_request``
    (what the push would send), so nothing the push would refuse is saved."""

    address = address_field()
    shipping = shipping_field()
    invoice_settings = invoice_settings_field()
    metadata = MetadataField(required=False)
    preferred_locales = LocalesField(
        required=False, help_text=_("Comma-separated, in order of preference: en, fr-CA")
    )

    class Meta:
        model = Customer
        fields = EDITABLE_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            _name_in_messages(name, field)
            validators = FIELD_VALIDATORS.get(name)
            if validators:
                # Stripe's limit, with the field named, instead of Django's anonymous one; the
                # input keeps its maxlength attribute.
                kept = [v for v in field.validators if not isinstance(v, REPLACED_VALIDATORS)]
                field.validators = [*kept, *validators]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in NESTED_FIELDS:
            # An object that differs from the stored one only by unset keys is left as stored
            # (so an untouched address is not pushed again, nor invoice_settings "cleared").
            if name in cleaned and meaningful(cleaned[name]) == meaningful(self.initial.get(name)):
                cleaned[name] = self.initial.get(name)
        self._check_expressible(cleaned)
        return cleaned

    def _check_expressible(self, cleaned: dict[str, Any]) -> None:
        """Refuse an edit the push could not send (``compute_request`` raises for it)."""
        candidate = copy.copy(self.instance)
        for name in PUSHABLE_FIELDS:
            if name in cleaned:
                setattr(candidate, name, cleaned[name])
        try:
            compute_request(candidate)
        except ValidationError as exc:
            self.add_error(None, exc)

    def add_error(self, field: str | None, error: ValidationError | str | Any) -> None:
        """Errors about fields this form does not show (the model's ``clean`` checks them all)
        go to the top of the form instead of failing."""
        if isinstance(error, ValidationError) and hasattr(error, "error_dict"):
            routed: dict[str, list[ValidationError]] = {}
            for name, errors in error.error_dict.items():
                target = name if name in self.fields and name not in self.errors else None
                if name in self.fields and name in self.errors:
                    continue  # already reported by the field itself
                routed.setdefault(target or NON_FIELD_ERRORS, []).extend(errors)
            for name, errors in routed.items():
                super().add_error(None if name == NON_FIELD_ERRORS else name, errors)
            return
        super().add_error(field, error)
