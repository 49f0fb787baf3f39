"""Stripe's limits on the pushable Customer attributes, as Django validators.

Every limit comes from ``schema`` (Stripe's data) but for the few Stripe documents only in
words (``invoice_prefix``, locales, countries); ``edits.check_edit`` runs them for every value
it would send.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.utils.translation import gettext_lazy as _

from . import schema
from .countries import COUNTRY_CODES

Spec = dict[str, Any]
Validator = Callable[[Any], None]


#: Stripe documents ``invoice_prefix`` as uppercase letters or digits, at most 12; the spec data
#: carries only ``maxLength`` 5000, so this one limit is not from ``schema``.
INVOICE_PREFIX_MAX_LENGTH: Final = 12
_INVOICE_PREFIX: Final = re.compile(rf"[A-Z0-9]{{1,{INVOICE_PREFIX_MAX_LENGTH}}}")
#: A BCP 47 tag's language, optional script and optional region: en, fr-CA, zh-Hant-TW, es-419.
_LOCALE: Final = re.compile(r"[a-z]{2,3}(?:-[a-z]{4})?(?:-(?:[a-z]{2}|[0-9]{3}))?", re.IGNORECASE)
#: How much of a long key or value an error message shows.
_PREVIEW_LENGTH: Final = 32
#: Stripe's integers are 64-bit signed, as are the columns (``BigIntegerField``).
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
_UNPAIRED_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_EMAIL: Final = EmailValidator()


def _spec(param: str) -> Spec:
    return schema.UPDATE_PARAMS.get(param) or schema.CREATE_PARAMS[param]


def _preview(text: str) -> str:
    """``text`` shortened, with what cannot be printed (NUL, surrogates) escaped."""
    short = text if len(text) <= _PREVIEW_LENGTH else text[:_PREVIEW_LENGTH] + "..."
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in short)


def _text_problem(value: str) -> tuple[str, Any] | None:
    """(code, message) when a string cannot be stored or sent as text: NUL characters (which
    PostgreSQL refuses) or unpaired surrogates (which are not Unicode text at all)."""
    if "\x00" in value:
        return "null_characters", _("may not contain NUL characters (\\x00)")
    if _UNPAIRED_SURROGATE.search(value):
        return "invalid_text", _("not valid Unicode text (an unpaired surrogate)")
    return None


def _text_error(field: str, value: str, subject: str = "") -> ValidationError | None:
    problem = _text_problem(value)
    if problem is None:
        return None
    code, text = problem
    if subject:  # "keys", "values": "not valid" reads "are not valid"
        text = text if str(text).startswith("may") else f"are {text}"
        return _error(f"%(field)s: {subject} {text}", code, field)
    return _error(f"%(field)s: {text}", code, field)


def _error(message: Any, code: str, field: str, **params: Any) -> ValidationError:
    """An error whose message starts with the field's param name (``shipping[address][zip]``)."""
    return ValidationError(message, code=code, params={"field": field, **params})


def _type_error(field: str, expected: str, value: Any) -> ValidationError:
    message = _("%(field)s: must be %(expected)s (got %(type)s)")
    return _error(message, "invalid_type", field, expected=expected, type=type(value).__name__)


def _raise_if(errors: list[ValidationError]) -> None:
    if errors:
        raise ValidationError(errors)


def _may_be_empty(spec: Spec) -> bool:
    """``""`` unsets a value: any plain optional string, or what the spec says ``accepts_empty``."""
    plain_string = spec["type"] == "string" and not spec.get("list") and not spec.get("enum")
    return bool(spec.get("accepts_empty")) or (plain_string and not spec.get("required"))


