"""Decoding images and compositing prompts off the GUI thread, for the canvas.

The canvas shows exactly ``overlays.render(image, prompts)``. A render pipeline on one
background thread owns the decoded image and its composite, and answers three kinds of jobs,
newest wins: *load* a file, *render* a list of prompts, *scale* for a new zoom. Each answer is a
:class:`Frame`: the full-resolution composite as a ``QImage`` and a downscaled copy for the
current zoom (``lod``), with the image area that changed.

Only what changed is redone: a prompt appended is drawn onto the composite in place; the
downscaled copy and the full ``QImage`` are patched over the changed area. A large JPEG first
arrives as a fast reduced-size decode, then exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps
from PySide6.QtCore import QObject, QPoint, Signal
from PySide6.QtGui import QImage, QPainter

import overlays as ov
from app.gui.threads import run_in_thread, serial_pool
from overlays.render import compile_prompt

#: QPainter's raster engine works in 16-bit-safe coordinates and QImage holds < 2 GiB.
QT_MAX_SIDE = 32767
QT_MAX_BYTES = 2**31 - 1
#: Below this view scale the canvas draws a downscaled copy instead of the full image.
LOD_BELOW = 0.75


def qt_limit_message(width: int, height: int) -> str | None:
    """Why Qt cannot show a ``width``×``height`` image, or None if it can."""
    if width > QT_MAX_SIDE or height > QT_MAX_SIDE or width * height * 4 > QT_MAX_BYTES:
        return (
            f"this image is {width}×{height} pixels: larger than Qt can display (at most "
            f"{QT_MAX_SIDE} pixels a side and 2 GB). Downscale it, or use `vipstudio render` / "
            "`vipstudio ask`, which have no such limit"
        )
    return None


def fit_scale(size: tuple[int, int], viewport: tuple[int, int]) -> float:
    """The view scale that fits an image of ``size`` into ``viewport`` (with a margin)."""
    w, h = size
    vw, vh = max(viewport[0] - 8, 16), max(viewport[1] - 8, 16)
    return min(vw / w, vh / h)


def to_qimage(image: Image.Image) -> QImage:
    """An RGB PIL image as a QImage that owns its pixels."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    data = rgb.tobytes()
    q = QImage(data, rgb.width, rgb.height, 3 * rgb.width, QImage.Format.Format_RGB888)
    return q.convertToFormat(QImage.Format.Format_RGB32)


@dataclass(frozen=True)
class Frame:
    """What the canvas paints. ``lod`` is the composite at ``lod_size`` (for zooms below
    :data:`LOD_BELOW`), ``full`` the composite at full resolution (None until decoded).
    ``exact`` is False for the quick reduced-size decode shown first."""

    token: int
    version: int
    size: tuple[int, int]
    full: QImage | None
    lod: QImage | None
    lod_size: tuple[int, int] | None
    exact: bool
    dirty: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class Loaded:
    """A decoded image: its path, size and pixels (read-only; the engine renders from it)."""

    token: int
    path: Path
    image: Image.Image


def dirty_box(
    prompts: Sequence[ov.Prompt], size: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    """The pixel area ``prompts`` paint on an image of ``size`` (None for nothing)."""
    boxes: list[tuple[float, float, float, float]] = []
    for prompt in prompts:
        try:
            ops = compile_prompt(ov.fit_to_image(prompt, size), size)
        except ov.InvalidPrompt:
            continue
        boxes.extend(op.bounds() for op in ops)
    if not boxes:
        return None
    w, h = size
    x0 = max(0, math.floor(min(b[0] for b in boxes)) - 1)
    y0 = max(0, math.floor(min(b[1] for b in boxes)) - 1)
    x1 = min(w, math.ceil(max(b[2] for b in boxes)) + 2)
    y1 = min(h, math.ceil(max(b[3] for b in boxes)) + 2)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _union(
    a: tuple[int, int, int, int] | None, b: tuple[int, int, int, int] | None
) -> tuple[int, int, int, int] | None:
    if a is None or b is None:
        return a or b
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _lod_size(size: tuple[int, int], scale: float | None) -> tuple[int, int] | None:
    if scale is None or scale >= LOD_BELOW:
        return None
    return (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))


