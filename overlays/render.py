"""Rendering visual prompts onto pixels, exactly as the original ViP-LLaVA code draws them.

The original draws each prompt with PIL on a transparent full-image RGBA layer and merges it
with ``Image.alpha_composite``. Every PIL primitive here is the same call with the same
arguments, so the pixels are the same; the difference is *where* it is done. A prompt is
compiled into primitives (:class:`Op`), its footprint is covered by 128-pixel tiles, and only
the tiles the footprint touches are drawn and composited. Tile origins are multiples of 128, so
the integer translation of coordinates never changes PIL's rounding.
:func:`render_reference` keeps the naive full-frame method for tests and benchmarks.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

from overlays.errors import InvalidPrompt
from overlays.fitting import fit_to_image
from overlays.footprint import TILE, Grid, mark_ops
from overlays.image_io import to_rgb
from overlays.prompts import (
    Arrow,
    Contour,
    Ellipse,
    Mask,
    Point,
    Prompt,
    Rectangle,
    Scribble,
    Triangle,
)
from overlays.style import MODEL_SIDE, pixels, scale_of

#: CLIP's mean colour, used by ViP-LLaVA's ``image_aspect_ratio = pad`` (docs/VIP_FACTS.md §3).
PAD_COLOR: tuple[int, int, int] = (122, 116, 104)
#: Default head length of a person-drawn arrow, as a fraction of its shaft. Training drew heads
#: of 0.2–0.5 of the full length L with a shaft of L − head; 0.35 of L is 0.35/0.65 of the shaft.
ARROW_HEAD_RATIO = 0.35 / 0.65

OpName = Literal["rectangle", "ellipse", "dot", "line", "fill", "outline"]
XY = list[tuple[float, float]]


@dataclass(frozen=True)
class Op:
    """One PIL drawing call: ``name`` picks the call, ``xy`` its coordinates.

    rectangle: ``draw.rectangle(xy, outline=c, width)``; ellipse: ``draw.ellipse(xy,
    outline=c, width)``; dot: ``draw.ellipse(xy, outline=c, fill=c)``; line:
    ``draw.line(xy, fill=c, width, joint)``; fill: ``draw.polygon(xy, fill=c)``; outline:
    ``draw.polygon(xy, outline=c)`` repeated at every integer offset in [-dilate, dilate]².
    """

    name: OpName
    xy: XY
    width: int = 1
    joint: str | None = None
    dilate: int = 0

    def bounds(self) -> tuple[float, float, float, float]:
        xs = [p[0] for p in self.xy]
        ys = [p[1] for p in self.xy]
        m = self.width + self.dilate + 2
        return (min(xs) - m, min(ys) - m, max(xs) + m, max(ys) + m)


def compile_prompt(prompt: Prompt, image_size: tuple[int, int]) -> list[Op]:
    """The PIL primitives the original code would issue for ``prompt`` on this image size."""
    s = scale_of(image_size)
    st = prompt.style
    if isinstance(prompt, Rectangle):
        x1, y1, x2, y2 = prompt.box
        return [Op("rectangle", [(x1, y1), (x2, y2)], pixels(st.width, s))]
    if isinstance(prompt, Ellipse):
        x1, y1, x2, y2 = prompt.box
        return [Op("ellipse", [(x1, y1), (x2, y2)], pixels(st.width, s))]
    if isinstance(prompt, Point):
        r = pixels(prompt.radius, s)
        rx, ry = r * prompt.aspect, r / prompt.aspect
        cx, cy = prompt.center
        return [Op("dot", [(cx - rx, cy - ry), (cx + rx, cy + ry)])]
    if isinstance(prompt, Triangle):
        p = prompt.points
        return [Op("line", [p[0], p[1], p[2], p[0]], pixels(st.width, s), joint="curve")]
    if isinstance(prompt, Arrow):
        return _arrow_ops(prompt, s)
    if isinstance(prompt, Scribble):
        w = pixels(st.width, s)
        pts = bezier_points(prompt.points, s) if prompt.bezier else list(prompt.points)
        # The original draws a scribble as ~1000·s two-point lines. PIL draws a polyline without
        # joints segment by segment too, so one call paints the same pixels, much faster.
        return [Op("line", pts, w)]
    if isinstance(prompt, Mask):
        return [Op("fill", list(ring)) for ring in prompt.polygons]
    if isinstance(prompt, Contour):
        w = pixels(st.width, s)
        return [Op("outline", list(ring), dilate=w) for ring in prompt.polygons]
    raise InvalidPrompt(f"cannot render {prompt!r}")


def arrow_head_length(arrow: Arrow, scale: float) -> float:
    """The head length in pixels: the stored one, else the training default for its length."""
    if arrow.head is not None:
        return arrow.head
    return max(ARROW_HEAD_RATIO * arrow.length, int(6 * scale))


def _arrow_ops(arrow: Arrow, s: float) -> list[Op]:
    w = pixels(arrow.style.width, s)
    tx, ty = arrow.tip
    angle = math.atan2(arrow.tail[1] - ty, arrow.tail[0] - tx)
    head = arrow_head_length(arrow, s)
    shaft = [arrow.tip, arrow.bend, arrow.tail] if arrow.bend else [arrow.tip, arrow.tail]
    barb1 = (tx + head * math.cos(angle + math.pi / 3), ty + head * math.sin(angle + math.pi / 3))
    barb2 = (tx + head * math.cos(angle - math.pi / 3), ty + head * math.sin(angle - math.pi / 3))
    ops = [Op("line", shaft, w)]
    if arrow.filled:
        ops.append(Op("fill", [barb1, arrow.tip, barb2]))
    else:
        ops.append(Op("line", [barb1, arrow.tip, barb2], w))
    return ops


def bezier_points(controls: Sequence[tuple[float, float]], scale: float) -> XY:
    """The ``int(1000·s)`` samples of the cubic Bézier the original scribble generator drew."""
    p = np.asarray(controls, dtype=float)
    t = np.linspace(0, 1, max(int(1000 * scale), 2))[:, None]
    curve = (
        (1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t**2 * p[2] + t**3 * p[3]
    )
    return [(float(x), float(y)) for x, y in curve]


def _draw(draw: ImageDraw.ImageDraw, op: Op, ink: int | tuple[int, ...], dx: int, dy: int) -> None:
    xy = [(x - dx, y - dy) for x, y in op.xy] if dx or dy else op.xy
    if op.name == "rectangle":
        draw.rectangle(xy, outline=ink, width=op.width)
    elif op.name == "ellipse":
        draw.ellipse(xy, outline=ink, width=op.width)
    elif op.name == "dot":
        draw.ellipse(xy, outline=ink, fill=ink)
    elif op.name == "line":
        draw.line(xy, fill=ink, width=op.width, joint=op.joint)
    elif op.name == "fill":
        draw.polygon(xy, fill=ink)
    elif op.name == "outline":
        draw.polygon(xy, outline=ink)


# --------------------------------------------------------------------------- footprints


def _regions(ops: Sequence[Op], image_size: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Pixel boxes (x0, y0, x1, y1) covering every pixel ``ops`` can touch, inside the image."""
    w, h = image_size
    bounds = np.array([op.bounds() for op in ops])
    x0 = max(0, math.floor(bounds[:, 0].min()) // TILE * TILE)
    y0 = max(0, math.floor(bounds[:, 1].min()) // TILE * TILE)
    x1 = min(w, math.ceil(bounds[:, 2].max()) + 1)
    y1 = min(h, math.ceil(bounds[:, 3].max()) + 1)
    if x1 <= x0 or y1 <= y0:
        return []
    if (x1 - x0) * (y1 - y0) <= 2 * TILE * TILE:
        return [(x0, y0, x1, y1)]
    grid = Grid(x0, y0, x1, y1)
    mark_ops(grid, ops)
    return grid.runs()


# --------------------------------------------------------------------------- rendering


def render(image: Image.Image, prompts: Iterable[Prompt], *, inplace: bool = False) -> Image.Image:
    """``image`` with ``prompts`` drawn on it, one alpha-composited layer per prompt, in order.

    Prompts are first checked against the image (:func:`overlays.fit_to_image`: an error if one
    lies entirely outside) and drawn as given, partly outside ones cut by the image edge as in
    the original. Only the tiles each prompt touches are processed. The result is RGB.
    """
    out = to_rgb(image) if image.mode != "RGB" else (image if inplace else image.copy())
    for prompt in prompts:
        prompt = fit_to_image(prompt, out.size)
        ops = compile_prompt(prompt, out.size)
        _composite_ops(out, ops, prompt.style.rgba)
    return out


def _composite_ops(out: Image.Image, ops: Sequence[Op], rgba: tuple[int, int, int, int]) -> None:
    if rgba[3] == 0:
        return
    regions = _regions(ops, out.size)
    if not regions:
        return
    # Every primitive of one prompt paints the same RGBA value, so the prompt's layer is a
    # coverage mask times that colour. The mask is drawn untranslated, on a canvas anchored at
    # the image origin: PIL truncates float coordinates toward zero, so a translated drawing
    # would round differently wherever a coordinate changes sign.
    width = min(out.width, max(r[2] for r in regions))
    height = min(out.height, max(r[3] for r in regions))
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    for op in ops:
        if op.name == "outline":
            _draw_outline_dilated(mask, op)
        else:
            _draw(draw, op, 255, 0, 0)
    lut = composite_lut(rgba)
    for box in regions:
        coverage = mask.crop(box)
        if coverage.getbbox() is None:
            continue
        # Over an opaque pixel, alpha_composite with one constant colour is a function of each
        # channel's value alone: a lookup table, applied where the mask (0 or 255) is set.
        out.paste(out.crop(box).point(lut), box[:2], coverage)


@functools.lru_cache(maxsize=64)
def composite_lut(rgba: tuple[int, int, int, int]) -> list[int]:
    """The 3×256 table of ``Image.alpha_composite(opaque pixel, rgba)``, computed by PIL itself
    on a ramp of every channel value, so that it is exact by construction."""
    ramp = Image.frombytes("RGB", (256, 1), bytes(v for v in range(256) for _ in range(3)))
    top = Image.new("RGBA", (256, 1), rgba)
    done = Image.alpha_composite(ramp.convert("RGBA"), top).convert("RGB")
    return [value for band in done.split() for value in band.tobytes()]


def _draw_outline_dilated(mask: Image.Image, op: Op) -> None:
    # The original redraws the outline at every offset in [-d, d]². PIL draws an outline as one
    # line per edge between vertices truncated toward zero. Where truncation commutes with the
    # integer shifts (a coordinate that is whole, or farther than d from 0), the shifted copies
    # of an edge are the edge dilated by a (2d+1)² square: drawn once, dilated once.
    # An edge with a vertex just next to an axis: see _draw_edge_near_axis.
    d = op.dilate
    draw = ImageDraw.Draw(mask)
    if d == 0:
        draw.polygon(op.xy, outline=255)
        return
    xy = np.asarray(op.xy, dtype=float)
    regular = np.all((xy == np.round(xy)) | (np.abs(xy) >= d + 1), axis=1)
    regular_edge = regular & np.roll(regular, -1)
    n = len(op.xy)
    for i in np.flatnonzero(~regular_edge):
        _draw_edge_near_axis(mask, op.xy[i], op.xy[(i + 1) % n], d)
    if not regular_edge.any():
        return

    # The truncated outline on a canvas reaching d pixels past the mask on every side: outline
    # pixels just outside the image still reach back into it once dilated.
    t = np.trunc(xy).astype(np.int64)
    x0, y0 = max(int(t[:, 0].min()) - d, -d), max(int(t[:, 1].min()) - d, -d)
    x1 = min(int(t[:, 0].max()) + d, mask.width - 1 + d) + 1
    y1 = min(int(t[:, 1].max()) + d, mask.height - 1 + d) + 1
    if x1 <= x0 or y1 <= y0:
        return
    ring = Image.new("L", (x1 - x0, y1 - y0), 0)
    pts = [(int(x) - x0, int(y) - y0) for x, y in t]
    if regular_edge.all():
        ImageDraw.Draw(ring).polygon(pts, outline=255)
    else:
        ring_draw = ImageDraw.Draw(ring)
        for i in np.flatnonzero(regular_edge):
            ring_draw.line([pts[i], pts[(i + 1) % n]], fill=255)
    grown = dilate(np.asarray(ring), (-d, d), (-d, d))
    left, top = max(x0, 0), max(y0, 0)
    grown = grown[top - y0 : min(y1, mask.height) - y0, left - x0 : min(x1, mask.width) - x0]
    if grown.size:
        mask.paste(255, (left, top), Image.fromarray(np.ascontiguousarray(grown)))


def _offset_runs(va: float, vb: float, d: int) -> list[tuple[int, int, int, int]] | None:
    """Runs ``(lo, hi, ta, tb)`` of the offsets k in [-d, d] over which PIL's truncation of
    ``va + k`` and ``vb + k`` is ``ta + k`` and ``tb + k``: split where a sum changes sign.
    None if float rounding breaks that (then every offset is drawn)."""
    cuts = sorted({c for v in (va, vb) for c in [math.ceil(-v)] if -d < c <= d})
    edges = [-d, *cuts, d + 1]
    runs = []
    for lo, end in itertools.pairwise(edges):
        hi = end - 1
        ta, tb = math.trunc(va + lo) - lo, math.trunc(vb + lo) - lo
        if (math.trunc(va + hi) - hi, math.trunc(vb + hi) - hi) != (ta, tb):
            return None
        runs.append((lo, hi, ta, tb))
    return runs


def _draw_edge_near_axis(
    mask: Image.Image, a: tuple[float, float], b: tuple[float, float], d: int
) -> None:
    # The original draws this edge at each of the (2d+1)² offsets, truncating the shifted
    # coordinates toward zero, which does not commute with a shift across 0. Per axis the
    # offsets fall into at most 3 runs over which it does: each pair of runs is one line
    # dilated by the run's rectangle of shifts, at most 9 dilations instead of (2d+1)² draws.
    x_runs, y_runs = _offset_runs(a[0], b[0], d), _offset_runs(a[1], b[1], d)
    if x_runs is None or y_runs is None:
        draw = ImageDraw.Draw(mask)
        for dx in range(-d, d + 1):
            for dy in range(-d, d + 1):
                draw.line([(a[0] + dx, a[1] + dy), (b[0] + dx, b[1] + dy)], fill=255)
        return
    for x_lo, x_hi, tax, tbx in x_runs:
        for y_lo, y_hi, tay, tby in y_runs:
            sx, sy = x_hi - x_lo, y_hi - y_lo
            p = (tax + x_lo, tay + y_lo)
            q = (tbx + x_lo, tby + y_lo)
            # Line pixels left of -sx or above -sy stay off the image once shifted.
            x0, y0 = max(min(p[0], q[0]), -sx), max(min(p[1], q[1]), -sy)
            x1 = min(max(p[0], q[0]) + sx, mask.width - 1) + 1
            y1 = min(max(p[1], q[1]) + sy, mask.height - 1) + 1
            if x1 <= max(x0, 0) or y1 <= max(y0, 0):
                continue
            canvas = Image.new("L", (x1 - x0, y1 - y0), 0)
            line = [(p[0] - x0, p[1] - y0), (q[0] - x0, q[1] - y0)]
            ImageDraw.Draw(canvas).line(line, fill=255)
            grown = dilate(np.asarray(canvas), (0, sx), (0, sy))
            left, top = max(x0, 0), max(y0, 0)
            grown = np.ascontiguousarray(grown[top - y0 :, left - x0 :])
            mask.paste(255, (left, top), Image.fromarray(grown))


def dilate(mask: np.ndarray, xs: tuple[int, int], ys: tuple[int, int]) -> np.ndarray:
    """``mask`` OR-ed with its copies shifted by every (dx, dy) in [xs] × [ys] (inclusive),
    same shape, zeros shifted in. cv2 for small kernels; for large ones, log₂(n) doublings
    per axis, whose cost does not grow with the kernel (cv2's does: 4.5 s at 761 px)."""
    if max(xs[1] - xs[0], ys[1] - ys[0]) <= 64:
        import cv2

        kernel = np.ones((ys[1] - ys[0] + 1, xs[1] - xs[0] + 1), np.uint8)
        # cv2 reads src(x + k − anchor) for k in the kernel: anchor hi gives shifts lo..hi.
        return np.asarray(cv2.dilate(mask, kernel, anchor=(xs[1], ys[1])))
    return _spread(_spread(mask, *xs, axis=1), *ys, axis=0)


def _spread(mask: np.ndarray, lo: int, hi: int, axis: int) -> np.ndarray:
    a = np.moveaxis(mask, axis, -1)
    size, n = a.shape[-1], hi - lo
    cur = np.zeros((*a.shape[:-1], size + n), a.dtype)  # room for shifts up to n
    cur[..., :size] = a
    covered = 0  # cur holds the OR of shifts 0..covered
    while covered < n:
        step = min(covered + 1, n - covered)
        nxt = cur.copy()
        np.maximum(cur[..., step:], cur[..., :-step], out=nxt[..., step:])
        cur, covered = nxt, covered + step
    out = np.zeros_like(a)
    src, dst = max(0, -lo), max(0, lo)  # out[x] = cur[x - lo]
    length = min(size - dst, size + n - src)
    if length > 0:
        out[..., dst : dst + length] = cur[..., src : src + length]
    return np.moveaxis(out, -1, axis)


def render_reference(image: Image.Image, prompts: Iterable[Prompt]) -> Image.Image:
    """The naive method of the original code: a full-image RGBA layer per prompt.

    Slow on large images; kept as the ground truth for tests and the benchmark baseline.
    """
    out = image.convert("RGB")
    for prompt in prompts:
        prompt = fit_to_image(prompt, out.size)
        layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        rgba = prompt.style.rgba
        for op in compile_prompt(prompt, out.size):
            if op.name == "outline":
                for dx in range(-op.dilate, op.dilate + 1):
                    for dy in range(-op.dilate, op.dilate + 1):
                        draw.polygon([(x + dx, y + dy) for x, y in op.xy], outline=rgba)
            elif op.name == "line" and op.joint is None:
                # As the original scribble: one call per two-point segment.
                for a, b in zip(op.xy, op.xy[1:], strict=False):
                    draw.line([a, b], fill=rgba, width=op.width)
            else:
                _draw(draw, op, rgba, 0, 0)
        out = Image.alpha_composite(out.convert("RGBA"), layer).convert("RGB")
    return out


def pad_to_square(image: Image.Image, color: tuple[int, int, int] = PAD_COLOR) -> Image.Image:
    """Centre the image on a square of ``color`` (LLaVA's ``expand2square``)."""
    image = image.convert("RGB")
    w, h = image.size
    if w == h:
        return image
    side = max(w, h)
    square = Image.new("RGB", (side, side), color)
    square.paste(image, ((side - w) // 2, (side - h) // 2))
    return square


def model_view(image: Image.Image, side: int = MODEL_SIDE) -> Image.Image:
    """What the model sees: padded to a square with the CLIP mean, resized to 336×336 (bicubic)."""
    return pad_to_square(image).resize((side, side), Image.Resampling.BICUBIC)
