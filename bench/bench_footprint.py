"""Footprint benchmark: which 128-px tiles a prompt touches, the shapely buffer (before) vs the
segment-by-segment tile test (after, `overlays.footprint`).

1. Cost on a spiky mask contour (a star alternating radii 60 and 1400 px) on 4000×3000 at
   width 2: seconds and peak memory of the footprint alone, each in a fresh process (the
   "before" one under a 4 GiB address-space cap, so that it cannot take the machine down).
2. On ordinary prompts (every kind, generated as in training, three photo sizes): do the two
   give the same tiles, and does either miss a tile the original method paints?
"""

from __future__ import annotations

import json
import math
import random
import resource
import subprocess
import sys
import time
from collections.abc import Sequence

import numpy as np
import shapely
from PIL import Image, ImageDraw
from shapely.geometry import LineString, Polygon
from shapely.geometry import box as shapely_box

import overlays as ov
from overlays.footprint import TILE
from overlays.render import Op, _draw, _regions, compile_prompt

SIZE = (4000, 3000)
COUNTS = [500, 1000, 2000, 4000, 10_000]
BEFORE_UP_TO = 1000  # the quadratic buffer: 2000 points took 152 s and 1.8 GB here
CAP = 4 << 30


# --------------------------------------------------------------------------- before (verbatim)


