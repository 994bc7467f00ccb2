"""Cross-field rules of seed 004's pipes: inpainting masks and ControlNet conditioning."""

from __future__ import annotations

from shared.catalog import BUILTIN_DETECTORS, ModelCatalog, ModelSpec


def check_controls(data: dict, model: ModelSpec, catalog: ModelCatalog, kind: str, errors: dict) -> None:
    """Name every inconsistent inpainting or ControlNet field in `errors`."""
    if data.get("mask") is not None and data.get("image_painted") is not None:
        errors["image_painted"] = "give mask or image_painted, not both"
    name = data.get("controlnet")
    if name is None:
        for field in ("control_image", "control_detector"):
            if data.get(field) is not None:
                errors[field] = "needs controlnet (a ControlNet from GET /models)"
        return
    spec = catalog.controlnets.get(name)
    if spec is None:
        known = ", ".join(catalog.controlnets) or "none are configured"
        errors["controlnet"] = f"unknown ControlNet '{name}' (GET /models lists them: {known})"
        return
    if spec.family != model.family:
        errors["controlnet"] = f"ControlNet '{name}' is for {spec.family} models; '{model.name}' is {model.family}"
    if data.get("model_list"):
        errors["controlnet"] = "a ControlNet needs one model; give model, not model_list"
    if data.get("control_image") is None and kind != "img2img":
        errors["control_image"] = "is required with controlnet (on /img2img the input image can be used instead)"
    detector = data.get("control_detector")
    if detector is None and data.get("control_image") is None:
        detector = spec.detector
    if detector not in (None, "none") and detector not in BUILTIN_DETECTORS and detector not in catalog.detectors:
        field = "control_detector" if data.get("control_detector") else "controlnet"
        errors[field] = (
            f"the {detector} detector is not configured on this server (models.yaml `detectors: {detector}:`); "
            "send a ready control_image instead"
        )
