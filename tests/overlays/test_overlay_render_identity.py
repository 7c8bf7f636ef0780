"""The tiled renderer `overlays.render` is pixel-identical to the naive full-frame method.

`overlays.render_reference` is the original code's method (a full-image RGBA layer per prompt,
then `Image.alpha_composite`); `render` only touches 128-pixel tiles. Every prompt kind, many
image sizes (sides that are not multiples of 128, and 4000×3000), coordinates next to tile
borders and to 0, prompts partly outside the image, several prompts in one call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from overlay_strategies import MAKERS, any_prompt
from PIL import Image

import overlays as ov

Prompt = ov.Prompt
FAST = settings(max_examples=50, deadline=None)


@functools.cache
def noise_image(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def assert_identical(image: Image.Image, prompts: list[Prompt]) -> None:
    """render == render_reference, or both refuse the prompts with the same error."""
    try:
        expected = np.asarray(ov.render_reference(image, prompts))
    except ov.PromptOutsideImage:
        with pytest.raises(ov.PromptOutsideImage):
            ov.render(image, prompts)
        return
    actual = np.asarray(ov.render(image, prompts))
    if not np.array_equal(actual, expected):
        diff = np.any(actual != expected, axis=2)
        ys, xs = np.nonzero(diff)
        raise AssertionError(
            f"{int(diff.sum())} pixels differ on {image.size} for {prompts!r}; "
            f"first at x={xs[0]}, y={ys[0]}: {actual[ys[0], xs[0]]} != {expected[ys[0], xs[0]]}"
        )


# --------------------------------------------------------------------------- examples

SIZES = [(300, 200), (129, 257), (1000, 333), (333, 1000), (640, 427), (257, 129)]

# Regions with float corners next to tile borders (128, 256, 384), next to 0, and partly
# outside the image on every side.
REGIONS = [
    ov.Region((127.5, 127.9, 256.2, 255.99)),
    ov.Region((0.3, 0.7, 60.4, 44.1)),
    ov.Region((-20.5, -10.25, 90.0, 70.5)),
    ov.Region((10.0, 10.0, 1500.0, 1200.0)),
    ov.Region((120.0, 60.0, 140.5, 400.5)),
    ov.Region(
        (40.0, 30.0, 250.0, 190.0),
        polygons=(((40.0, 30.0), (250.0, 60.0), (200.0, 190.0), (60.0, 150.0)),),
    ),
]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("kind", ov.KINDS)
def test_generated_prompts_are_identical_on_many_sizes(kind: str, size: tuple[int, int]) -> None:
    image = noise_image(*size)
    for seed, region in enumerate(REGIONS):
        try:
            region = ov.fit_region(region, size)
        except ov.PromptOutsideImage:
            continue
        style = ov.sample_style(kind, __import__("random").Random(seed))
        prompt = ov.generate(kind, region, size, rng=seed, style=style)
        assert_identical(image, [prompt])


EDGE_PROMPTS: list[Prompt] = [
    # Next to tile borders.
    ov.Rectangle((127.5, 127.5, 255.5, 255.5)),
    ov.Rectangle((128.0, 0.0, 256.0, 128.0), style=ov.Style(width=9)),
    ov.Ellipse((126.9, 1.1, 384.2, 129.1), style=ov.Style(width=7)),
    ov.Point((128.0, 128.0), radius=20),
    ov.Point((255.6, 127.4), radius=3, aspect=1.9),
    ov.Triangle(((127.6, 10.0), (256.4, 129.0), (129.0, 255.5)), style=ov.Style(width=8)),
    ov.Scribble(((0.4, 127.7), (128.2, 0.3), (256.7, 255.1), (383.9, 128.6)), bezier=True),
    ov.Contour((((127.5, 127.5), (255.5, 128.5), (200.0, 255.5)),), style=ov.Style(width=2)),
    ov.Contour((((128.0, 128.0), (256.0, 128.0), (256.0, 256.0)),), style=ov.Style(width=3)),
    ov.Mask((((127.1, 127.1), (255.9, 127.1), (255.9, 255.9), (127.1, 255.9)),)),
    ov.Arrow((250.5, 250.5), (128.4, 127.6), filled=True),
    ov.Arrow((5.5, 250.0), (127.9, 128.1), filled=False, bend=(60.0, 200.0)),
    # Near 0 and partly outside: PIL truncates toward zero, so signs matter.
    ov.Rectangle((-0.6, -0.4, 40.3, 30.2)),
    ov.Rectangle((-50.0, -50.0, 0.5, 60.0)),
    ov.Ellipse((-30.2, -20.7, 30.4, 20.9), style=ov.Style(width=5)),
    ov.Point((0.2, 0.9), radius=12),
    ov.Triangle(((-30.5, -20.0), (60.5, 5.5), (10.0, 70.2)), style=ov.Style(width=6)),
    ov.Scribble(((-40.0, 10.0), (30.0, -40.0), (80.0, 90.0), (-10.0, 60.0)), bezier=True),
    ov.Scribble(((-0.5, 0.5), (0.5, -0.5), (20.0, 30.0))),
    ov.Contour((((-0.7, -0.3), (50.4, 0.6), (30.0, 40.0)),), style=ov.Style(width=2)),
    ov.Contour((((0.4, 0.4), (40.6, 0.4), (40.6, 30.6), (0.4, 30.6)),), style=ov.Style(width=2)),
    ov.Contour((((-30.0, 10.0), (50.0, -20.0), (60.0, 50.0)),)),
    ov.Mask((((-30.5, 10.0), (50.0, -20.5), (60.2, 50.7)),)),
    ov.Arrow((-40.0, -30.0), (20.5, 15.5), head=12),
    ov.Arrow((60.0, 60.0), (-5.5, 0.5), filled=False),
]


@pytest.mark.parametrize("size", [(300, 260), (384, 384), (129, 129)], ids=str)
@pytest.mark.parametrize("prompt", EDGE_PROMPTS, ids=lambda p: p.kind)
def test_coordinates_near_tile_borders_and_zero(prompt: Prompt, size: tuple[int, int]) -> None:
    assert_identical(noise_image(*size), [prompt])


def _far_edge_prompts(w: int, h: int) -> list[Prompt]:
    """Prompts touching or crossing the right and bottom borders of a w×h image."""
    return [
        ov.Rectangle((w - 60.5, h - 40.5, w + 30.0, h + 20.0)),
        ov.Rectangle((w - 60.0, h - 40.0, float(w), float(h)), style=ov.Style(width=5)),
        ov.Ellipse((w - 50.3, h - 30.3, w + 10.7, h + 12.2), style=ov.Style(width=4)),
        ov.Point((w - 0.5, h - 0.5), radius=10),
        ov.Triangle(((w - 40.0, h - 60.0), (w + 20.0, h - 10.0), (w - 70.0, h + 5.0))),
        ov.Scribble(((w - 80.0, h - 5.0), (w + 10.0, h - 50.0), (w - 5.0, h + 30.0))),
        ov.Mask((((w - 60.0, h - 50.0), (w + 0.0, h - 50.0), (w + 0.0, h + 0.0)),)),
        ov.Mask((((w - 60.0, h - 50.0), (w + 40.0, h - 45.0), (w - 10.0, h + 40.0)),)),
        # A mask contour on the image border, the usual case for a clipped segmentation.
        ov.Contour((((w - 60.0, h - 50.0), (w + 0.0, h - 50.0), (w + 0.0, h + 0.0)),)),
        ov.Contour((((w - 60.0, 20.0), (w + 30.0, 20.0), (w + 30.0, 80.0), (w - 60.0, 80.0)),)),
        ov.Contour(
            (((20.0, h - 60.0), (90.0, h - 60.0), (90.0, h + 0.0), (20.0, h + 0.0)),),
            style=ov.Style(width=3),
        ),
        ov.Contour((((w - 60.3, h - 50.2), (w - 0.4, h - 50.7), (w - 0.2, h - 0.6)),)),
        ov.Arrow((w - 80.0, h - 70.0), (w + 0.0, h + 0.0), filled=True),
    ]


@pytest.mark.parametrize("size", [(300, 200), (257, 385), (640, 427)], ids=str)
def test_prompts_at_the_right_and_bottom_borders(size: tuple[int, int]) -> None:
    for prompt in _far_edge_prompts(*size):
        assert_identical(noise_image(*size), [prompt])


def test_several_prompts_in_one_call() -> None:
    size = (517, 389)
    image = noise_image(*size)
    prompts: list[Prompt] = [
        ov.generate(kind, ov.Region((100.5 + 20 * i, 90.25, 300.0 + 10 * i, 260.75)), size, rng=i)
        for i, kind in enumerate(ov.KINDS)
    ]
    prompts = ov.assign_distinct_colors(prompts)
    assert_identical(image, prompts)
    # Overlapping prompts at the borders, in one call, too.
    assert_identical(image, [*_far_edge_prompts(*size), EDGE_PROMPTS[0], EDGE_PROMPTS[-2]])


@pytest.mark.parametrize(
    "prompt",
    [
        ov.Rectangle((1023.5, 767.5, 2944.2, 2175.9)),
        ov.Contour(
            (((3000.0, 2000.0), (4000.0, 2100.0), (4000.0, 3000.0), (3100.0, 3000.0)),),
            style=ov.Style(width=1.5),
        ),
        ov.Scribble(
            ((10.5, 2990.5), (1500.0, 100.0), (2500.0, 2900.0), (3990.0, 20.0)), bezier=True
        ),
        ov.Arrow((3900.0, 2900.0), (2047.6, 1535.4), bend=(3000.0, 2000.0), filled=False),
    ],
    ids=lambda p: p.kind,
)
def test_identical_on_a_12_megapixel_photo(prompt: Prompt) -> None:
    assert_identical(noise_image(4000, 3000), [prompt])


# --------------------------------------------------------------------------- properties

sizes = st.tuples(st.integers(1, 420), st.integers(1, 420))


@pytest.mark.parametrize("kind", ov.KINDS)
@FAST
@given(data=st.data())
def test_identical_for_generated_prompts_of_every_kind(kind: str, data: st.DataObject) -> None:
    size = data.draw(sizes, label="size")
    prompt = data.draw(MAKERS[kind](size), label="prompt")
    assert_identical(noise_image(*size), [prompt])


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_identical_for_several_random_prompts(data: st.DataObject) -> None:
    size = data.draw(sizes, label="size")
    prompts = data.draw(st.lists(any_prompt(size), min_size=2, max_size=5), label="prompts")
    assert_identical(noise_image(*size), prompts)


@settings(max_examples=40, deadline=None)
@given(
    size=sizes,
    kind=st.sampled_from(ov.KINDS),
    corners=st.tuples(*(st.floats(-0.3, 1.3) for _ in range(4))),
    seed=st.integers(0, 2**32 - 1),
)
def test_identical_for_prompts_generated_from_random_regions(
    size: tuple[int, int], kind: str, corners: tuple[float, ...], seed: int
) -> None:
    w, h = size
    xa, ya, xb, yb = corners
    box = (min(xa, xb) * w, min(ya, yb) * h, max(xa, xb) * w, max(ya, yb) * h)
    try:
        region = ov.fit_region(ov.Region(box), size)
    except ov.InvalidPrompt:
        return  # empty or off-image regions are validation's business, tested elsewhere
    rng = __import__("random").Random(seed)
    try:
        prompt = ov.generate_sampled(kind, region, size, rng)
    except ov.InvalidPrompt:
        return  # e.g. a region too thin to hold a triangle
    assert_identical(noise_image(*size), [prompt])


def test_identity_helper_can_fail(noise: Callable[..., Image.Image]) -> None:
    """The oracle is not vacuous: a one-pixel difference is reported."""
    image = noise(50, 40)
    good = ov.render_reference(image, [ov.Rectangle((5, 5, 30, 30))])
    bad = good.copy()
    bad.putpixel((0, 0), (0, 0, 0) if bad.getpixel((0, 0)) != (0, 0, 0) else (1, 1, 1))
    assert not np.array_equal(np.asarray(good), np.asarray(bad))