def old_footprint(ops: Sequence[Op]) -> shapely.Geometry:
    parts: list[shapely.Geometry] = []
    lines: list[list[tuple[float, float]]] = []
    line_margin = 0.0
    for op in ops:
        margin = op.width + op.dilate + 2.0
        if op.name == "rectangle":
            (x1, y1), (x2, y2) = op.xy
            parts.append(shapely_box(x1, y1, x2, y2).exterior.buffer(margin, quad_segs=1))
        elif op.name == "ellipse":
            (x1, y1), (x2, y2) = op.xy
            ring = shapely.affinity.scale(
                shapely.Point((x1 + x2) / 2, (y1 + y2) / 2).buffer(1, quad_segs=16),
                max((x2 - x1) / 2, 0.5),
                max((y2 - y1) / 2, 0.5),
            ).exterior
            sag = 0.0013 * max(x2 - x1, y2 - y1) / 2
            parts.append(ring.buffer(margin + sag, quad_segs=1))
        elif op.name == "dot":
            (x1, y1), (x2, y2) = op.xy
            parts.append(shapely_box(x1, y1, x2, y2).buffer(2, quad_segs=1))
        elif op.name == "fill":
            parts.append(
                Polygon(op.xy).buffer(2, quad_segs=1)
                if len(op.xy) > 2
                else shapely_box(*op.bounds())
            )
        elif op.name == "outline":
            parts.append(LineString([*op.xy, op.xy[0]]).buffer(margin, quad_segs=1))
        elif op.name == "line":
            lines.append(op.xy)
            line_margin = max(line_margin, margin + (op.width if op.joint else 0))
    if lines:
        shapes = []
        for xy in lines:
            pts = np.asarray(xy, dtype=float)
            step = max(1, len(pts) // 256)
            m = line_margin
            if step > 1:
                idx = np.unique(np.r_[np.arange(0, len(pts), step), len(pts) - 1])
                seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
                m += float(np.add.reduceat(seg, idx[:-1]).max()) if len(idx) > 1 else 0.0
                pts = pts[idx]
            if len(pts) == 1 or np.all(pts == pts[0]):
                shapes.append(shapely.Point(pts[0]).buffer(m, quad_segs=2))
            else:
                shapes.append(LineString(pts).buffer(m, quad_segs=2))
        parts.append(shapely.union_all(shapes))
    return shapely.union_all(parts)


def old_tiles(ops: Sequence[Op], size: tuple[int, int]) -> set[tuple[int, int]]:
    """Tiles of the earlier renderer (the bounding box alone when it is at most 2 tiles)."""
    w, h = size
    b = np.array([op.bounds() for op in ops])
    x0 = max(0, math.floor(b[:, 0].min()) // TILE * TILE)
    y0 = max(0, math.floor(b[:, 1].min()) // TILE * TILE)
    x1, y1 = min(w, math.ceil(b[:, 2].max()) + 1), min(h, math.ceil(b[:, 3].max()) + 1)
    if x1 <= x0 or y1 <= y0:
        return set()
    xs, ys = np.arange(x0, x1, TILE), np.arange(y0, y1, TILE)
    if (x1 - x0) * (y1 - y0) <= 2 * TILE * TILE:
        return {(int(x) // TILE, int(y) // TILE) for x in xs for y in ys}
    footprint = old_footprint(ops)
    shapely.prepare(footprint)
    gx, gy = np.meshgrid(xs, ys)
    hit = shapely.intersects(footprint, shapely.box(gx, gy, gx + TILE, gy + TILE))
    return {(int(x) // TILE, int(y) // TILE) for x, y in zip(gx[hit], gy[hit], strict=True)}


# --------------------------------------------------------------------------- helpers


def new_tiles(ops: Sequence[Op], size: tuple[int, int]) -> set[tuple[int, int]]:
    out = set()
    for x0, y0, x1, y1 in _regions(ops, size):
        for x in range(x0 // TILE, (x1 - 1) // TILE + 1):
            for y in range(y0 // TILE, (y1 - 1) // TILE + 1):
                out.add((x, y))
    return out


def painted_tiles(prompt: ov.Prompt, size: tuple[int, int]) -> set[tuple[int, int]]:
    """Tiles the original method paints (full-frame canvas, every contour offset)."""
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for op in compile_prompt(prompt, size):
        if op.name == "outline":
            for dx in range(-op.dilate, op.dilate + 1):
                for dy in range(-op.dilate, op.dilate + 1):
                    draw.polygon([(x + dx, y + dy) for x, y in op.xy], outline=255)
        else:
            _draw(draw, op, 255, 0, 0)
    ys, xs = np.nonzero(np.asarray(mask))
    return set(zip((xs // TILE).tolist(), (ys // TILE).tolist(), strict=True))


def spiky_ops(n: int) -> list[Op]:
    angles = np.linspace(0, 2 * math.pi, n, endpoint=False)
    radii = np.where(np.arange(n) % 2 == 0, 1400.0, 60.0)
    xs, ys = 2000 + 1.3 * radii * np.cos(angles), 1500 + radii * np.sin(angles)
    ring = list(zip(xs.tolist(), ys.tolist(), strict=True))
    return compile_prompt(ov.Contour((ring,), style=ov.Style(width=2)), SIZE)


def one(which: str, n: int) -> None:
    """In a fresh process: the footprint of an n-point star, as JSON seconds and MB."""
    ops = spiky_ops(n)
    resource.setrlimit(resource.RLIMIT_AS, (CAP, resource.RLIM_INFINITY))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    tiles = old_tiles(ops, SIZE) if which == "before" else new_tiles(ops, SIZE)
    seconds = time.perf_counter() - t0
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(json.dumps({"s": seconds, "mb": grown, "tiles": len(tiles)}))


def measure(which: str, n: int) -> str:
    done = subprocess.run(
        [sys.executable, __file__, "--one", which, str(n)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode:
        return f"{'failed (memory cap ' + str(CAP >> 30) + ' GiB)':>24}"
    r = json.loads(done.stdout)
    return f"{r['s']:8.2f} s {r['mb']:8.0f} MB {r['tiles']:4d}t"


def main() -> int:
    print(f"1. footprint of a spiky contour on {SIZE[0]}x{SIZE[1]}, width 2 (23-px dilation)")
    print(f"{'points':>7} | {'before':>24} | {'after':>24}")
    for n in COUNTS:
        before = measure("before", n) if n <= BEFORE_UP_TO else f"{'(not run: minutes, GB)':>24}"
        print(f"{n:7d} | {before} | {measure('after', n)}", flush=True)
    try:
        ov.Contour((tuple((float(i), float(i % 2)) for i in range(20_000)),))
    except ov.InvalidPrompt as exc:
        print(f" 20000 | refused: {exc}")

    print("\n2. ordinary prompts (every kind, generated as in training, 24 per size)")
    print(
        f"{'size':>10} | {'same tiles':>10} | {'after ⊋ before':>14} | {'before ⊋ after':>14} | "
        f"{'missed before':>13} | {'missed after':>12}"
    )
    failures = 0
    for size in [(640, 427), (1920, 1080), (4000, 3000)]:
        w, h = size
        same = more = fewer = missed_before = missed_after = 0
        for seed in range(3):
            for kind in ov.KINDS:
                region = ov.Region((0.2 * w + seed, 0.25 * h, 0.7 * w, 0.8 * h - seed))
                style = ov.sample_style(kind, random.Random(seed))
                prompt = ov.generate(kind, region, size, rng=seed, style=style)
                ops = compile_prompt(prompt, size)
                old, new, truth = (
                    old_tiles(ops, size),
                    new_tiles(ops, size),
                    painted_tiles(prompt, size),
                )
                same += old == new
                more += new > old
                fewer += old > new
                missed_before += bool(truth - old)
                missed_after += bool(truth - new)
        failures += missed_after
        print(
            f"{w:>5}x{h:<4} | {same:>10} | {more:>14} | {fewer:>14} | {missed_before:>13} | "
            f"{missed_after:>12}"
        )
    print("(after ⊋ before: round margins where the old buffer cut corners with chords)")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        one(sys.argv[2], int(sys.argv[3]))
        sys.exit(0)
    sys.exit(main())
