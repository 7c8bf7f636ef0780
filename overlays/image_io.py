"""Reading images safely: clear errors for missing, damaged, or oversized files."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from overlays.errors import ImageTooLarge, ImageUnreadable

#: Default pixel limit (100 MP). Pillow's own bomb check is replaced by this clearer one.
MAX_PIXELS = 100_000_000


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(W, H) of an image after EXIF orientation, reading only its header."""
    with _open(path) as im:
        w, h = im.size
        orientation = im.getexif().get(0x0112, 1)
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def load_image(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> Image.Image:
    """An RGB image, EXIF orientation applied (coordinates refer to what a person sees).

    Raises :class:`ImageUnreadable` or :class:`ImageTooLarge` with what to do about it.
    """
    with _open(path) as im:
        pixels = im.width * im.height
        if pixels > max_pixels:
            raise ImageTooLarge(
                f"{path}: {im.width}×{im.height} = {pixels:,} pixels is over the limit of "
                f"{max_pixels:,}: downscale it, or raise the limit (--max-pixels)"
            )
        try:
            im.load()
            out = ImageOps.exif_transpose(im).convert("RGB")
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageUnreadable(f"{path}: the image data is damaged ({exc})") from None
    return out


def _open(path: str | os.PathLike[str]) -> Image.Image:
    p = Path(path)
    if not p.exists():
        raise ImageUnreadable(f"{p}: no such file")
    if p.is_dir():
        raise ImageUnreadable(f"{p}: is a folder, not an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            saved = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                return Image.open(p)
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
