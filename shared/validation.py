"""Turn a request body into validated job parameters, naming every bad field."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from marshmallow import ValidationError
from PIL import Image

from shared.catalog import ModelCatalog, ModelSpec
from shared.controls import check_controls
from shared.images import InputImageError, decode_base64_image
from shared.samplers import sampler_spec
from shared.schemas import MAX_SEED, build_schema
from shared.templates import RequestTemplate

MODEL_DEFAULTED = ("width", "height", "steps", "guidance_scale", "sampler", "timestep_spacing")
# Fields that travel with the request but are not generation parameters (images travel as storage keys).
NOT_PARAMS = ("api_key",)


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
    # Every image field given (init_img, mask, image_painted, control_image), decoded.
    images: dict[str, Image.Image] = field(default_factory=dict)


class RequestValidator:
    """Validates one request type against its template and the model catalog."""

    def __init__(self, template: RequestTemplate, catalog: ModelCatalog, max_input_pixels: int):
        self.template = template
        self.catalog = catalog
        self.max_input_pixels = max_input_pixels
        self.schema = build_schema(template)
        self.aliases = template.aliases
        self.image_fields = tuple(name for name, spec in template.fields.items() if spec["type"] == "image")

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
        self._prompt_or_list(data, errors)
        model = self._model(data, warnings, errors, used_names)
        models = self._model_list(data, model, errors, used_names)
        model = models[0] if models else model
        if model is not None and not errors:
            self._loras(data, models, errors)
        if errors:
            raise RequestInvalid(errors)
        for key in MODEL_DEFAULTED:
            if data.get(key) is None:
                data[key] = model.default(key)
        if data["seed"] is None:
            data["seed"] = secrets.randbelow(2**32)
        data["model"] = model.name
        if data.get("model_list"):
            data["model_list"] = [spec.name for spec in models]
        approximation = sampler_spec(data["sampler"]).approximation
        if approximation:
            warnings.append(f"sampler '{data['sampler']}': {approximation}")
        self._cross_checks(data, errors, used_names)
        check_controls(data, model, self.catalog, self.template.name, errors)
        images = self._images(data, errors)
        if errors:
            raise RequestInvalid(errors)
        self._not_applied_warnings(data, warnings)
        api_key = data.get("api_key")
        params = {k: v for k, v in data.items() if k not in NOT_PARAMS and k not in self.image_fields}
        return ValidatedRequest(
            self.template.name, model, params, warnings, images.get("init_img"), api_key, images=images
        )

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

    def _prompt_or_list(self, data: dict, errors: dict) -> None:
        if data.get("prompt") is None and not data.get("prompt_list"):
            errors["prompt"] = "is required (or give prompt_list)"
        elif data.get("prompt") is not None and data.get("prompt_list"):
            errors["prompt_list"] = "give prompt or prompt_list, not both"

    def _model_list(self, data: dict, model: ModelSpec | None, errors: dict, used_names: dict) -> list[ModelSpec]:
        """Random diffusion's models; the first one also routes the job and gives the defaults."""
        names = data.get("model_list")
        if not names:
            return [model] if model is not None else []
        name = used_names.get("model_list", "model_list")
        if "model" in data and data["model"] not in ("default", None) and model is not None:
            errors[name] = "give model or model_list, not both"
            return []
        specs = [self.catalog.resolve(n) for n in names]
        unknown = [n for n, spec in zip(names, specs, strict=True) if spec is None]
        if unknown:
            errors[name] = f"unknown models {unknown}; GET /models lists the models and aliases"
            return []
        families = {spec.family for spec in specs}
        if len(families) > 1 and data.get("loras"):
            errors[name] = "LoRAs need models of one family"
        data["model"] = specs[0].name
        return specs

    def _loras(self, data: dict, models: list[ModelSpec], errors: dict) -> None:
        for lora in data.get("loras") or []:
            spec = self.catalog.loras.get(lora["name"])
            if spec is None:
                errors["loras"] = f"unknown LoRA '{lora['name']}'; GET /models lists the LoRAs"
                return
            for model in models:
                if spec.family != model.family:
                    errors["loras"] = (
                        f"LoRA '{spec.name}' is for {spec.family} models; '{model.name}' is {model.family}"
                    )
                    return

    def _cross_checks(self, data: dict, errors: dict, used_names: dict) -> None:
        if "strength" in data and int(data["steps"] * data["strength"]) < 1:
            name = used_names.get("strength", "strength")
            errors[name] = (
                f"{name} x steps must be at least 1 (got {data['strength']} x {data['steps']}); raise one of them"
            )
        if data["seed"] + data["n_samples"] * data["n_iter"] - 1 > MAX_SEED:
            errors["seed"] = "seed + number of images must stay below 2^64"

    def _images(self, data: dict, errors: dict) -> dict[str, Image.Image]:
        images = {}
        for name in self.image_fields:
            if data.get(name) is None:
                continue
            try:
                images[name] = decode_base64_image(data[name], self.max_input_pixels)
            except InputImageError as exc:
                errors[name] = str(exc)
        return images

    def _not_applied_warnings(self, data: dict, warnings: list[str]) -> None:
        if data.get("skip_save"):
            warnings.append("'skip_save' was ignored: results are always stored so that status links work")


def _first(messages) -> str:
    if isinstance(messages, dict):
        return "; ".join(f"{k}: {_first(v)}" for k, v in messages.items())
    if isinstance(messages, list):
        return str(messages[0]) if len(messages) == 1 else "; ".join(map(str, messages))
    return str(messages)
