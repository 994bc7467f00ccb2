"""Marshmallow request schemas built from the templates, with strict JSON types.

Python's json and marshmallow are lenient in ways a public API must not be: `true` is an int,
"512" becomes 512, NaN is a float. The fields below accept exactly the JSON type they name.
"""

from __future__ import annotations

import functools
import math
import re
import urllib.parse

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate

from shared.templates import RequestTemplate

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# The storage area of jobs without user_id and thread_id (seed 000's "cache").
RESERVED_ID = "cache"
MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_SEED = 2**64 - 1


def check_text(value: str) -> str:
    """Refuse text that cannot be stored or tokenized: NUL bytes and lone surrogates."""
    if "\x00" in value:
        raise ValidationError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError("must be valid Unicode text (found a lone surrogate)") from exc
    return value


class StrictString(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError("must be a string")
        return check_text(value)


class StrictInteger(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("must be an integer (no quotes, no decimals)")
        return value


class StrictNumber(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("must be a number")
        if not math.isfinite(value):
            raise ValidationError("must be a finite number")
        return float(value)


class StrictBoolean(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("must be true or false")
        return value


class SeedField(fields.Field):
    """An integer seed; null or false asks for a random one (as in the seed-001 API)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value is None or value is False:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("must be an integer, null or false")
        if not 0 <= value <= MAX_SEED:
            raise ValidationError(f"must be between 0 and {MAX_SEED}")
        return value


class ModelField(fields.Field):
    """A model name; the seed-001 mapping form ({"sd14": "model.ckpt"}) is accepted and ignored."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, dict):
            return value
        if not isinstance(value, str):
            raise ValidationError("must be a model name from GET /models")
        if not MODEL_NAME_PATTERN.match(value):
            raise ValidationError("must be a model name from GET /models (letters, digits, '.', '_', '-')")
        return value


class IdField(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not ID_PATTERN.match(value):
            raise ValidationError("must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'")
        if value == RESERVED_ID:
            raise ValidationError(f"'{RESERVED_ID}' is reserved for jobs logged without a user and thread")
        return value


class StringList(fields.Field):
    """A JSON array of non-blank strings (e.g. prompt_list)."""

    def __init__(self, *args, max_length: int = 4000, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_length = max_length

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list):
            raise ValidationError("must be a list of strings")
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise ValidationError(f"item {index} must be a non-empty string")
            if len(item) > self.max_length:
                raise ValidationError(f"item {index} is longer than {self.max_length} characters")
            check_text(item)
        return value


class ModelList(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list) or not all(isinstance(v, str) and MODEL_NAME_PATTERN.match(v) for v in value):
            raise ValidationError("must be a list of model names from GET /models")
        return value


class LoraList(fields.Field):
    """[{"name": "...", "weight": 1.0}, ...] (seed 004's loras, with a weight each)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list):
            raise ValidationError('must be a list of {"name": ..., "weight": ...}')
        loras = []
        for index, item in enumerate(value):
            if isinstance(item, str):
                item = {"name": item}
            if not isinstance(item, dict) or set(item) - {"name", "weight"}:
                raise ValidationError(f'item {index} must be {{"name": ..., "weight": ...}}')
            name, weight = item.get("name"), item.get("weight", 1.0)
            if not isinstance(name, str) or not MODEL_NAME_PATTERN.match(name):
                raise ValidationError(f"item {index}: name must be a LoRA name from GET /models")
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
                raise ValidationError(f"item {index}: weight must be a number")
            if not -4 <= weight <= 4:
                raise ValidationError(f"item {index}: weight must be between -4 and 4")
            loras.append({"name": name, "weight": float(weight)})
        if len({lora["name"] for lora in loras}) != len(loras):
            raise ValidationError("names a LoRA twice")
        return loras


class WebhookUrl(fields.Field):
    """An http(s) URL with a host and no credentials. Where it points is checked when the job is
    submitted (shared/webhooks.py), since that needs DNS and the server's settings."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError("must be an http or https URL")
        if len(value) > 2048:
            raise ValidationError("must be at most 2048 characters long")
        check_text(value)
        try:
            parts = urllib.parse.urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise ValidationError("must be an http or https URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError("must be an http or https URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValidationError("must not contain credentials")
        if any(ch.isspace() for ch in value):
            raise ValidationError("must not contain spaces")
        return value


class ChoiceList(fields.Field):
    """A non-empty JSON array of distinct strings from the template's `choices`."""

    def __init__(self, *args, choices: tuple[str, ...] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.choices = choices

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise ValidationError(f"must be a non-empty list of: {', '.join(self.choices)}")
        unknown = [v for v in value if v not in self.choices]
        if unknown:
            raise ValidationError(f"'{unknown[0]}' is not one of: {', '.join(self.choices)}")
        if len(set(value)) != len(value):
            raise ValidationError("names an item twice")
        return value


class MultipleOf(validate.Validator):
    def __init__(self, step: int):
        self.step = step

    def __call__(self, value):
        if value % self.step:
            raise ValidationError(f"must be a multiple of {self.step}")
        return value


class NotBlank(validate.Validator):
    def __call__(self, value):
        if not value.strip():
            raise ValidationError("must not be empty or only spaces")
        return value


FIELD_TYPES = {
    "string": StrictString,
    "integer": StrictInteger,
    "number": StrictNumber,
    "boolean": StrictBoolean,
    "seed": SeedField,
    "model": ModelField,
    "id": IdField,
    "image": StrictString,
    "string_list": StringList,
    "model_list": ModelList,
    "loras": LoraList,
    "webhook_url": WebhookUrl,
    "choice_list": ChoiceList,
}


def _validators(spec: dict) -> list:
    checks: list = []
    if "enum" in spec:
        checks.append(validate.OneOf(spec["enum"], error="must be one of: {choices}"))
    lo, hi = spec.get("minimum"), spec.get("maximum")
    if spec.get("exclusive_minimum") is not None:
        checks.append(
            validate.Range(
                min=spec["exclusive_minimum"],
                max=hi,
                min_inclusive=False,
                error="must be greater than {min} and at most {max}",
            )
        )
    elif lo is not None or hi is not None:
        checks.append(validate.Range(min=lo, max=hi, error="must be between {min} and {max}"))
    if "multiple_of" in spec:
        checks.append(MultipleOf(spec["multiple_of"]))
    if spec["type"] in ("string_list", "model_list", "loras") and ("min_items" in spec or "max_items" in spec):
        checks.append(
            validate.Length(
                min=spec.get("min_items"), max=spec.get("max_items"), error="must have {min} to {max} items"
            )
        )
    elif spec.get("min_length") or spec.get("max_length"):
        checks.append(
            validate.Length(
                min=spec.get("min_length"), max=spec.get("max_length"), error="must be {min} to {max} characters long"
            )
        )
    if spec["type"] == "string" and spec.get("min_length"):
        checks.append(NotBlank())
    return checks


def _with_max_length(max_length: int):
    def make(**kwargs):
        return StringList(max_length=max_length, **kwargs)

    return make


def build_schema(template: RequestTemplate, strict_unknown: bool = True) -> Schema:
    """A marshmallow schema whose fields, defaults and constraints come from one template."""
    declared = {}
    for name, spec in template.fields.items():
        kind = FIELD_TYPES[spec["type"]]
        if spec["type"] == "string_list":
            kind = _with_max_length(spec.get("max_length", 4000))
        elif spec["type"] == "choice_list":
            kind = functools.partial(ChoiceList, choices=tuple(spec["choices"]))
        messages = {"required": "is required", "null": "must not be null"}
        if spec.get("required"):
            declared[name] = kind(required=True, validate=_validators(spec), error_messages=messages)
        else:
            declared[name] = kind(
                load_default=spec.get("default"),
                allow_none=spec.get("default") is None,
                validate=_validators(spec),
                error_messages=messages,
            )
    schema_cls = Schema.from_dict(declared, name=f"{template.name.title()}Request")
    return schema_cls(unknown=RAISE if strict_unknown else EXCLUDE)
