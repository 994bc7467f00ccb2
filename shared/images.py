"""Image decoding (untrusted base64 input) and encoding (results with their generation parameters)."""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings

from PIL import ExifTags, Image, ImageOps, PngImagePlugin

# Only these decoders ever see request bytes: no FITS, PSD, SVG, EPS or other exotic parsers.
ALLOWED_INPUT_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[\w=.+-]+)*;base64,", re.IGNORECASE)
ALLOWED_DATA_MIME = {"image/png", "image/jpeg", "image/jpg", "image/webp", "image/bmp", "image/gif"}

CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}
EXTENSIONS = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "webp": "webp"}
USER_COMMENT_TAG = 0x9286


class InputImageError(ValueError):
    """The input image cannot be used; the message says why."""


def decode_base64_image(text: str, max_pixels: int) -> Image.Image:
    """Decode a base64 image (optionally a data: URL) into an RGB image, refusing anything unsafe."""
    match = DATA_URL.match(text)
    if match:
        mime = (match.group("mime") or "").lower()
        if mime not in ALLOWED_DATA_MIME:
            raise InputImageError(f"data URL type {mime or '(none)'!r} is not an accepted image type")
        text = text[match.end() :]
    elif text.startswith(("http://", "https://", "file:", "ftp://")):
        raise InputImageError("must be base64 image data; URLs are never fetched")
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputImageError("is not valid base64") from exc
    if not raw:
        raise InputImageError("is empty")
    return open_image_bytes(raw, max_pixels)


def open_image_bytes(raw: bytes, max_pixels: int) -> Image.Image:
    """Open image bytes with an allow-list of formats, checking the size before decoding pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw), formats=ALLOWED_INPUT_FORMATS)
            width, height = image.size
            if width * height > max_pixels:
                raise InputImageError(f"is {width}x{height} pixels; at most {max_pixels} pixels are accepted")
            if getattr(image, "n_frames", 1) > 1:
                raise InputImageError("is animated; send a single still image")
            image.load()
    except InputImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputImageError(f"is too large to decode safely ({exc})") from exc
    except Image.UnidentifiedImageError as exc:
        raise InputImageError("is not an image in an accepted format (PNG, JPEG, WebP, BMP, still GIF)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputImageError(f"could not be decoded (truncated or corrupt: {exc})") from exc
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Normalise orientation, bit depth, palette, alpha and colour space to 8-bit RGB."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v / 256).convert("L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB")


def encode_image(image: Image.Image, fmt: str, parameters: str, quality: int = 92) -> bytes:
    """Encode `image` as png/jpg/webp with `parameters` where AUTOMATIC1111 puts them.

    PNG: a tEXt chunk named "parameters"; JPEG and WebP: the EXIF UserComment, so other tools
    (A1111's PNG Info, exiftool) read the settings back.
    """
    out = io.BytesIO()
    if fmt == "png":
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", parameters)
        image.save(out, format="PNG", pnginfo=info)
    else:
        exif = Image.Exif()
        exif.get_ifd(ExifTags.IFD.Exif)[USER_COMMENT_TAG] = b"UNICODE\x00" + parameters.encode("utf-16-be")
        pil_format = "JPEG" if EXTENSIONS[fmt] == "jpg" else "WEBP"
        image.save(out, format=pil_format, quality=quality, exif=exif.tobytes())
    return out.getvalue()


def read_parameters(data: bytes) -> str | None:
    """Read back the generation parameters written by encode_image."""
    image = Image.open(io.BytesIO(data))
    if image.format == "PNG":
        return image.info.get("parameters")
    comment = image.getexif().get_ifd(ExifTags.IFD.Exif).get(USER_COMMENT_TAG)
    if comment and comment.startswith(b"UNICODE\x00"):
        return comment[8:].decode("utf-16-be")
    return None


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
