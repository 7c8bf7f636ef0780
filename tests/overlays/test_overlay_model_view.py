"""The model's view: padded to a square with the CLIP mean colour, then 336×336
(docs/VIP_FACTS.md §3)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

import overlays as ov

PAD = (122, 116, 104)


def test_pad_colour_is_the_clip_mean() -> None:
    assert ov.PAD_COLOR == PAD


@pytest.mark.parametrize("size", [(640, 320), (320, 640), (336, 336), (1000, 999), (7, 3)])
def test_model_view_is_336_square_rgb(
    flat: Callable[..., Image.Image], size: tuple[int, int]
) -> None:
    view = ov.model_view(flat(*size))
    assert view.size == (336, 336) and view.mode == "RGB"
    assert ov.model_view(flat(*size), side=224).size == (224, 224)


def test_pad_to_square_centres_a_wide_image(noise: Callable[..., Image.Image]) -> None:
    image = noise(200, 100)
    square = ov.pad_to_square(image)
    assert square.size == (200, 200)
    arr = np.asarray(square)
    assert np.all(arr[:50] == PAD) and np.all(arr[150:] == PAD)
    assert np.array_equal(arr[50:150], np.asarray(image))


def test_pad_to_square_centres_a_tall_image(noise: Callable[..., Image.Image]) -> None:
    image = noise(61, 100)  # odd padding: 39 columns, 19 left and 20 right
    arr = np.asarray(ov.pad_to_square(image))
    assert arr.shape == (100, 100, 3)
    assert np.all(arr[:, :19] == PAD) and np.all(arr[:, 80:] == PAD)
    assert np.array_equal(arr[:, 19:80], np.asarray(image))


def test_a_square_image_is_not_padded(noise: Callable[..., Image.Image]) -> None:
    image = noise(50, 50)
    assert np.array_equal(np.asarray(ov.pad_to_square(image)), np.asarray(image))


def test_pad_colour_fills_the_padding_of_the_model_view(flat: Callable[..., Image.Image]) -> None:
    view = np.asarray(ov.model_view(flat(672, 336, (10, 200, 30))))
    # 672×336 → padded 672×672 (168 rows each side) → 336×336: 84 rows of padding each side.
    assert np.all(view[:80] == PAD) and np.all(view[-80:] == PAD)
    assert np.all(view[90:246] == (10, 200, 30))


def test_a_mark_at_the_far_left_edge_survives(flat: Callable[..., Image.Image]) -> None:
    """Padding, not cropping: a centre crop of a 2:1 image would cut off the left quarter."""
    image = flat(800, 400, (100, 100, 100))
    marked = ov.render(image, [ov.Rectangle((0, 150, 40, 250), style=ov.Style("blue", 255, 5))])
    view = np.asarray(ov.model_view(marked)).astype(int)
    # Left edge of the content, middle row: the blue outline (x = 0..4 at s = 800/336 → 11 px).
    left = view[168, :3]
    assert np.all(left[:, 2] > 200) and np.all(left[:, 0] < 60), left
    # And the content is centred vertically: rows 84..251 hold the image.
    column = view[:, 168]
    assert np.all(column[5:75] == PAD) and np.all(column[95:240] == 100)


def test_model_view_of_a_rendered_prompt_is_the_same_as_padding_first_then_resizing(
    photo: Image.Image,
) -> None:
    marked = ov.render(photo, [ov.Ellipse((100, 50, 400, 300))])
    expected = ov.pad_to_square(marked).resize((336, 336), Image.Resampling.BICUBIC)
    assert np.array_equal(np.asarray(ov.model_view(marked)), np.asarray(expected))
