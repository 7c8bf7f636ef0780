"""Prompts partly outside the image and 12-megapixel contours look as the original draws them.

The original ViP-LLaVA code draws every prompt with its own coordinates on a full-image RGBA
layer; PIL cuts what falls outside at the canvas edge (docs/VIP_FACTS.md §8). Clipping a
rectangle to the image first would draw an edge along the border the original never draws. The
oracle here is raw PIL, independent of `overlays`.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from overlay_strategies import rings
from PIL import Image, ImageDraw
from test_overlay_render_identity import assert_identical, noise_image

import overlays as ov
from overlays.style import pixels, scale_of


def original(image: Image.Image, prompt: ov.Prompt) -> np.ndarray:
    """The original code's drawing of a rectangle, mask or mask contour, written out in PIL."""
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    rgba = prompt.style.rgba
    w = pixels(prompt.style.width, scale_of(image.size))
    if isinstance(prompt, ov.Rectangle):
        draw.rectangle(prompt.box, outline=rgba, width=w)
    elif isinstance(prompt, ov.Mask):
        for ring in prompt.polygons:
            draw.polygon(ring, fill=rgba)
    elif isinstance(prompt, ov.Contour):
        for ring in prompt.polygons:
            for dx in range(-w, w + 1):
                for dy in range(-w, w + 1):
                    draw.polygon([(x + dx, y + dy) for x, y in ring], outline=rgba)
    out = Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")
    return np.asarray(out)


PARTLY_OUTSIDE = [
    ov.Rectangle((-10.5, 20.0, 150.0, 90.25), style=ov.Style(width=5)),
    ov.Rectangle((30.0, -40.0, 90.0, 50.0), style=ov.Style(width=9)),
    ov.Rectangle((-60.2, -50.7, 250.3, 190.6), style=ov.Style(width=20)),
    ov.Mask((((-30.5, 10.0), (150.0, -20.5), (60.2, 250.7)),)),
    ov.Contour((((-30.0, 10.0), (150.0, -20.0), (160.0, 150.0)),), style=ov.Style(width=3)),
    ov.Contour(
        (((-0.6, 40.0), (80.0, 40.0), (80.0, 90.5), (-0.6, 90.5)),), style=ov.Style(width=2)
    ),
    ov.Contour((((-500.0, 20.0), (120.0, 20.0), (120.0, 70.0)),), style=ov.Style(width=4)),
]


@pytest.mark.parametrize("prompt", PARTLY_OUTSIDE, ids=lambda p: p.kind)
def test_a_prompt_partly_outside_is_drawn_unclipped(prompt: ov.Prompt) -> None:
    image = noise_image(200, 160)
    expected = original(image, prompt)
    for drawn in (ov.render(image, [prompt]), ov.render_reference(image, [prompt])):
        diff = np.any(np.asarray(drawn) != expected, axis=2)
        assert not diff.any(), f"{int(diff.sum())} px differ, first at {np.argwhere(diff)[0]}"


def test_a_rectangle_off_the_left_edge_gains_no_edge_at_x0() -> None:
    image = noise_image(200, 160)
    drawn = np.asarray(ov.render(image, [PARTLY_OUTSIDE[0]]))
    assert np.array_equal(drawn[30:80, 0], np.asarray(image)[30:80, 0])


# --------------------------------------------------------------------------- 12 megapixels

LARGE = [(4000, 3000), (3000, 4000), (4000, 2999), (2561, 1921)]


@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_contours_of_width_1_to_3_on_large_photos_match_the_original(data: st.DataObject) -> None:
    """Widths 1–3 are dilations of 7–35 px here: square corners reach past a round margin."""
    size = data.draw(st.sampled_from(LARGE), label="size")
    polys = data.draw(st.lists(rings(size), min_size=1, max_size=2), label="polygons")
    width = data.draw(st.floats(1.0, 3.0), label="width")
    try:
        contour = ov.Contour(tuple(polys), style=ov.Style(width=width))
        ov.fit_to_image(contour, size)
    except ov.InvalidPrompt:
        return
    assert_identical(noise_image(*size), [contour])