class Pipeline:
    """The state of the render thread. Every method runs on that thread only."""

    def __init__(self) -> None:
        self.token = -1
        self.base: Image.Image | None = None
        self.composite: Image.Image | None = None
        self.drawn: tuple[ov.Prompt, ...] = ()
        self.full: QImage | None = None
        self.lod: QImage | None = None
        self.lod_size: tuple[int, int] | None = None
        self.version = 0

    def load(
        self, token: int, path: Path, viewport: tuple[int, int], dpr: float
    ) -> Generator[Any, None, Any]:
        """Yield a quick preview Frame for large JPEGs, then return (Loaded, exact Frame).

        The downscaled copy is made for the zoom that fits the image into ``viewport``.
        """
        self.token, self.base, self.composite, self.full, self.lod = token, None, None, None, None
        size = ov.image_size(path)
        message = qt_limit_message(*size)
        if message:
            raise ov.ImageTooLarge(f"{path}: {message}")
        lod_size = _lod_size(size, fit_scale(size, viewport) * dpr)
        if lod_size is not None and size[0] * size[1] >= 3_000_000:
            preview = _draft(path, lod_size)
            if preview is not None:
                yield Frame(token, 0, size, None, to_qimage(preview), lod_size, exact=False)
        base = ov.load_image(path)
        self.base = self.composite = base
        self.drawn = ()
        self.version = 0
        self.full = to_qimage(base)
        self.lod_size = lod_size
        self.lod = to_qimage(_resize(base, lod_size)) if lod_size else None
        frame = Frame(token, 0, base.size, self.full, self.lod, lod_size, exact=True)
        return Loaded(token, path, base), frame

    def load_frame(
        self,
        token: int,
        path: Path,
        decode: Callable[[], Image.Image],
        version: int,
        prompts: tuple[ov.Prompt, ...],
        scale: float | None,
    ) -> tuple[Loaded, Frame]:
        """A video frame: ``decode()`` gives it (here, off the GUI thread); it arrives already
        composited with ``prompts`` (a step through a clip never flashes a frame without them)."""
        self.token, self.base, self.composite, self.full, self.lod = token, None, None, None, None
        base = decode()
        self.base = base
        # Drawn before the one conversion to a QImage (no patching of a bare frame after).
        self.composite = ov.render(base, prompts) if prompts else base
        self.drawn, self.version = prompts, version
        self.full, self.lod, self.lod_size = to_qimage(self.composite), None, None
        return Loaded(token, path, base), self._rescale(scale, None, version)

    def render(
        self, token: int, version: int, prompts: tuple[ov.Prompt, ...], scale: float | None
    ) -> Frame | None:
        """The composite of ``prompts``; only the changed area is redone."""
        if token != self.token or self.base is None or self.composite is None:
            return None
        base, size = self.base, self.base.size
        dirty: tuple[int, int, int, int] | None
        if prompts == self.drawn:
            dirty = None
        elif prompts[: len(self.drawn)] == self.drawn:
            added = prompts[len(self.drawn) :]
            if self.composite is base:
                self.composite = base.copy()
            ov.render(self.composite, added, inplace=True)
            dirty = dirty_box(added, size)
        else:
            k = 0
            while k < min(len(prompts), len(self.drawn)) and prompts[k] == self.drawn[k]:
                k += 1
            dirty = _union(dirty_box(self.drawn[k:], size), dirty_box(prompts[k:], size))
            self.composite = ov.render(base, prompts) if prompts else base
        self.drawn = prompts
        self.version = version
        if dirty is not None and self.full is not None:
            self.full = _patch(self.full, self.composite, dirty)
        return self._rescale(scale, dirty, version)

    def rescale(self, token: int, scale: float | None) -> Frame | None:
        if token != self.token or self.composite is None:
            return None
        return self._rescale(scale, None, self.version)

    def _rescale(
        self, scale: float | None, dirty: tuple[int, int, int, int] | None, version: int
    ) -> Frame:
        assert self.composite is not None
        size = self.composite.size
        lod_size = _lod_size(size, scale)
        if lod_size is None:
            self.lod, self.lod_size = None, None
        elif lod_size != self.lod_size or self.lod is None:
            self.lod = to_qimage(_resize(self.composite, lod_size))
            self.lod_size = lod_size
        elif dirty is not None:
            self.lod = _patch_scaled(self.lod, self.composite, dirty, lod_size)
        return Frame(self.token, version, size, self.full, self.lod, self.lod_size, True, dirty)

    def model_view(self, token: int) -> QImage | None:
        if token != self.token or self.composite is None:
            return None
        return to_qimage(ov.model_view(self.composite))


def _draft(path: Path, target: tuple[int, int]) -> Image.Image | None:
    """A fast reduced-size decode (JPEG DCT scaling) at about ``target``, EXIF applied."""
    try:
        with Image.open(path) as im:
            if im.format != "JPEG":
                return None
            orientation = im.getexif().get(0x0112, 1)
            want = target if orientation not in (5, 6, 7, 8) else (target[1], target[0])
            im.draft("RGB", want)
            im.load()
            out = ImageOps.exif_transpose(im).convert("RGB")
    except (OSError, ValueError, SyntaxError):
        return None
    return out.resize(target, Image.Resampling.BILINEAR)


def _resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    return image.resize(size, Image.Resampling.BOX)


def _patch(full: QImage, composite: Image.Image, box: tuple[int, int, int, int]) -> QImage:
    out = QImage(full)  # shares pixels until painted on: the GUI keeps the old frame intact
    painter = QPainter(out)
    painter.drawImage(QPoint(box[0], box[1]), to_qimage(composite.crop(box)))
    painter.end()
    return out


