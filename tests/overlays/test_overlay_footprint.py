"""The tiles a prompt touches: found in linear time and memory, never missing a painted pixel.

The renderer composites only the 128-px tiles of a prompt's footprint. The footprint was a
shapely buffer, quadratic in a polygon's vertices (a spiky 20k-point contour: 23.6 GB), and
round where a mask contour is a (2w+1)² square dilation, so tiles at diagonal edges were missed
once w reached about 8 px (4000×3000 at width 1–2).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from overlay_strategies import any_prompt
from PIL import Image, ImageDraw
from test_overlay_render_identity import assert_identical, noise_image

import overlays as ov
from overlays.footprint import TILE
from overlays.render import _draw, _regions, compile_prompt, dilate


def spiky_ring(n: int, size: tuple[int, int], inner: float, outer: float) -> tuple[ov.Pt, ...]:
    """A star of ``n`` points around the image centre, alternating two radii."""
    w, h = size
    angles = np.linspace(0, 2 * math.pi, n, endpoint=False)
    radii = np.where(np.arange(n) % 2 == 0, outer, inner)
    return tuple(
        (float(w / 2 + r * math.cos(a)), float(h / 2 + r * math.sin(a)))
        for a, r in zip(angles, radii, strict=True)
    )


def touched_tiles(prompt: ov.Prompt, size: tuple[int, int], pad: int = 0) -> set[tuple[int, int]]:
    """Tiles (column, row) where the original method paints: a full-frame layer, every offset.
    With ``pad``, on a canvas reaching that far past the image (whole tiles, shifted by an
    integer: the truncation of negative coordinates may move a pixel by one)."""
    w, h = size
    mask = Image.new("L", (w + 2 * pad, h + 2 * pad), 0)
    draw = ImageDraw.Draw(mask)
    for op in compile_prompt(prompt, size):
        shifted = replace(op, xy=[(x + pad, y + pad) for x, y in op.xy])
        if op.name == "outline":
            for dx in range(-op.dilate, op.dilate + 1):
                for dy in range(-op.dilate, op.dilate + 1):
                    draw.polygon([(x + dx, y + dy) for x, y in shifted.xy], outline=255)
        else:
            _draw(draw, shifted, 255, 0, 0)
    ys, xs = np.nonzero(np.asarray(mask))
    return set(zip(((xs - pad) // TILE).tolist(), ((ys - pad) // TILE).tolist(), strict=True))


def footprint_tiles(prompt: ov.Prompt, size: tuple[int, int]) -> set[tuple[int, int]]:
    tiles: set[tuple[int, int]] = set()
    for x0, y0, x1, y1 in _regions(compile_prompt(prompt, size), size):
        for x in range(x0 // TILE, (x1 - 1) // TILE + 1):
            for y in range(y0 // TILE, (y1 - 1) // TILE + 1):
                tiles.add((x, y))
    return tiles


# --------------------------------------------------------------------------- cost


def test_footprint_of_a_spiky_contour_takes_linear_memory() -> None:
    """The largest prompt allowed, a 10 000-point star on 4000×3000, in a fresh process under
    a 2 GiB address-space cap: the quadratic buffer needed gigabytes, this takes megabytes."""
    script = textwrap.dedent(
        """
        import json, math, resource
        import numpy as np
        import overlays as ov
        from overlays.render import _regions, compile_prompt

        size = (4000, 3000)
        angles = np.linspace(0, 2 * math.pi, 10_000, endpoint=False)  # MAX_PROMPT_VERTICES
        radii = np.where(np.arange(len(angles)) % 2 == 0, 1400.0, 60.0)
        xs, ys = 2000 + 1.3 * radii * np.cos(angles), 1500 + radii * np.sin(angles)
        ring = list(zip(xs.tolist(), ys.tolist()))
        ops = compile_prompt(ov.Contour((ring,), style=ov.Style(width=2)), size)
        with open("/proc/self/status") as f:
            vm = next(int(l.split()[1]) for l in f if l.startswith("VmSize")) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + (2 << 30), resource.RLIM_INFINITY))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        regions = _regions(ops, size)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(json.dumps({"grown_kb": grown, "regions": len(regions)}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["regions"] > 0
    assert result["grown_kb"] < 100 * 1024, result


def test_footprint_of_a_spiky_contour_covers_every_painted_tile() -> None:
    size = (1200, 900)
    contour = ov.Contour((spiky_ring(1000, size, 40.0, 420.0),), style=ov.Style(width=2))
    truth = touched_tiles(contour, size)
    assert truth <= footprint_tiles(contour, size)
    assert_identical(noise_image(*size), [contour])


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda ring: ov.Contour((ring,)), "contour"),
        (lambda ring: ov.Mask((ring[:6000], ring[6000:])), "mask"),
        (lambda ring: ov.Scribble(ring), "scribble"),
        (lambda ring: ov.Region((0, 0, 10, 10), polygons=(ring,)), "region"),
        (lambda ring: ov.Region.from_polygons([ring]), "region"),
    ],
    ids=["contour", "mask", "scribble", "region", "region-from-polygons"],
)
def test_a_prompt_over_the_vertex_limit_is_refused_with_the_fix(make, what: str) -> None:  # type: ignore[no-untyped-def]
    ring = spiky_ring(20_000, (4000, 3000), 60.0, 1400.0)
    with pytest.raises(ov.InvalidPrompt) as info:
        make(ring)
    message = str(info.value)
    assert what in message and "20000 points" in message and "10000" in message
    assert "simplify" in message


