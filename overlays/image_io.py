"""Reading images safely: clear errors for missing, damaged, or oversized files."""

from __future__ import annotations

import io
import os
import threading
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from overlays.errors import ImageTooLarge, ImageUnreadable

#: Default pixel limit (100 MP). Pillow's own bomb check is replaced by this clearer one.
MAX_PIXELS = 100_000_000

# Pillow's bomb limit is a global: swapping it is serialised so that parallel decodes (the server
# decodes uploads in threads) cannot leave it switched off.
_OPEN_LOCK = threading.Lock()


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
        return _upright_rgb(im, str(path))


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """:func:`load_image` for an encoded image held in memory (an upload): the same pixel limit,
    checked before decoding, and the same EXIF rule, so that every door sees the same pixels."""
    with _open(io.BytesIO(data)) as im:
        pixels = im.width * im.height
        if pixels > max_pixels:
            raise ImageTooLarge(
                f"the image is {im.width}×{im.height} = {pixels / 1e6:.1f} MP, "
                f"over the limit of {max_pixels / 1e6:g} MP: downscale it"
            )
        return _upright_rgb(im, "the image")


def encoded_size(data: bytes) -> tuple[int, int]:
    """(W, H) stored in an encoded image's header, without decoding its pixels."""
    with _open(io.BytesIO(data)) as im:
        return im.size


def _upright_rgb(im: Image.Image, name: str) -> Image.Image:
    """The one EXIF rule: orientation applied, so coordinates refer to what a person sees."""
    try:
        im.load()
        # One full-size copy at most besides the decoded one (these images can be 100 MP).
        if im.getexif().get(0x0112, 1) != 1:
            ImageOps.exif_transpose(im, in_place=True)
        return im.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageUnreadable(f"{name}: the image data is damaged ({exc})") from None


def _open(source: str | os.PathLike[str] | io.BytesIO) -> Image.Image:
    if isinstance(source, io.BytesIO):
        p: Path | io.BytesIO = source
        name = "the image"
    else:
        p = Path(source)
        name = str(p)
        if not p.exists():
            raise ImageUnreadable(f"{p}: no such file")
        if p.is_dir():
            raise ImageUnreadable(f"{p}: is a folder, not an image file")
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            saved = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                return Image.open(p)
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except UnidentifiedImageError:
        raise ImageUnreadable(
            f"{name}: not an image Pillow can read (JPEG, PNG, WebP, TIFF, BMP, …)"
        ) from None
    except OSError as exc:
        if exc.errno is not None:  # the file system refused: permissions, I/O error, …
            raise ImageUnreadable(f"{name}: cannot be read ({exc.strerror})") from None
        raise ImageUnreadable(f"{name}: the image data is damaged or truncated ({exc})") from None
