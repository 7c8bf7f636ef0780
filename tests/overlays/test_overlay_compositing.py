"""Pixel-level compositing: colours, alpha, s-scaled widths, and where pixels may change.

Expected values are computed independently of `overlays`: PIL's ``alpha_composite`` on a
1-pixel image, and widths from ``max(int(units * max(W, H) / 336), 1)`` (docs/VIP_FACTS.md §1).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

import overlays as ov

GREY = (100, 100, 100)
Prompt = ov.Prompt


def composite_1px(
    background: tuple[int, int, int], rgba: tuple[int, int, int, int]
) -> tuple[int, int, int]:
    """The pixel PIL's alpha_composite gives for one RGBA colour over an opaque background."""
    base = Image.new("RGBA", (1, 1), (*background, 255))
    layer = Image.new("RGBA", (1, 1), rgba)
    r, g, b = Image.alpha_composite(base, layer).convert("RGB").getpixel((0, 0))  # type: ignore[misc]
    return (r, g, b)


def px(units: float, size: tuple[int, int]) -> int:
    """Model units to pixels, written out again here: max(int(units * max(W,H)/336), 1)."""
    return max(int(units * max(size) / 336), 1)


def changed(before: Image.Image, after: Image.Image) -> np.ndarray:
    return np.any(np.asarray(before) != np.asarray(after), axis=2)


def run_length(line: np.ndarray, start: int) -> int:
    """Length of the run of True values in ``line`` that begins at or after ``start``."""
    idx = np.flatnonzero(line[start:])
    assert idx.size, "no coloured pixel found on the measuring line"
    first = start + int(idx[0])
    n = 0
    while first + n < line.size and line[first + n]:
        n += 1
    return n


# --------------------------------------------------------------------------- colour and alpha


def test_expected_colour_is_pils_formula() -> None:
    # Sanity check of the oracle itself: PIL rounds (255·128 + 100·127) / 255 = 177.8 to 178.
    assert composite_1px(GREY, (255, 0, 0, 128)) == (178, 50, 50)
    for channel, (src, dst) in enumerate(((255, 100), (0, 100), (0, 100))):
        exact = (src * 128 + dst * 127) / 255
        assert abs(composite_1px(GREY, (255, 0, 0, 128))[channel] - exact) <= 1


def test_red_rectangle_alpha_128_on_grey_gives_exact_rgb(flat: Callable[..., Image.Image]) -> None:
    image = flat(336, 336, GREY)
    out = ov.render(image, [ov.Rectangle((50, 60, 150, 160))])
    expected = composite_1px(GREY, (255, 0, 0, 128))
    # PIL draws a rectangle outline inward from the box: columns 50..52 on the left edge.
    assert out.getpixel((50, 100)) == expected
    assert out.getpixel((52, 100)) == expected
    assert out.getpixel((53, 100)) == GREY
    assert out.getpixel((49, 100)) == GREY
    assert out.getpixel((150, 100)) == expected  # right edge includes x2
    assert out.getpixel((151, 100)) == GREY
    assert out.getpixel((100, 60)) == expected  # top edge
    assert out.getpixel((100, 110)) == GREY  # the inside is untouched


