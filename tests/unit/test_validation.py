"""Every template field and rule, checked through the validator the API uses."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from shared.catalog import ModelCatalog
from shared.schemas import FIELD_TYPES
from shared.settings import PROJECT_ROOT
from shared.templates import load_templates
from shared.validation import RequestInvalid, RequestValidator

DATA = Path(__file__).resolve().parents[1] / "data"
TEMPLATES = load_templates(PROJECT_ROOT / "templates")
CATALOG = ModelCatalog.load(PROJECT_ROOT / "models.yaml")


def validator(kind: str = "generate") -> RequestValidator:
    return RequestValidator(TEMPLATES[kind], CATALOG, max_input_pixels=4096 * 4096)


def b64(image: Image.Image, fmt: str = "PNG", **save) -> str:
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return base64.b64encode(out.getvalue()).decode()


def errors_of(body: dict, kind: str = "generate") -> dict:
    with pytest.raises(RequestInvalid) as caught:
        validator(kind).validate(body)
    return caught.value.fields


def test_every_template_field_has_a_type_and_a_default():
    for template in TEMPLATES.values():
        for name, spec in template.fields.items():
            assert spec["type"] in FIELD_TYPES, name
            assert "default" in spec, name
            assert spec.get("description"), name


def test_defaults_come_from_template_then_model():
    result = validator().validate({"prompt": "a cat"})
    tiny = CATALOG.resolve("tiny")
    assert result.params["width"] == tiny.default("width") == 256
    assert result.params["steps"] == 20 and result.params["sampler"] == "ddim"
    assert result.params["n_samples"] == 1 and result.params["format"] == "png"
    assert result.params["negative_prompt"] == "" and result.params["skip_grid"] is True
    assert 0 <= result.params["seed"] < 2**32  # resolved, so it can be reported and reused
    assert result.warnings == []


@pytest.mark.parametrize(
    ("alias", "canonical", "value"),
    [
        ("ddim_steps", "steps", 12),
        ("scale", "guidance_scale", 3.0),
        ("H", "height", 128),
        ("W", "width", 192),
        ("ckpt", "model", "tiny"),
    ],
)
def test_seed001_names_are_aliases(alias, canonical, value):
    assert validator().validate({"prompt": "x", alias: value}).params[canonical] == value


def test_denoising_strength_alias():
    body = {"prompt": "x", "init_img": b64(Image.new("RGB", (8, 8))), "denoising_strength": 0.4}
    assert validator("img2img").validate(body).params["strength"] == 0.4


def test_model_aliases_and_default_resolve():
    assert validator().validate({"prompt": "x", "ckpt": "sd1.4"}).params["model"] == "sd14"
    assert validator().validate({"prompt": "x", "model": "default"}).params["model"] == "tiny"
    sd21v = validator().validate({"prompt": "x", "model": "sd21v"}).params
    assert (sd21v["width"], sd21v["height"]) == (768, 768)


def test_seed001_examples_pass_as_written_with_warnings():
    for kind, name in (("generate", "seed001-generate.json"), ("img2img", "seed001-img2img.json")):
        body = json.loads((DATA / name).read_text())
        result = validator(kind).validate(body)
        text = " ".join(result.warnings)
        for ignored in ("type", "outdir", "config", "device", "precision", "from-file", "C", "f", "unet_bs", "turbo"):
            assert f"'{ignored}' was ignored" in text
        assert result.params["seed"] == 42
        assert "api_key" not in result.params and result.api_key == "lksalsdfjliadfds"
    # Its img2img example names checkpoint files in a mapping: ignored, default model used.
    img2img = validator("img2img").validate(json.loads((DATA / "seed001-img2img.json").read_text()))
    assert img2img.params["model"] == "tiny"
    assert any("mapping of checkpoint files" in w for w in img2img.warnings)
    assert img2img.params["sampler"] == "plms" and img2img.params["n_iter"] == 2


@pytest.mark.parametrize("seed", [None, False])
def test_null_or_false_seed_is_random(seed):
    seeds = {validator().validate({"prompt": "x", "seed": seed}).params["seed"] for _ in range(5)}
    assert len(seeds) > 1


def test_seed_range_edges():
    assert validator().validate({"prompt": "x", "seed": 0}).params["seed"] == 0
    assert validator().validate({"prompt": "x", "seed": 2**64 - 1}).params["seed"] == 2**64 - 1
    assert "seed" in errors_of({"prompt": "x", "seed": 2**64 - 1, "n_samples": 2})
    assert "seed" in errors_of({"prompt": "x", "seed": True})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("prompt", ""),
        ("prompt", "  \n"),
        ("prompt", 5),
        ("prompt", None),
        ("prompt", "x" * 4001),
        ("prompt", "\ud800"),
        ("negative_prompt", None),
        ("negative_prompt", ["a"]),
        ("width", 0),
        ("width", -8),
        ("width", 100000),
        ("width", 500),
        ("width", 512.5),
        ("width", "512"),
        ("width", True),
        ("height", 2056),
        ("steps", 0),
        ("steps", -1),
        ("steps", 10**9),
        ("steps", 1.0),
        ("guidance_scale", float("nan")),
        ("guidance_scale", float("inf")),
        ("guidance_scale", "7"),
        ("guidance_scale", 51),
        ("guidance_scale", False),
        ("n_samples", 0),
        ("n_samples", 9),
        ("n_iter", 0),
        ("n_iter", 1000),
        ("seed", -1),
        ("seed", 2**64),
        ("seed", "42"),
        ("seed", 4.2),
        ("sampler", "magic"),
        ("format", "gif"),
        ("format", "PNG"),
        ("ddim_eta", -0.1),
        ("ddim_eta", 2),
        ("skip_grid", "false"),
        ("skip_grid", 0),
        ("return_base64", 1),
        ("synchronous_request", "yes"),
        ("fixed_code", None),
        ("n_rows", -1),
        ("user_id", "../x"),
        ("user_id", "a" * 65),
        ("thread_id", "a b"),
        ("model", 5),
        ("model", "../x.ckpt"),
        ("model", "x/y"),
        ("model", "unknown-model"),
        ("api_key", 5),
        ("output_dir", "/tmp"),
        ("filename", "x.png"),
    ],
)
def test_bad_generate_fields_are_named(field, value):
    assert field in errors_of({"prompt": "ok", **{field: value}} if field != "prompt" else {field: value})


def test_every_bad_field_is_named_at_once():
    errors = errors_of({"prompt": "", "width": 3, "steps": 0, "bogus": 1})
    assert set(errors) == {"prompt", "width", "steps", "bogus"}
    assert "unknown field" in errors["bogus"]


def test_alias_and_name_together_is_refused():
    assert "given twice" in errors_of({"prompt": "x", "steps": 10, "ddim_steps": 10})["ddim_steps"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("strength", 0),
        ("strength", 1.01),
        ("strength", -0.5),
        ("noise_multiplier", 3),
        ("upscale", "no"),
        ("init_img", 5),
    ],
)
def test_bad_img2img_fields(field, value):
    body = {"prompt": "x", "init_img": b64(Image.new("RGB", (8, 8))), field: value}
    assert field in errors_of(body, "img2img")


def test_strength_times_steps_must_give_a_step():
    body = {"prompt": "x", "init_img": b64(Image.new("RGB", (8, 8))), "strength": 0.05, "steps": 10}
    assert "at least 1" in errors_of(body, "img2img")["strength"]


def test_skip_save_and_approximate_samplers_warn():
    warnings = " ".join(validator().validate({"prompt": "x", "skip_save": True, "sampler": "k_dpm_fast"}).warnings)
    assert "'skip_save' was ignored" in warnings and "sampler 'k_dpm_fast': diffusers has no DPM fast" in warnings
    assert validator().validate({"prompt": "x", "sampler": "k_dpmpp_2m_ka"}).warnings == []


# -- the input image -----------------------------------------------------------------------


def zip_bytes() -> str:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.txt", "hello")
    return base64.b64encode(out.getvalue()).decode()


def huge_header_png() -> str:
    """A tiny PNG whose header claims 50000x50000 pixels."""
    out = io.BytesIO()
    Image.new("L", (1, 1)).save(out, "PNG")
    raw = bytearray(out.getvalue())
    import struct
    import zlib

    raw[16:24] = struct.pack(">II", 50000, 50000)
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    return base64.b64encode(bytes(raw)).decode()


def animated_gif() -> str:
    frames = [Image.new("RGB", (8, 8), color) for color in ("red", "green", "blue")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    return base64.b64encode(out.getvalue()).decode()


@pytest.mark.parametrize(
    ("label", "value", "message"),
    [
        ("not base64", "!!!", "not valid base64"),
        ("empty", "", "empty"),
        ("data URL of text", "data:text/plain;base64,aGVsbG8=", "not an accepted image type"),
        ("a zip", zip_bytes(), "not an image in an accepted format"),
        ("truncated PNG", b64(Image.new("RGB", (64, 64), "red"))[:120], "could not be decoded"),
        ("huge header", huge_header_png(), "pixels"),
        ("animated GIF", animated_gif(), "animated"),
        ("URL", "https://example.com/cat.png", "URLs are never fetched"),
        ("TIFF", b64(Image.new("RGB", (8, 8)), "TIFF"), "not an image in an accepted format"),
    ],
)
def test_bad_input_images(label, value, message):
    error = errors_of({"prompt": "x", "init_img": value}, "img2img")["init_img"]
    assert message in error, (label, error)


@pytest.mark.parametrize(
    "image",
    [
        Image.new("CMYK", (16, 8), (0, 255, 255, 0)),
        Image.new("P", (16, 8), 3),
        Image.new("RGBA", (16, 8), (255, 0, 0, 0)),
        Image.new("LA", (16, 8), (10, 128)),
        Image.new("I;16", (16, 8), 40000),
        Image.new("L", (16, 8), 7),
    ],
    ids=lambda im: im.mode,
)
def test_input_modes_are_normalised_to_rgb(image):
    fmt = "JPEG" if image.mode == "CMYK" else "PNG"
    result = validator("img2img").validate({"prompt": "x", "init_img": b64(image, fmt)})
    assert result.init_image.mode == "RGB" and result.init_image.size == (16, 8)


def test_transparent_pixels_become_white_and_exif_rotation_is_applied():
    result = validator("img2img").validate({"prompt": "x", "init_img": b64(Image.new("RGBA", (4, 4), (0, 0, 0, 0)))})
    assert result.init_image.getpixel((0, 0)) == (255, 255, 255)
    rotated = Image.new("RGB", (16, 8), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    upright = validator("img2img").validate({"prompt": "x", "init_img": b64(rotated, "JPEG", exif=exif)})
    assert upright.init_image.size == (8, 16)


def test_data_url_prefix_is_accepted():
    value = "data:image/png;base64," + b64(Image.new("RGB", (8, 8)))
    assert validator("img2img").validate({"prompt": "x", "init_img": value}).init_image.size == (8, 8)


def test_body_must_be_an_object():
    for body in ([], "x", None, 5):
        assert "body" in errors_of(body)


# -- issue 4's controls --------------------------------------------------------------------

LORA_CATALOG = ModelCatalog.from_dict(
    {
        "models": {
            "tiny": {"source": "builtin:tiny"},
            "tiny-b": {"source": "builtin:tiny"},
            "xl": {"source": "builtin:tiny-sdxl", "family": "sdxl"},
        },
        "loras": {"style": {"source": "style.safetensors", "family": "sd1"}},
    }
)


def lora_validator() -> RequestValidator:
    return RequestValidator(TEMPLATES["generate"], LORA_CATALOG, max_input_pixels=4096 * 4096)


def test_prompt_or_prompt_list():
    result = validator().validate({"prompt_list": ["cat", "dog"]})
    assert result.params["prompt_list"] == ["cat", "dog"] and result.params["prompt"] is None
    assert "prompt" in errors_of({"negative_prompt": "x"})
    assert "prompt_list" in errors_of({"prompt": "x", "prompt_list": ["y"]})
    assert "prompt_list" in errors_of({"prompt_list": []})
    assert "prompt_list" in errors_of({"prompt_list": ["ok", "  "]})
    assert "prompt_list" in errors_of({"prompt_list": "cat"})


def test_model_list_resolves_and_routes_by_its_first_model():
    result = lora_validator().validate({"prompt": "x", "models": ["tiny-b", "tiny"]})
    assert result.params["model_list"] == ["tiny-b", "tiny"] and result.model.name == "tiny-b"
    assert "unknown models" in errors_of({"prompt": "x", "model_list": ["tiny", "nope"]})["model_list"]
    assert "not both" in errors_of({"prompt": "x", "model": "sd14", "model_list": ["tiny"]})["model_list"]


def test_loras_are_declared_and_match_the_family():
    result = lora_validator().validate(
        {
            "prompt": "x",
            "loras": [
                {"name": "style", "weight": 0.7},
            ],
        }
    )
    assert result.params["loras"] == [{"name": "style", "weight": 0.7}]
    assert lora_validator().validate({"prompt": "x", "loras": ["style"]}).params["loras"][0]["weight"] == 1.0
    with pytest.raises(RequestInvalid) as caught:
        lora_validator().validate({"prompt": "x", "model": "xl", "loras": [{"name": "style"}]})
    assert "is for sd1 models" in caught.value.fields["loras"]
    with pytest.raises(RequestInvalid) as caught:
        lora_validator().validate({"prompt": "x", "loras": [{"name": "other"}]})
    assert "unknown LoRA" in caught.value.fields["loras"]
    for bad in (
        [{"name": "style", "weight": 9}],
        [{"name": "style", "weight": "1"}],
        [{"name": "../x"}],
        [{"name": "style", "extra": 1}],
        [{"name": "style"}, {"name": "style"}],
        {"name": "style"},
    ):
        with pytest.raises(RequestInvalid) as caught:
            lora_validator().validate({"prompt": "x", "loras": bad})
        assert "loras" in caught.value.fields


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("clip_skip", -1),
        ("clip_skip", 11),
        ("clip_skip", 1.5),
        ("quality", 0),
        ("quality", 101),
        ("timestep_spacing", "sometimes"),
        ("sampler", "EulerScheduler"),
    ],
)
def test_bad_new_generate_fields(field, value):
    assert field in errors_of({"prompt": "x", field: value})


def test_new_fields_defaults_and_scheduler_class_names():
    params = (
        validator()
        .validate({"prompt": "x", "sampler": "EulerAncestralDiscreteScheduler", "timestep_spacing": "trailing"})
        .params
    )
    assert params["clip_skip"] == 0 and params["quality"] == 92 and params["loras"] == []
    assert params["sampler"] == "EulerAncestralDiscreteScheduler" and params["timestep_spacing"] == "trailing"


def test_img2img_resize_mode():
    body = {"prompt": "x", "init_img": b64(Image.new("RGB", (8, 8)))}
    assert validator("img2img").validate(body).params["resize_mode"] == "stretch"
    assert "resize_mode" in errors_of({**body, "resize_mode": "zoom"}, "img2img")


def test_guidance_zero_and_negative_are_accepted():
    assert validator().validate({"prompt": "x", "scale": 0}).params["guidance_scale"] == 0
    assert validator().validate({"prompt": "x", "scale": -5}).params["guidance_scale"] == -5
