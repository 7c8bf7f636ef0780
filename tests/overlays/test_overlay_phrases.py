"""Referring phrases (docs/VIP_FACTS.md §2) and distinct colours for several regions."""

from __future__ import annotations

import pytest

import overlays as ov

TRI = ((0.0, 0.0), (10.0, 0.0), (0.0, 10.0))
ONE_OF_EACH: dict[str, ov.Prompt] = {
    "rectangle": ov.Rectangle((0, 0, 10, 10)),
    "ellipse": ov.Ellipse((0, 0, 10, 10)),
    "triangle": ov.Triangle(TRI),
    "point": ov.Point((5, 5)),
    "scribble": ov.Scribble(((0, 0), (5, 5))),
    "contour": ov.Contour((TRI,)),
    "mask": ov.Mask((TRI,)),
    "arrow": ov.Arrow((0, 0), (5, 5)),
}


@pytest.mark.parametrize(
    ("kind", "phrase"),
    [
        ("rectangle", "the object within the red rectangle"),
        ("ellipse", "the object within the red ellipse"),
        ("triangle", "the object with the red triangle"),
        ("point", "the object at the red point"),
        ("scribble", "the object with the red scribble"),
        ("contour", "the object with the red mask contour"),
        ("mask", "the object with the red mask"),
        ("arrow", "the object pointed to by the red arrow"),
    ],
)
def test_exact_phrase_for_every_kind(kind: str, phrase: str) -> None:
    assert ov.referring_phrase(ONE_OF_EACH[kind]) == phrase


def test_shape_words_are_the_original_table() -> None:
    assert ov.SHAPE_WORDS == {
        "rectangle": ("within", "rectangle"),
        "ellipse": ("within", "ellipse"),
        "triangle": ("with", "triangle"),
        "point": ("at", "point"),
        "scribble": ("with", "scribble"),
        "contour": ("with", "mask contour"),
        "mask": ("with", "mask"),
        "arrow": ("pointed to by", "arrow"),
    }
    assert set(ov.SHAPE_WORDS) == set(ov.KINDS)


def test_label_colour_and_noun() -> None:
    arrow = ov.Arrow((0, 0), (5, 5), style=ov.Style("blue"), label="person")
    assert ov.referring_phrase(arrow) == "the person pointed to by the blue arrow"
    assert (
        ov.referring_phrase(arrow, noun="instance") == "the instance pointed to by the blue arrow"
    )
    rect = ov.Rectangle((0, 0, 1, 1), style=ov.Style("gold"))
    assert ov.referring_phrase(rect, noun="person") == "the person within the gold rectangle"
    assert ov.referring_phrase(ov.Point((1, 1), label=" dog ")) == "the dog at the red point"


def test_an_unnamed_colour_is_left_out() -> None:
    arrow = ov.Arrow((0, 0), (5, 5), style=ov.Style((12, 200, 7)))
    assert ov.referring_phrase(arrow) == "the object pointed to by the arrow"
    mask = ov.Mask((TRI,), style=ov.Style((1, 2, 3)), label="cup")
    assert ov.referring_phrase(mask) == "the cup with the mask"
    # A palette RGB is the palette colour, and is named.
    assert ov.referring_phrase(ov.Point((1, 1), style=ov.Style((0, 0, 255)))) == (
        "the object at the blue point"
    )


def test_mark_phrase() -> None:
    assert ov.mark_phrase(ONE_OF_EACH["contour"]) == "the red mask contour"
    assert ov.mark_phrase(ov.Ellipse((0, 0, 1, 1), style=ov.Style((9, 9, 9)))) == "the ellipse"


# --------------------------------------------------------------------------- distinct colours


def _names(prompts: list[ov.Prompt]) -> list[str | None]:
    return [p.style.color_name for p in prompts]


def test_several_regions_get_distinct_palette_colours_in_order() -> None:
    prompts = [ov.Rectangle((0, 0, 10 + i, 10)) for i in range(4)]  # all default red
    out = ov.assign_distinct_colors(prompts)
    assert _names(out) == ["red", "lime", "blue", "yellow"]
    assert all(isinstance(p, ov.Rectangle) for p in out)
    assert [p.box for p in out if isinstance(p, ov.Rectangle)] == [p.box for p in prompts]


def test_a_unique_existing_colour_is_kept() -> None:
    prompts: list[ov.Prompt] = [
        ov.Rectangle((0, 0, 10, 10), style=ov.Style("blue", 200, 5), label="a"),
        ov.Point((1, 1), style=ov.Style("red")),
        ov.Mask((TRI,), style=ov.Style("red")),  # duplicate red: reassigned
        ov.Arrow((0, 0), (4, 4), style=ov.Style((1, 2, 3))),  # unnamed: gets a name
    ]
    out = ov.assign_distinct_colors(prompts)
    assert out[0] is prompts[0] and out[1] is prompts[1]
    assert _names(out) == ["blue", "red", "lime", "yellow"]
    # Only the colour changes.
    assert (out[2].style.alpha, out[2].style.width, out[2].kind) == (128, 3.0, "mask")
    assert isinstance(out[3], ov.Arrow) and out[3].tip == (4.0, 4.0)


def test_all_names_are_distinct_while_the_palette_lasts() -> None:
    prompts = [ov.Point((i, i)) for i in range(9)]
    names = _names(ov.assign_distinct_colors(prompts))
    assert len(set(names)) == 9 and set(names) == set(ov.PALETTE)
    # Beyond 9 regions colours repeat, but every prompt still gets a palette colour.
    many = _names(ov.assign_distinct_colors([ov.Point((i, i)) for i in range(12)]))
    assert len(many) == 12 and all(n in ov.PALETTE for n in many)
    assert len(set(many[:9])) == 9


def test_assign_leaves_an_empty_list_and_keeps_order() -> None:
    assert ov.assign_distinct_colors([]) == []
    single = [ov.Ellipse((0, 0, 1, 1), style=ov.Style("aqua"))]
    assert ov.assign_distinct_colors(single) == single


def test_distinct_colors() -> None:
    assert ov.distinct_colors(3) == ["red", "lime", "blue"]
    assert ov.distinct_colors(3, start="blue") == ["blue", "yellow", "fuchsia"]
    assert ov.distinct_colors(2, start="gold") == ["gold", "red"]
    assert ov.distinct_colors(0) == []
