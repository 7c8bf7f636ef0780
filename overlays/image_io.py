"""Reading images safely: clear errors for missing, damaged, or oversized files."""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

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


@contextmanager
def _open(path: str | os.PathLike[str]) -> Iterator[Image.Image]:
    p = Path(path)
    with _open_regular(p) as fh:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                saved = Image.MAX_IMAGE_PIXELS
                Image.MAX_IMAGE_PIXELS = None
                try:
                    im = Image.open(fh)
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


_NOT_REGULAR = "{}: not a regular file (a pipe, socket or device): give an image file"