def check(value: Any, spec: Spec, field: str) -> list[ValidationError]:
    """Errors of ``value`` against a param ``spec``; ``None`` passes (it is never sent)."""
    if value is None:
        return []
    if isinstance(value, str) and value == "":
        empty = _error(_("%(field)s: may not be empty"), "empty", field)
        return [] if _may_be_empty(spec) else [empty]
    if spec.get("list"):
        if not isinstance(value, list | tuple):
            return [_type_error(field, "a list", value)]
        item = {k: v for k, v in spec.items() if k not in ("list", "accepts_empty")}
        return [err for i, one in enumerate(value) for err in check(one, item, f"{field}[{i}]")]
    kind = spec["type"]
    if kind == "string":
        return _check_string(value, spec, field)
    if kind == "object":
        return _check_object(value, spec, field)
    if kind.startswith("map"):
        return _check_metadata(value, field)
    if kind == "integer":
        return _check_integer(value, field)
    if kind == "boolean" and not isinstance(value, bool):
        return [_type_error(field, "true or false", value)]
    return []


def _check_integer(value: Any, field: str) -> list[ValidationError]:
    if not isinstance(value, int) or isinstance(value, bool):
        return [_type_error(field, "an integer", value)]
    if not INT64_MIN <= value <= INT64_MAX:
        message = _("%(field)s: must be an integer from %(min)d to %(max)d (got %(value)s)")
        shown = _preview(str(value))
        return [_error(message, "out_of_range", field, min=INT64_MIN, max=INT64_MAX, value=shown)]
    return []


def _check_string(value: Any, spec: Spec, field: str) -> list[ValidationError]:
    if not isinstance(value, str):
        return [_type_error(field, "a string", value)]
    text_error = _text_error(field, value)
    if text_error is not None:
        return [text_error]
    limit = spec.get("maxLength")
    if limit is not None and len(value) > limit:
        message = _("%(field)s: at most %(limit)d characters (got %(length)d)")
        return [_error(message, "max_length", field, limit=limit, length=len(value))]
    enum = spec.get("enum")
    if enum and value not in enum:
        message = _("%(field)s: must be one of %(choices)s (got %(value)r)")
        choices = ", ".join(enum)
        return [_error(message, "invalid_choice", field, choices=choices, value=_preview(value))]
    return []


def _check_object(value: Any, spec: Spec, field: str) -> list[ValidationError]:
    """Known keys checked recursively; unknown keys refused unless ``None`` (never sent)."""
    if not isinstance(value, Mapping):
        return [_type_error(field, "an object", value)]
    fields: dict[str, Spec] = spec.get("fields", {})
    errors: list[ValidationError] = []
    for key, item in value.items():
        where = f"{field}[{key}]"
        if key in fields:
            errors += check(item, fields[key], where)
            if key == "country" and "line1" in fields and not errors:
                errors += _check_country(item, where)
        elif item is not None:
            message = _("%(field)s: unknown key (Stripe accepts %(allowed)s)")
            errors.append(_error(message, "unknown_key", where, allowed=", ".join(fields)))
    for key, sub in fields.items():
        if sub.get("required") and value.get(key) is None:
            message = _("%(field)s: required when %(parent)s is set")
            errors.append(_error(message, "required", f"{field}[{key}]", parent=field))
    return errors


def _check_country(value: Any, field: str) -> list[ValidationError]:
    """An address's country: a code Stripe knows (``None`` and ``""`` leave it unset)."""
    if not value or value in COUNTRY_CODES:
        return []
    message = _(
        "%(field)s: a two-letter country code (ISO 3166-1 alpha-2) such as US or FR "
        "(got %(value)r)"
    )
    return [_error(message, "invalid_country", field, value=_preview(value))]