@pytest.mark.parametrize(
    ("color", "alpha", "background"),
    [
        ("red", 128, (100, 100, 100)),
        ("blue", 128, (10, 200, 30)),
        ("gold", 200, (0, 0, 0)),
        ((12, 34, 56), 96, (255, 255, 255)),
        ("lime", 1, (50, 60, 70)),
    ],
)
def test_every_changed_pixel_is_one_composite(
    flat: Callable[..., Image.Image],
    color: str | tuple[int, int, int],
    alpha: int,
    background: tuple[int, int, int],
) -> None:
    """One RGBA layer per prompt: overlapping primitives of one prompt never stack their alpha."""
    style = ov.Style(color=color, alpha=alpha, width=4)
    image = flat(300, 200, background)
    expected = composite_1px(background, style.rgba)
    contour_ring = ((40.0, 30.0), (260.0, 40.0), (150.0, 170.0))
    prompts: list[Prompt] = [
        ov.Rectangle((20, 20, 120, 90), style=style),
        ov.Contour((contour_ring,), style=style),  # (2w+1)² overlapping copies of the outline
        ov.Triangle(((60, 100), (200, 120), (90, 190)), style=style),  # rounded joints overlap
        ov.Scribble(((10, 10), (290, 190), (10, 190), (290, 10)), bezier=True, style=style),
        ov.Arrow((250, 150), (180, 60), style=style, bend=(230, 90), filled=False),
    ]
    for prompt in prompts:
        out = np.asarray(ov.render(image, [prompt]))
        diff = np.any(out != np.asarray(image), axis=2)
        assert diff.any(), prompt.kind
        values = {tuple(int(c) for c in v) for v in out[diff]}
        assert values == {expected}, prompt.kind


def test_alpha_255_paints_the_exact_colour_and_alpha_0_nothing(
    flat: Callable[..., Image.Image],
) -> None:
    image = flat(200, 200, GREY)
    opaque = ov.render(image, [ov.Rectangle((10, 10, 100, 100), style=ov.Style("purple", 255))])
    assert opaque.getpixel((10, 50)) == (128, 0, 128)
    clear = ov.render(image, [ov.Rectangle((10, 10, 100, 100), style=ov.Style("purple", 0))])
    assert np.array_equal(np.asarray(clear), np.asarray(image))


def test_prompts_are_composited_one_after_the_other(flat: Callable[..., Image.Image]) -> None:
    image = flat(200, 200, GREY)
    red = ov.Mask((((10, 10), (120, 10), (120, 120), (10, 120)),), style=ov.Style("red", 128))
    blue = ov.Mask((((60, 60), (180, 60), (180, 180), (60, 180)),), style=ov.Style("blue", 100))
    out = ov.render(image, [red, blue])
    after_red = composite_1px(GREY, (255, 0, 0, 128))
    assert out.getpixel((30, 30)) == after_red
    assert out.getpixel((150, 150)) == composite_1px(GREY, (0, 0, 255, 100))
    assert out.getpixel((90, 90)) == composite_1px(after_red, (0, 0, 255, 100))
    # Order matters: blue first, then red, gives a different overlap.
    swapped = ov.render(image, [blue, red])
    assert swapped.getpixel((90, 90)) == composite_1px(
        composite_1px(GREY, (0, 0, 255, 100)), (255, 0, 0, 128)
    )
    assert swapped.getpixel((90, 90)) != out.getpixel((90, 90))


# --------------------------------------------------------------------------- widths scale with s


