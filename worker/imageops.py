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
