"""Reading images safely: clear errors for missing, damaged, or oversized files."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from overlays.errors import ImageTooLarge, ImageUnreadable

#: Default pixel limit (100 MP). Pillow's own bomb check is replaced by this clearer one.
MAX_PIXELS = 100_000_000

#: Image sources: a file path, or the bytes of an encoded image file.
ImageSource = str | os.PathLike[str] | bytes

_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def image_size(path: ImageSource) -> tuple[int, int]:
    """(W, H) of an image after EXIF orientation, reading only its header."""
    with _open(path) as im:
        w, h = im.size
        try:
            orientation = im.getexif().get(0x0112, 1)  # a PNG's EXIF may follow its pixels
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageUnreadable(f"{_name(path)}: the image data is damaged ({exc})") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def verify_image(path: ImageSource, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """Decode the whole image at the least cost; returns (W, H) after EXIF orientation.

    A truncated or damaged file raises :class:`ImageUnreadable`, one over ``max_pixels``
    :class:`ImageTooLarge` (checked on the header, before any decoding). JPEGs decode at 1/8
    scale: every coded block is still read (truncation is found), full-size pixels are not built.
    """
    with _open(path) as im:
        w, h = im.size
        if w * h > max_pixels:
            raise ImageTooLarge(
                f"{_name(path)}: {w}×{h} = {w * h:,} pixels is over the limit of {max_pixels:,}: "
                "downscale it"
            )
        try:
            orientation = im.getexif().get(0x0112, 1)
            im.draft(im.mode, (max(w // 8, 1), max(h // 8, 1)))
            im.load()
        except Exception as exc:  # Pillow's plugins raise many kinds on hostile files
            raise ImageUnreadable(f"{_name(path)}: the image data is damaged ({exc})") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit RGB. 16-bit greys are scaled, not clipped (Pillow's ``convert``
    clips every value above 255, which turns a mid-grey 16-bit PNG white)."""
    if image.mode in _SIXTEEN_BIT or image.mode == "I":
        wide = image if image.mode == "I" else image.convert("I")
        top = wide.getextrema()[1]
        # 16-bit data (the usual case) maps 65535 → 255; wider integers by their own maximum.
        scale = 255 / 65535 if not isinstance(top, int | float) or top <= 65535 else 255 / top
        image = wide.point(lambda v: v * scale).convert("L")
    return image if image.mode == "RGB" else image.convert("RGB")


def load_image(path: ImageSource, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """An RGB image, EXIF orientation applied (coordinates refer to what a person sees).

    ``path`` may also be the bytes of an image file. Raises :class:`ImageUnreadable` or
    :class:`ImageTooLarge` with what to do about it.
    """
    with _open(path) as im:
        pixels = im.width * im.height
        if pixels > max_pixels:
            raise ImageTooLarge(
                f"{_name(path)}: {im.width}×{im.height} = {pixels:,} pixels is over the limit of "
                f"{max_pixels:,}: downscale it, or raise the limit (--max-pixels)"
            )
        try:
            im.load()
            out = to_rgb(ImageOps.exif_transpose(im))
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageUnreadable(f"{_name(path)}: the image data is damaged ({exc})") from None
    return out


def _name(path: ImageSource) -> str:
    return "the embedded image" if isinstance(path, bytes) else str(path)


def _open(path: ImageSource) -> Image.Image:
    if isinstance(path, bytes):
        source: Path | io.BytesIO = io.BytesIO(path)
    else:
        source = Path(path)
        if not source.exists():
            raise ImageUnreadable(f"{source}: no such file")
        if source.is_dir():
            raise ImageUnreadable(f"{source}: is a folder, not an image file")
    p = _name(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            saved = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                return Image.open(source)
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except UnidentifiedImageError:
        raise ImageUnreadable(
            f"{p}: not an image Pillow can read (JPEG, PNG, WebP, TIFF, BMP, …)"
        ) from None
    except OSError as exc:
        if exc.errno is not None:  # the file system refused: permissions, I/O error, …
            raise ImageUnreadable(f"{p}: cannot be read ({exc.strerror})") from None
        raise ImageUnreadable(f"{p}: the image data is damaged or truncated ({exc})") from None
