"""The admin's form fields for Stripe's structured attributes: metadata as rows, nested objects
(address, shipping, invoice settings) part by part, locales as text. Each names its sub-field in
its messages (``shipping[address][city]: ...``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from django import forms
from django.core.exceptions import ValidationError
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from .. import schema
from .widgets import KeyValueRowsWidget, LabelledPartsWidget, Part

#: Stripe allows at most 4 custom fields on invoices.
INVOICE_CUSTOM_FIELDS: Final = 4


def max_length(*path: str) -> int | None:
    """Stripe's ``maxLength`` for a (nested) parameter, e.g. ``("shipping", "name")``."""
    spec: dict[str, Any] = schema.UPDATE_PARAMS.get(path[0]) or schema.CREATE_PARAMS[path[0]]
    for key in path[1:]:
        spec = spec["fields"][key]
    found = spec.get("maxLength")
    return int(found) if found is not None else None


def _rows(
    row_label: Any, key_label: Any, lengths: tuple[int | None, int | None], **options: Any
) -> KeyValueRowsWidget:
    key_maxlength, value_maxlength = lengths
    return KeyValueRowsWidget(
        row_label=row_label,
        key_label=key_label,
        value_label=_("Value"),
        key_maxlength=key_maxlength,
        value_maxlength=value_maxlength,
        **options,
    )


def _is_blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def name_in_messages(name: str, field: forms.Field) -> None:
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


class MetadataField(forms.Field):
    """Metadata as key/value rows -> a dict. A row whose value is emptied removes its key
    (Stripe unsets a key sent with an empty value); empty rows are ignored."""

    widget = KeyValueRowsWidget

    def __init__(self, **kwargs: Any) -> None:
        limits = schema.METADATA_LIMITS
        lengths = (limits["key_max_length"], limits["value_max_length"])
        kwargs.setdefault("widget", _rows(_("Metadata"), _("Key"), lengths))
        kwargs.setdefault(
            "help_text", _("Empty a value to remove its key. Save to get more empty rows.")
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
        lengths = (
            max_length("invoice_settings", "custom_fields", "name"),
            max_length("invoice_settings", "custom_fields", "value"),
        )
        widget = _rows(_("Custom field"), _("Name"), lengths, total_rows=INVOICE_CUSTOM_FIELDS)
        kwargs.setdefault("widget", widget)
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> list[dict[str, str | None]]:
        return [
            {"name": key or None, "value": text or None}
            for key, text in KeyValueRowsWidget.as_pairs(value)
            if key or text
        ]


def _text_part(param: str, *path: str, label: Any) -> Part:
    field = forms.CharField(required=False, max_length=max_length(param, *path))
    field.validators = []  # the model's clean reports the limit, naming the sub-field
    return Part(path, label, field)


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
            name_in_messages(param + "".join(f"[{key}]" for key in part.path), part.field)
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