def _patch_scaled(
    lod: QImage, composite: Image.Image, box: tuple[int, int, int, int], size: tuple[int, int]
) -> QImage:
    w, h = composite.size
    sx, sy = size[0] / w, size[1] / h
    dx0, dy0 = max(0, math.floor(box[0] * sx) - 1), max(0, math.floor(box[1] * sy) - 1)
    dx1, dy1 = min(size[0], math.ceil(box[2] * sx) + 1), min(size[1], math.ceil(box[3] * sy) + 1)
    if dx1 <= dx0 or dy1 <= dy0:
        return lod
    # The same BOX filter over the same source span as the full resize: identical pixels.
    source = (dx0 / sx, dy0 / sy, dx1 / sx, dy1 / sy)
    part = composite.resize((dx1 - dx0, dy1 - dy0), Image.Resampling.BOX, box=source)
    out = QImage(lod)
    painter = QPainter(out)
    painter.drawImage(QPoint(dx0, dy0), to_qimage(part))
    painter.end()
    return out


class Renderer(QObject):
    """Schedules pipeline jobs on one background thread; the newest job of a kind wins.

    ``frame`` delivers what to paint, ``loaded`` the decoded image, ``failed`` a message for
    an image that cannot be shown, ``model_view`` the model's 336×336 view.
    """

    frame = Signal(object)
    loaded = Signal(object)
    failed = Signal(int, str)
    model_view = Signal(int, object)
    error = Signal(str)

    ORDER = ("load", "render", "rescale", "model_view")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = serial_pool("render")
        self._pipeline = Pipeline()
        self._pending: dict[str, tuple[Any, tuple[Any, ...]]] = {}
        self._busy = False
        self.token = 0
        self.version = 0

    def open(self, path: Path, viewport: tuple[int, int], dpr: float = 1.0) -> int:
        """Start decoding ``path``; returns the token its frames will carry."""
        self.token += 1
        self.version = 0
        self._pending.clear()
        self._pending["load"] = (self._pipeline.load, (self.token, path, viewport, dpr))
        self._kick()
        return self.token

    def open_frame(
        self,
        path: Path,
        decode: Callable[[], Image.Image],
        prompts: Sequence[ov.Prompt],
        scale: float | None,
    ) -> int:
        """Show the image ``decode()`` gives (a video frame, decoded on the render thread) with
        ``prompts`` drawn; returns the token its frames carry. A newer call supersedes it."""
        self.token += 1
        self.version += 1
        self._pending.clear()
        args = (self.token, path, decode, self.version, tuple(prompts), scale)
        self._pending["load"] = (self._pipeline.load_frame, args)
        self._kick()
        return self.token

    def render(self, prompts: Sequence[ov.Prompt], scale: float | None) -> int:
        """Composite ``prompts``; returns the version its frame will carry."""
        self.version += 1
        args = (self.token, self.version, tuple(prompts), scale)
        self._pending["render"] = (self._pipeline.render, args)
        self._kick()
        return self.version

    def rescale(self, scale: float | None) -> None:
        self._pending["rescale"] = (self._pipeline.rescale, (self.token, scale))
        self._kick()

    def request_model_view(self) -> None:
        self._pending["model_view"] = (self._pipeline.model_view, (self.token,))
        self._kick()

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Drop queued jobs and let the running one finish (at exit)."""
        self._pending.clear()
        self._pool.waitForDone(timeout_ms)

    def wait_idle(self, timeout_ms: int = 5000) -> bool:
        """Block until queued jobs ran (benchmarks and tests only, never the app)."""
        return self._pool.waitForDone(timeout_ms)

    @property
    def busy(self) -> bool:
        return self._busy or bool(self._pending)

    def _kick(self) -> None:
        if self._busy or not self._pending:
            return
        kind = next(k for k in self.ORDER if k in self._pending)
        fn, args = self._pending.pop(kind)
        self._busy = True
        token: int = args[0]

        def returned(result: Any) -> None:
            self._returned(kind, token, result)

        def errored(exc: BaseException) -> None:
            self._errored(kind, token, exc)

        run_in_thread(
            fn,
            *args,
            owner=self,
            pool=self._pool,
            on_yield=self._deliver,
            on_return=returned,
            on_error=errored,
            on_finish=self._finished,
        )

    def _deliver(self, frame: Frame) -> None:
        if frame.token == self.token:
            self.frame.emit(frame)

    def _returned(self, kind: str, token: int, result: Any) -> None:
        if token != self.token or result is None:
            return
        if kind == "load":
            loaded, frame = result
            self.loaded.emit(loaded)
            self.frame.emit(frame)
        elif kind == "model_view":
            self.model_view.emit(token, result)
        else:
            self.frame.emit(result)

    def _errored(self, kind: str, token: int, exc: BaseException) -> None:
        if token != self.token:
            return
        if kind == "load":
            self.failed.emit(token, str(exc))
        else:
            self.error.emit(f"could not draw the prompts: {exc}")

    def _finished(self) -> None:
        self._busy = False
        self._kick()
