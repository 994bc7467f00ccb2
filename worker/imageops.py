"""Image operations around img2img: fitting the input to the requested size, and upscaling."""

from __future__ import annotations

from PIL import Image, ImageOps

RESIZE_MODES = ("stretch", "crop", "fill")


def fit(image: Image.Image, width: int, height: int, mode: str = "stretch") -> Image.Image:
    """Make `image` exactly width x height: stretched, center-cropped, or fitted with edge fill."""
    if image.size == (width, height):
        return image
    if mode == "crop":
        return ImageOps.fit(image, (width, height), Image.LANCZOS)
    if mode == "fill":
        inner = ImageOps.contain(image, (width, height), Image.LANCZOS)
        # Stretch the whole image under the fitted one so the borders carry its edge colours.
        canvas = image.resize((width, height), Image.LANCZOS)
        canvas.paste(inner, ((width - inner.width) // 2, (height - inner.height) // 2))
        return canvas
    return image.resize((width, height), Image.LANCZOS)


def upscale_and_back(image: Image.Image) -> Image.Image:
    """Seed 001's pre-processing upscale: 2x with Lanczos, then back to the same size."""
    return upscale(image).resize(image.size, Image.LANCZOS)


def upscale(image: Image.Image, factor: int = 2) -> Image.Image:
    return image.resize((image.width * factor, image.height * factor), Image.LANCZOS)


# A painted pixel differs from the original by more than this (sum over R, G, B; JPEG noise stays below).
PAINT_THRESHOLD = 48


def mask_from_painted(original: Image.Image, painted: Image.Image) -> Image.Image:
    """Seed 004's MaskedIm2ImPipe: white where the painted copy differs from the original."""
    import numpy as np

    a = np.asarray(original.convert("RGB"), dtype=np.int16)
    b = np.asarray(painted.convert("RGB").resize(original.size), dtype=np.int16)
    changed = np.abs(a - b).sum(axis=2) > PAINT_THRESHOLD
    return Image.fromarray((changed * 255).astype(np.uint8), "L")


def prepare_mask(mask: Image.Image, width: int, height: int, blur: int = 0) -> Image.Image:
    """The mask as L at the output size, blurred by `blur` pixels."""
    from PIL import ImageFilter

    mask = mask.convert("L").resize((width, height), Image.LANCZOS)
    return mask.filter(ImageFilter.GaussianBlur(blur)) if blur else mask


def compose(original: Image.Image, generated: Image.Image, mask: Image.Image, blur: int = 0) -> Image.Image:
    """Generated pixels inside the (blurred) mask over the original: what was not masked stays as it was."""
    from PIL import ImageFilter

    mask = mask.convert("L").resize(generated.size)
    if blur:
        mask = mask.filter(ImageFilter.GaussianBlur(blur))
    return Image.composite(generated.convert("RGB"), original.convert("RGB").resize(generated.size), mask)
