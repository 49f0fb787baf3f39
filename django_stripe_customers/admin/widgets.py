"""The admin's widgets: key/value rows (metadata, invoice custom fields) and the labelled parts
of a nested object (an address edited line by line), each input with its own label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from django import forms
from django.utils.datastructures import MultiValueDict

Pairs = list[tuple[str, str]]

#: Empty rows offered below the existing metadata keys (save to get more: no JavaScript).
METADATA_EXTRA_ROWS: Final = 3


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


@dataclass(frozen=True)
class Part:
    """One sub-field of a nested object: where it lives in the object, its label, its field."""

    path: tuple[str, ...]
    label: Any  # a (lazy) string
    field: forms.Field

    @property
    def suffix(self) -> str:
        return "_".join(self.path)


def dig(value: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


class LabelledPartsWidget(forms.MultiWidget):
    """The sub-inputs of a nested object, each with its own visible label."""

    template_name = "stripe_customers/widgets/labelled_parts.html"
    use_fieldset = False

    def __init__(self, parts: Sequence[Part], attrs: dict[str, Any] | None = None) -> None:
        self.parts = list(parts)
        super().__init__({part.suffix: part.field.widget for part in self.parts}, attrs)

    def decompress(self, value: Any) -> list[Any]:
        return [dig(value, part.path) for part in self.parts]

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        for part, subwidget in zip(self.parts, context["widget"]["subwidgets"], strict=True):
            subwidget["label"] = part.label
            subwidget["part"] = part.suffix
            subwidget["is_rows"] = isinstance(part.field.widget, KeyValueRowsWidget)
        return context

    def id_for_label(self, id_: str) -> str:
        return ""  # each part has its own label
