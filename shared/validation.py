"""Turn a request body into validated job parameters, naming every bad field."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from marshmallow import ValidationError
from PIL import Image

from shared.catalog import ModelCatalog, ModelSpec
from shared.images import InputImageError, decode_base64_image
from shared.schemas import MAX_SEED, build_schema
from shared.templates import RequestTemplate

MODEL_DEFAULTED = ("width", "height", "steps", "guidance_scale", "sampler")
# Fields that travel with the request but are not generation parameters.
NOT_PARAMS = ("api_key", "init_img")
NOT_APPLIED_YET = {
    "upscale": False,
    "post_upscale": False,
    "noise_multiplier": 1.0,
}


class RequestInvalid(ValueError):
    """The request cannot be accepted; `fields` maps each bad field to what is wrong with it."""

    def __init__(self, fields: dict[str, str], message: str | None = None):
        self.fields = fields
        names = ", ".join(sorted(fields))
        super().__init__(message or f"invalid request: check {names}")


@dataclass
class ValidatedRequest:
    kind: str
    model: ModelSpec
    params: dict
    warnings: list[str] = field(default_factory=list)
    init_image: Image.Image | None = None
    api_key: str | None = None


class RequestValidator:
    """Validates one request type against its template and the model catalog."""

    def __init__(self, template: RequestTemplate, catalog: ModelCatalog, max_input_pixels: int):
        self.template = template
        self.catalog = catalog
        self.max_input_pixels = max_input_pixels
        self.schema = build_schema(template)
        self.aliases = template.aliases

    def validate(self, body) -> ValidatedRequest:
        if not isinstance(body, dict):
            raise RequestInvalid({"body": "must be a JSON object"}, "the request body must be a JSON object")
        body, used_names, warnings, errors = self._normalise(body)
        try:
            data = self.schema.load(body)
        except ValidationError as exc:
            for name, messages in exc.messages.items():
                message = _first(messages)
                if message == "Unknown field.":
                    message = f"unknown field; templates/{self.template.name}.json lists the accepted fields"
                errors[used_names.get(name, name)] = message
            raise RequestInvalid(errors) from None
        if errors:
            raise RequestInvalid(errors)
        model = self._model(data, warnings, errors, used_names)
        if errors:
            raise RequestInvalid(errors)
        for key in MODEL_DEFAULTED:
            if data.get(key) is None:
                data[key] = model.default(key)
        if data["seed"] is None:
            data["seed"] = secrets.randbelow(2**32)
        data["model"] = model.name
        self._cross_checks(data, errors, used_names)
        init_image = self._init_image(data, errors)
        if errors:
            raise RequestInvalid(errors)
        self._not_applied_warnings(data, warnings)
        api_key = data.get("api_key")
        params = {k: v for k, v in data.items() if k not in NOT_PARAMS}
        return ValidatedRequest(self.template.name, model, params, warnings, init_image, api_key)

    def _normalise(self, body: dict):
        """Map aliases to canonical names and set aside fields that name server paths or hardware."""
        out: dict = {}
        used_names: dict[str, str] = {}
        warnings: list[str] = []
        errors: dict[str, str] = {}
        for name, value in body.items():
            if name in self.template.ignored:
                warnings.append(f"'{name}' was ignored: {self.template.ignored[name]}")
                continue
            canonical = self.aliases.get(name, name)
            if canonical in out:
                errors[name] = f"given twice, as '{used_names.get(canonical, canonical)}' and '{name}'"
                continue
            if canonical != name:
                used_names[canonical] = name
            out[canonical] = value
        return out, used_names, warnings, errors

    def _model(self, data: dict, warnings: list[str], errors: dict, used_names: dict) -> ModelSpec | None:
        requested = data["model"]
        if isinstance(requested, dict):
            warnings.append(
                f"'{used_names.get('model', 'model')}' as a mapping of checkpoint files was ignored: "
                "requests name models from GET /models, never files; the default model was used"
            )
            requested = "default"
        spec = self.catalog.resolve(requested)
        if spec is None:
            errors[used_names.get("model", "model")] = (
                f"unknown model '{requested}'; GET /models lists the models and aliases"
            )
        return spec

    def _cross_checks(self, data: dict, errors: dict, used_names: dict) -> None:
        if "strength" in data and int(data["steps"] * data["strength"]) < 1:
            name = used_names.get("strength", "strength")
            errors[name] = (
                f"{name} x steps must be at least 1 (got {data['strength']} x {data['steps']}); raise one of them"
            )
        if data["seed"] + data["n_samples"] * data["n_iter"] - 1 > MAX_SEED:
            errors["seed"] = "seed + number of images must stay below 2^64"

    def _init_image(self, data: dict, errors: dict) -> Image.Image | None:
        if "init_img" not in data:
            return None
        try:
            return decode_base64_image(data["init_img"], self.max_input_pixels)
        except InputImageError as exc:
            errors["init_img"] = str(exc)
            return None

    def _not_applied_warnings(self, data: dict, warnings: list[str]) -> None:
        for name, neutral in NOT_APPLIED_YET.items():
            if name in data and data[name] != neutral:
                warnings.append(f"'{name}' is accepted but not applied yet; the image was made without it")
        if data.get("skip_save"):
            warnings.append("'skip_save' was ignored: results are always stored so that status links work")


def _first(messages) -> str:
    if isinstance(messages, dict):
        return "; ".join(f"{k}: {_first(v)}" for k, v in messages.items())
    if isinstance(messages, list):
        return str(messages[0]) if len(messages) == 1 else "; ".join(map(str, messages))
    return str(messages)