@pytest.mark.parametrize(
    ("size", "expected"),
    [((336, 336), 3), ((1344, 1344), 12), ((1000, 500), 8), ((500, 1000), 8), ((112, 60), 1)],
)
def test_rectangle_stroke_width_scales_with_s(
    flat: Callable[..., Image.Image], size: tuple[int, int], expected: int
) -> None:
    w, h = size
    assert px(3, size) == expected
    image = flat(w, h, GREY)
    box = (0.1 * w, 0.1 * h, 0.9 * w, 0.9 * h)
    out = ov.render(image, [ov.Rectangle(box)])
    diff = changed(image, out)
    row = diff[h // 2]
    assert run_length(row, 0) == expected  # left edge, measured across it
    column = diff[:, w // 2]
    assert run_length(column, 0) == expected  # top edge


def _measure(kind: str, size: tuple[int, int], flat: Callable[..., Image.Image]) -> int:
    """Pixels across one stroke of a ``kind`` prompt drawn at proportional coordinates."""
    w, h = size
    k = w / 336  # the drawing is the same in model units at both sizes
    image = flat(w, h, GREY)
    prompt: Prompt
    if kind == "ellipse":
        prompt = ov.Ellipse((40 * k, 40 * k, 300 * k, 300 * k))
        return run_length(changed(image, ov.render(image, [prompt]))[h // 2], 0)
    if kind == "scribble":
        prompt = ov.Scribble(((20 * k, 168 * k), (320 * k, 168 * k)))
        return run_length(changed(image, ov.render(image, [prompt]))[:, w // 2], 0)
    if kind == "arrow":
        prompt = ov.Arrow((300 * k, 168 * k), (40 * k, 168 * k))
        return run_length(changed(image, ov.render(image, [prompt]))[:, int(250 * k)], 0)
    if kind == "triangle":
        prompt = ov.Triangle(((40 * k, 60 * k), (300 * k, 60 * k), (168 * k, 300 * k)))
        return run_length(changed(image, ov.render(image, [prompt]))[:, w // 2], 0)
    if kind == "contour":
        ring = ((100 * k, 50 * k), (250 * k, 50 * k), (250 * k, 280 * k), (100 * k, 280 * k))
        prompt = ov.Contour((ring,))
        return run_length(changed(image, ov.render(image, [prompt]))[h // 2], 0)
    if kind == "point":
        prompt = ov.Point((168 * k, 168 * k))
        return run_length(changed(image, ov.render(image, [prompt]))[h // 2], 0)
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "small", "large"),
    [
        ("ellipse", 3, 12),
        ("scribble", 3, 12),
        ("arrow", 3, 12),
        ("triangle", 3, 12),
        # Contour: the outline redrawn at every offset in [-w, w]², w = 1 unit → 2w+1 pixels.
        ("contour", 3, 9),
        # Point: radius 8 units, a filled disc 2r+1 pixels across.
        ("point", 17, 65),
    ],
)
def test_stroke_widths_scale_with_s_for_every_stroked_kind(
    flat: Callable[..., Image.Image], kind: str, small: int, large: int
) -> None:
    assert _measure(kind, (336, 336), flat) == small
    assert _measure(kind, (1344, 1344), flat) == large


def test_width_is_clamped_to_one_pixel_on_tiny_images(flat: Callable[..., Image.Image]) -> None:
    image = flat(20, 10, GREY)  # s = 20/336: 3 units → int(0.18) = 0 → clamped to 1
    assert px(3, (20, 10)) == 1
    out = ov.render(image, [ov.Rectangle((2, 2, 17, 8))])
    diff = changed(image, out)
    assert diff[5, 2] and not diff[5, 3]
    assert diff[2, 10] and not diff[3, 10]
    # A contour of 1 unit is w = 1 pixel too, not 0 (which would draw only the bare outline).
    out = ov.render(image, [ov.Contour((((4, 3), (15, 3), (15, 8), (4, 8)),))])
    assert run_length(changed(image, out)[5], 0) == 3


def test_thin_width_on_model_sized_image_is_one_pixel(flat: Callable[..., Image.Image]) -> None:
    image = flat(336, 336, GREY)
    out = ov.render(image, [ov.Rectangle((50, 50, 150, 150), style=ov.Style(width=0.2))])
    assert run_length(changed(image, out)[100], 0) == 1


# --------------------------------------------------------------------------- locality


def _allowed_region(prompt: Prompt, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The pixel box a prompt may touch, derived from its geometry and s-scaled width."""
    w_px = px(prompt.style.width, size)
    if isinstance(prompt, ov.Rectangle | ov.Ellipse):
        x1, y1, x2, y2 = prompt.box
        m = 1.0
    elif isinstance(prompt, ov.Point):
        r = px(prompt.radius, size)
        cx, cy = prompt.center
        x1, y1 = cx - r * prompt.aspect, cy - r / prompt.aspect
        x2, y2 = cx + r * prompt.aspect, cy + r / prompt.aspect
        m = 1.0
    elif isinstance(prompt, ov.Triangle | ov.Scribble):
        # A Bézier curve lies in the convex hull of its control points.
        xs = [p[0] for p in prompt.points]
        ys = [p[1] for p in prompt.points]
        x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
        m = w_px + 1.0
    elif isinstance(prompt, ov.Mask | ov.Contour):
        xs = [p[0] for ring in prompt.polygons for p in ring]
        ys = [p[1] for ring in prompt.polygons for p in ring]
        x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
        m = (w_px if isinstance(prompt, ov.Contour) else 0) + 1.0
    elif isinstance(prompt, ov.Arrow):
        head = prompt.head if prompt.head is not None else prompt.length
        pts = [prompt.tail, prompt.tip] + ([prompt.bend] if prompt.bend else [])
        xs = [p[0] for p in pts] + [prompt.tip[0] - head, prompt.tip[0] + head]
        ys = [p[1] for p in pts] + [prompt.tip[1] - head, prompt.tip[1] + head]
        x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
        m = w_px + 1.0
    else:  # pragma: no cover
        raise AssertionError(prompt)
    return (
        math.floor(x1 - m),
        math.floor(y1 - m),
        math.ceil(x2 + m),
        math.ceil(y2 + m),
    )


LOCAL_PROMPTS: list[Prompt] = [
    ov.Rectangle((120.5, 80.25, 260.75, 190.5)),
    ov.Ellipse((130, 90, 250.5, 200), style=ov.Style(width=6)),
    ov.Point((200.3, 150.7), radius=12, aspect=1.7),
    ov.Triangle(((140, 100), (260, 120), (180, 210)), style=ov.Style(width=8)),
    ov.Scribble(((130, 100), (270, 200), (140, 210), (260, 90)), bezier=True),
    ov.Scribble(((130, 100), (170, 130), (150, 180), (250, 190), (260, 100))),
    ov.Mask((((130, 90), (260, 110), (200, 200)), ((100, 200), (120, 200), (110, 220)))),
    ov.Contour((((130, 90), (260, 110), (200, 200)),), style=ov.Style(width=2)),
    ov.Arrow((300, 250), (200, 150), head=30, filled=True),
    ov.Arrow((300, 250), (200, 150), filled=False, bend=(240, 210), style=ov.Style(width=5)),
]


@pytest.mark.parametrize("prompt", LOCAL_PROMPTS, ids=lambda p: p.kind)
def test_nothing_outside_the_prompts_bounding_region_changes(
    noise: Callable[..., Image.Image], prompt: Prompt
) -> None:
    image = noise(420, 330, seed=3)
    before = np.asarray(image).copy()
    out = ov.render(image, [prompt])
    assert np.array_equal(np.asarray(image), before), "render must not modify its input"
    diff = changed(image, out)
    x1, y1, x2, y2 = _allowed_region(prompt, image.size)
    inside = np.zeros_like(diff)
    inside[max(y1, 0) : y2 + 1, max(x1, 0) : x2 + 1] = True
    assert diff.any()
    assert not (diff & ~inside).any(), f"{prompt.kind} changed pixels outside {x1, y1, x2, y2}"


# --------------------------------------------------------------------------- image handling


def test_render_copies_unless_inplace(flat: Callable[..., Image.Image]) -> None:
    image = flat(100, 80, GREY)
    out = ov.render(image, [ov.Rectangle((10, 10, 50, 50))])
    assert out is not image and image.getpixel((10, 20)) == GREY
    same = ov.render(image, [ov.Rectangle((10, 10, 50, 50))], inplace=True)
    assert same is image and image.getpixel((10, 20)) == out.getpixel((10, 20))


@pytest.mark.parametrize("mode", ["RGBA", "L", "P"])
def test_render_returns_rgb_for_any_input_mode(mode: str) -> None:
    image = Image.new("RGB", (64, 48), GREY).convert(mode)
    out = ov.render(image, [ov.Rectangle((5, 5, 40, 40))])
    assert out.mode == "RGB" and out.size == (64, 48)
    assert out.getpixel((5, 20)) == composite_1px(
        image.convert("RGB").getpixel((5, 20)),  # type: ignore[arg-type]
        (255, 0, 0, 128),
    )


def test_render_with_no_prompts_is_an_unchanged_copy(photo: Image.Image) -> None:
    out = ov.render(photo, [])
    assert out is not photo and np.array_equal(np.asarray(out), np.asarray(photo))