def _check_metadata(value: Any, field: str) -> list[ValidationError]:
    """Strings only (Stripe keeps metadata as text); ``""`` unsets a key, so it is not counted."""
    if not isinstance(value, Mapping):
        return [_type_error(field, "an object of strings", value)]
    limits = schema.METADATA_LIMITS
    errors: list[ValidationError] = []
    count = sum(1 for item in value.values() if item != "")
    if count > limits["max_keys"]:
        message = _("%(field)s: at most %(limit)d keys (got %(count)d)")
        errors.append(_error(message, "max_keys", field, limit=limits["max_keys"], count=count))
    for key, item in value.items():
        where = f"{field}[{_preview(str(key))}]"
        if not isinstance(key, str):
            errors.append(_type_error(where, "a string key", key))
            continue
        key_error = _text_error(where, key, "keys")
        if key_error is not None:
            errors.append(key_error)
            continue
        if any(char in key for char in limits["key_forbidden_chars"]):
            message = _("%(field)s: keys may not contain %(chars)s")
            chars = " or ".join(repr(char) for char in limits["key_forbidden_chars"])
            errors.append(_error(message, "forbidden_chars", where, chars=chars))
        if len(key) > limits["key_max_length"]:
            message = _("%(field)s: keys are at most %(limit)d characters (got %(length)d)")
            limit = limits["key_max_length"]
            errors.append(_error(message, "key_max_length", where, limit=limit, length=len(key)))
        if not isinstance(item, str):
            message = _("%(field)s: values must be strings (got %(type)s)")
            errors.append(_error(message, "invalid_type", where, type=type(item).__name__))
        elif (value_error := _text_error(where, item, "values")) is not None:
            errors.append(value_error)
        elif len(item) > limits["value_max_length"]:
            message = _("%(field)s: values are at most %(limit)d characters (got %(length)d)")
            limit = limits["value_max_length"]
            errors.append(_error(message, "max_length", where, limit=limit, length=len(item)))
    return errors


def spec_validator(param: str) -> Validator:
    """A Django validator checking a value against ``param``'s spec (types, lengths, keys)."""

    def validate(value: Any) -> None:
        _raise_if(check(value, _spec(param), param))

    validate.__name__ = f"validate_{param}"
    return validate


validate_tax_exempt: Final = spec_validator("tax_exempt")
validate_address: Final = spec_validator("address")
validate_shipping: Final = spec_validator("shipping")
validate_invoice_settings: Final = spec_validator("invoice_settings")
validate_metadata: Final = spec_validator("metadata")


def validate_email(value: Any) -> None:
    """Stripe's length limit, then Django's address syntax (without its own 320-character cap)."""
    _raise_if(check(value, _spec("email"), "email"))
    if not value:
        return
    user, _at, domain = value.rpartition("@")
    valid = bool(user and _EMAIL.user_regex.match(user)) and (
        domain in _EMAIL.domain_allowlist or _EMAIL.validate_domain_part(domain)
    )
    if not valid:
        message = _("%(field)s: not a valid email address (got %(value)r)")
        raise _error(message, "invalid", "email", value=_preview(value))


def validate_invoice_prefix(value: Any) -> None:
    _raise_if(check(value, _spec("invoice_prefix"), "invoice_prefix"))
    if value and not _INVOICE_PREFIX.fullmatch(value):
        message = _("%(field)s: 1 to %(limit)d uppercase letters or digits (got %(value)r)")
        limit = INVOICE_PREFIX_MAX_LENGTH
        raise _error(message, "invalid", "invoice_prefix", limit=limit, value=_preview(value))


def validate_preferred_locales(value: Any) -> None:
    _raise_if(check(value, _spec("preferred_locales"), "preferred_locales"))
    errors = [
        _error(
            _("%(field)s: not a locale such as en, fr-CA or zh-Hant-TW (got %(value)r)"),
            "invalid_locale",
            f"preferred_locales[{index}]",
            value=_preview(locale),
        )
        for index, locale in enumerate(value or ())
        if locale is not None and not _LOCALE.fullmatch(locale)
    ]
    _raise_if(errors)


_SPECIFIC: Final[dict[str, Validator]] = {
    "email": validate_email,
    "invoice_prefix": validate_invoice_prefix,
    "preferred_locales": validate_preferred_locales,
}

#: Pushable attribute -> its validators.
FIELD_VALIDATORS: Final[dict[str, list[Validator]]] = {
    name: [_SPECIFIC.get(name) or spec_validator(name)] for name in schema.PUSHABLE
}


def validate_customer_fields(values: Mapping[str, Any]) -> None:
    """Check every validated field present in ``values`` (others are ignored).

    Raises one ``ValidationError`` whose ``error_dict`` maps each failing field to its errors.
    """
    errors: dict[str, list[ValidationError]] = {}
    for name, value in values.items():
        for validator in FIELD_VALIDATORS.get(name, ()):
            try:
                validator(value)
            except ValidationError as exc:
                errors.setdefault(name, []).extend(exc.error_list)
    if errors:
        raise ValidationError(errors)
