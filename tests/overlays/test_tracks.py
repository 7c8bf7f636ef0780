"""Tracks: keyframes, tracked frames and interpolation between them; the versioned JSON form."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import overlays as ov
from overlays.errors import InvalidTrack
from overlays.tracks import Track, interpolate, moved

RED = ov.Style(color="red")


def box(x: float, y: float, size: float = 10) -> ov.Rectangle:
    return ov.Rectangle((x, y, x + size, y + size), style=RED, label="car")


def test_key_wins_then_tracked_then_interpolated() -> None:
    track = Track({0: box(0, 0), 10: box(100, 50)}).with_tracked({3: box(7, 7), 10: box(1, 1)})
    assert track.prompt_at(0) == (box(0, 0), "key")
    assert track.prompt_at(10) == (box(100, 50), "key")  # a tracker never overwrites a keyframe
    assert track.prompt_at(3) == (box(7, 7), "tracked")
    middle = track.prompt_at(5)
    assert middle is not None and middle[1] == "interpolated"
    assert middle[0].box == pytest.approx((50, 25, 60, 35))
    assert middle[0].style == RED and middle[0].label == "car"
    assert [track.source_at(i) for i in (0, 3, 5, 10)] == ["key", "tracked", "interpolated", "key"]


def test_outside_the_keyframes_only_tracked_frames_show() -> None:
    track = Track({5: box(0, 0), 9: box(4, 4)})
    assert track.prompt_at(4) is None and track.prompt_at(10) is None
    assert track.source_at(4) is None and track.source_at(10) is None
    tracked = track.with_tracked({10: box(5, 5), 11: box(6, 6)}, lost_at=12)
    assert tracked.prompt_at(11) == (box(6, 6), "tracked")
    assert tracked.prompt_at(12) is None and tracked.lost_at == 12
    assert tracked.span() == (5, 11)


def test_edits_return_new_tracks() -> None:
    empty = Track()
    assert not empty and empty.kind is None
    one = empty.with_keyframe(3, box(0, 0))
    assert not empty.keyframes and list(one.keyframes) == [3] and one.kind == "rectangle"
    tracked = one.with_tracked({4: box(1, 1), 5: box(2, 2)}, lost_at=6)
    corrected = tracked.with_keyframe(4, box(9, 9))  # a corrected tracked box is a keyframe
    assert corrected.prompt_at(4) == (box(9, 9), "key") and 4 not in corrected.tracked
    assert corrected.lost_at == 6
    assert corrected.with_keyframe(6, box(3, 3)).lost_at is None  # found again where it was lost
    assert corrected.without_keyframe(4).prompt_at(4) is None
    assert corrected.without_keyframe(99) == corrected
    assert corrected.without_tracked() == Track({3: box(0, 0), 4: box(9, 9)})
    assert corrected.without_tracked((5, 9)) == Track({3: box(0, 0), 4: box(9, 9)})
    assert corrected.without_tracked((9, 7)).tracked == {5: box(2, 2)}  # either order
    assert corrected.without_tracked((0, 5)).lost_at == 6  # the loss lies outside the span
    with pytest.raises(InvalidTrack, match="empty"):
        Track().span()


def test_keyframes_are_sorted_and_read_only() -> None:
    track = Track({9: box(9, 9), 2: box(2, 2)})
    assert list(track.keyframes) == [2, 9]
    with pytest.raises(TypeError):
        track.keyframes[5] = box(5, 5)  # type: ignore[index]


def test_one_kind_per_track() -> None:
    with pytest.raises(InvalidTrack, match="one kind of prompt, got point, rectangle"):
        Track({0: box(0, 0)}).with_keyframe(4, ov.Point((3, 3)))
    with pytest.raises(InvalidTrack, match="integer ≥ 0"):
        Track({-1: box(0, 0)})


def test_json_round_trip() -> None:
    track = Track({12: box(0, 0), 20: box(8, 8)}).with_tracked(
        {21: box(9, 9)}, lost_at=22, lost_why="it left the frame"
    )
    data = json.loads(json.dumps(track.to_dict()))
    assert data["format"] == "vipstudio.track/1" and data["lost_at"] == 22
    assert data["lost_why"] == "it left the frame"
    assert "lost_why" not in Track({1: box(0, 0)}).to_dict()  # only written when known
    assert set(data["keyframes"]) == {"12", "20"} and data["keyframes"]["12"]["kind"] == "rectangle"
    assert Track.from_dict(data) == track


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"format": "vipstudio.track/2", "keyframes": {}}, "upgrade"),
        ({"format": "vipstudio.track/1", "keyframes": {}, "extra": 1}, "unknown key"),
        ({"format": "vipstudio.track/1", "keyframes": {"x": {}}}, "'x' is not a frame index"),
        ({"format": "vipstudio.track/1", "keyframes": {"3": {"kind": "blob"}}}, "frame 3"),
        ({"format": "vipstudio.track/1", "keyframes": [], "lost_at": None}, "JSON object"),
        ({"format": "vipstudio.track/1", "keyframes": {}, "lost_at": "7"}, "lost_at"),
    ],
)
def test_bad_json_is_a_named_error(data: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidTrack, match=words):
        Track.from_dict(data)


def test_interpolate_each_coordinate_kind() -> None:
    a = ov.Point((0, 0), radius=4)
    b = ov.Point((10, 20), radius=8)
    mid = interpolate(a, b, 0.5)
    assert isinstance(mid, ov.Point) and mid.center == (5, 10) and mid.radius == 6
    arrow = interpolate(ov.Arrow((0, 0), (10, 0), bend=(5, 2)), ov.Arrow((0, 10), (10, 20)), 0.5)
    assert isinstance(arrow, ov.Arrow)
    assert (arrow.tail, arrow.tip, arrow.bend) == ((0, 5), (10, 10), (5, 8.5))
    tri = interpolate(
        ov.Triangle(((0, 0), (10, 0), (0, 10))), ov.Triangle(((10, 10), (20, 10), (10, 20))), 0.3
    )
    assert isinstance(tri, ov.Triangle) and tri.points[0] == pytest.approx((3, 3))
    ellipse = interpolate(ov.Ellipse((0, 0, 10, 10)), ov.Ellipse((10, 0, 30, 10)), 0.5)
    assert isinstance(ellipse, ov.Ellipse) and ellipse.box == (5, 0, 20, 10)


def test_interpolate_keeps_style_and_label_of_the_first() -> None:
    a = ov.Rectangle((0, 0, 10, 10), style=ov.Style(color="blue"), label="dog")
    b = ov.Rectangle((10, 10, 20, 20), style=ov.Style(color="red"), label="cat")
    for w in (0.0, 0.5, 1.0):
        out = interpolate(a, b, w)
        assert out.style == a.style and out.label == "dog"
    assert interpolate(a, b, 1.0).box == b.box


def test_interpolate_polygons_with_different_vertex_counts() -> None:
    square = ov.Mask((((0, 0), (10, 0), (10, 10), (0, 10)),))
    # The same square shifted by 20, drawn from another corner the other way round, 8 vertices.
    shifted = ov.Mask(
        (((30, 10), (30, 5), (30, 0), (25, 0), (20, 0), (20, 5), (20, 10), (25, 10)),)
    )
    mid = interpolate(square, shifted, 0.5)
    assert isinstance(mid, ov.Mask) and len(mid.polygons[0]) == 8
    assert mid.bounds == pytest.approx((10, 0, 20, 10))
    assert mid.geometry().area == pytest.approx(100)  # not twisted into a bow tie


def test_interpolate_scribbles_resampled_along_the_stroke() -> None:
    a = ov.Scribble(((0, 0), (10, 0)))
    b = ov.Scribble(((0, 10), (5, 10), (10, 10)))
    mid = interpolate(a, b, 0.5)
    assert isinstance(mid, ov.Scribble) and mid.points == ((0, 5), (5, 5), (10, 5))


def test_interpolate_holds_the_nearer_key_when_the_shapes_cannot_blend() -> None:
    one = ov.Contour((((0, 0), (10, 0), (5, 10)),))
    two = ov.Contour((((0, 0), (4, 0), (2, 4)), ((6, 6), (9, 6), (8, 9))))
    assert interpolate(one, two, 0.4) == one
    assert interpolate(one, two, 0.6).polygons == two.polygons


def test_interpolate_refuses_mixed_kinds() -> None:
    with pytest.raises(ov.InvalidPrompt, match="cannot interpolate a point into a rectangle"):
        interpolate(ov.Point((0, 0)), box(0, 0), 0.5)
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        interpolate(box(0, 0), box(1, 1), 1.5)


def test_interpolate_moves_an_explicit_region() -> None:
    region_a = ov.Region((0, 0, 10, 10))
    region_b = ov.Region((20, 20, 40, 40))
    a = ov.Arrow((50, 50), (5, 5), region=region_a)
    b = ov.Arrow((60, 60), (30, 30), region=region_b)
    mid = interpolate(a, b, 0.5)
    assert mid.region is not None and mid.region.box == (10, 10, 25, 25)


def test_moved_translates_and_scales_by_the_box() -> None:
    mask = ov.Mask((((10, 10), (20, 10), (20, 20)),), label="x")
    out = moved(mask, (10, 10, 20, 20), (110, 10, 130, 30))
    assert out.polygons == (((110, 10), (130, 10), (130, 30)),) and out.label == "x"
    point = moved(ov.Point((15, 15), radius=5), (10, 10, 20, 20), (20, 20, 40, 40))
    assert point.center == (30, 30) and point.radius == 5


@given(x=st.floats(-100, 100), y=st.floats(-100, 100), w=st.floats(0, 1), size=st.floats(1, 50))
def test_interpolated_boxes_stay_between_their_keys(
    x: float, y: float, w: float, size: float
) -> None:
    a, b = box(0, 0, 10), box(x, y, size)
    out = interpolate(a, b, w)
    assert isinstance(out, ov.Rectangle)
    for got, lo, hi in zip(out.box, a.box, b.box, strict=True):
        assert min(lo, hi) - 1e-9 <= got <= max(lo, hi) + 1e-9