def test_a_prompt_at_the_vertex_limit_is_accepted() -> None:
    ring = spiky_ring(ov.MAX_PROMPT_VERTICES, (4000, 3000), 60.0, 1400.0)
    assert len(ov.Contour((ring,)).polygons[0]) == ov.MAX_PROMPT_VERTICES


# --------------------------------------------------------------------------- completeness


@pytest.mark.parametrize("width", [1.5, 2.9])
def test_a_contour_on_12_megapixels_keeps_its_square_dilation(width: float) -> None:
    """At 4000×3000 a width of 1 is an 11-px dilation: its corners reach 11·√2 px off a
    diagonal edge, past a round margin; tiles there were not composited (5–78 px lost)."""
    size = (4000, 3000)
    contour = ov.Contour(
        (((1000.3, 700.6), (2600.2, 1500.4), (1300.7, 2400.9), (700.5, 1700.2)),),
        style=ov.Style(width=width),
    )
    assert touched_tiles(contour, size) <= footprint_tiles(contour, size)
    assert_identical(noise_image(*size), [contour])


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_the_footprint_holds_every_painted_tile_and_little_more(data: st.DataObject) -> None:
    size = data.draw(st.tuples(st.integers(200, 700), st.integers(200, 700)), label="size")
    prompt = data.draw(any_prompt(size), label="prompt")
    try:
        prompt = ov.fit_to_image(prompt, size)
    except ov.PromptOutsideImage:
        return
    truth = touched_tiles(prompt, size)
    footprint = footprint_tiles(prompt, size)
    assert truth <= footprint, sorted(truth - footprint)
    # Tight: every extra tile is next to one the prompt paints, on the image or just past it
    # (margins are a few pixels, not tiles).
    beyond = touched_tiles(prompt, size, pad=2 * TILE)
    near = {(x + i, y + j) for x, y in beyond for i in (-1, 0, 1) for j in (-1, 0, 1)}
    if max(size) > 2 * TILE:
        assert footprint <= near, sorted(footprint - near)


# --------------------------------------------------------------------------- dilation


def _dilate_brute(mask: np.ndarray, xs: tuple[int, int], ys: tuple[int, int]) -> np.ndarray:
    out = np.zeros_like(mask)
    for y, x in zip(*np.nonzero(mask), strict=True):
        top, left = max(0, y + ys[0]), max(0, x + xs[0])
        out[top : max(0, y + ys[1] + 1), left : max(0, x + xs[1] + 1)] = 255
    return out


@pytest.mark.parametrize(
    ("xs", "ys"),
    [((-1, 1), (-1, 1)), ((-11, 11), (-11, 11)), ((-70, 70), (-70, 70)), ((0, 5), (0, 90))],
    ids=["d1", "d11", "d70-doubling", "anchored"],
)
def test_dilate_is_the_union_of_shifted_copies(xs: tuple[int, int], ys: tuple[int, int]) -> None:
    """Both paths (cv2 for small kernels, doubling for large ones, whose cost does not grow
    with the kernel: a width-64 contour on 12 MP is a 1523-px square)."""
    mask = np.zeros((230, 310), np.uint8)
    rng = np.random.default_rng(0)
    mask[rng.integers(0, 230, 40), rng.integers(0, 310, 40)] = 255
    mask[0, 0] = mask[229, 309] = mask[0, 309] = 255
    assert np.array_equal(dilate(mask, xs, ys), _dilate_brute(mask, xs, ys))
