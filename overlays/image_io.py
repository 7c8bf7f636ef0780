"""Reading images safely: clear errors for missing, damaged, oversized or non-regular files.

One rule for every door (CLI, batch, desktop app, server, export): EXIF orientation is applied,
so coordinates refer to the image as a person sees it, and 16-bit images are scaled to 8 bits.
"""

from __future__ import annotations

import io
import os
import stat
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from overlays.errors import ImageTooLarge, ImageUnreadable

#: Default pixel limit (100 MP). Pillow's own bomb check is replaced by this clearer one.
MAX_PIXELS = 100_000_000

#: Image sources: a file path, or the bytes of an encoded image file.
ImageSource = str | os.PathLike[str] | bytes

# Pillow's bomb limit is a global: swapping it is serialised so that parallel decodes (the server
# decodes uploads in threads) cannot leave it switched off.
_OPEN_LOCK = threading.Lock()

_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_NOT_REGULAR = "{}: not a regular file (a pipe, socket or device): give an image file"


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
        return _upright_rgb(im, _name(path))


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """:func:`load_image` for an encoded image held in memory (an upload): the same pixel limit,
    checked before decoding, and the same EXIF rule, so that every door sees the same pixels."""
    with _open(data) as im:
        pixels = im.width * im.height
        if pixels > max_pixels:
            raise ImageTooLarge(
                f"the image is {im.width}×{im.height} = {pixels / 1e6:.1f} MP, "
                f"over the limit of {max_pixels / 1e6:g} MP: downscale it"
            )
        return _upright_rgb(im, "the image")


def encoded_size(data: bytes) -> tuple[int, int]:
    """(W, H) stored in an encoded image's header, without decoding its pixels."""
    with _open(data) as im:
        return im.size


def _upright_rgb(im: Image.Image, name: str) -> Image.Image:
    """The one EXIF rule: orientation applied, so coordinates refer to what a person sees."""
    try:
        im.load()
        # One full-size copy at most besides the decoded one (these images can be 100 MP).
        if im.getexif().get(0x0112, 1) != 1:
            ImageOps.exif_transpose(im, in_place=True)
        return to_rgb(im)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageUnreadable(f"{name}: the image data is damaged ({exc})") from None


def _name(path: ImageSource) -> str:
    return "the embedded image" if isinstance(path, bytes) else str(path)


@contextmanager
def _open(path: ImageSource) -> Iterator[Image.Image]:
    name = _name(path)
    fh: BinaryIO = io.BytesIO(path) if isinstance(path, bytes) else _open_regular(Path(path))
    with fh:
        try:
            with _OPEN_LOCK, warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                saved = Image.MAX_IMAGE_PIXELS
                Image.MAX_IMAGE_PIXELS = None
                try:
                    im = Image.open(fh)
                finally:
                    Image.MAX_IMAGE_PIXELS = saved
        except UnidentifiedImageError:
            raise ImageUnreadable(
                f"{name}: not an image Pillow can read (JPEG, PNG, WebP, TIFF, BMP, …)"
            ) from None
        except OSError as exc:
            if exc.errno is not None:  # the file system refused: permissions, I/O error, …
                raise ImageUnreadable(f"{name}: cannot be read ({exc.strerror})") from None
            raise ImageUnreadable(
                f"{name}: the image data is damaged or truncated ({exc})"
            ) from None
        with im:
            yield im


def _open_regular(p: Path) -> BinaryIO:
    """``p`` opened for reading if it is a regular file. Stat first, then open without blocking:
    a FIFO or a device named ``x.jpg`` would otherwise wait for a writer forever."""
    try:
        mode = os.stat(p).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise ImageUnreadable(f"{p}: no such file") from None
    except OSError as exc:  # permission denied on a folder on the way, I/O error, …
        raise ImageUnreadable(f"{p}: cannot be read ({exc.strerror})") from None
    except ValueError as exc:  # a NUL character, a lone surrogate
        raise ImageUnreadable(f"{str(p)!a}: not a valid file path ({exc})") from None
    if stat.S_ISDIR(mode):
        raise ImageUnreadable(f"{p}: is a folder, not an image file")
    if not stat.S_ISREG(mode):
        raise ImageUnreadable(_NOT_REGULAR.format(p))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(p, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ImageUnreadable(f"{p}: cannot be read ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced since the stat
            raise ImageUnreadable(_NOT_REGULAR.format(p))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
