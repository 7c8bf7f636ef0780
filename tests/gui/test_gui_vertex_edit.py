"""Vertex editing, multi-select and Shift constraints in the Qt-free core (issue 13): the
vertex geometry, the select tool's gestures as edits, and group edits on the document."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

import overlays as ov
from app.gui import geometry as geo
from app.gui import vertices as vx
from app.gui.document import PromptDocument
from app.gui.tools import Edit, ToolContext, make_tool

SIZE = (600, 400)
SQUARE = ((100.0, 100.0), (200.0, 100.0), (200.0, 200.0), (100.0, 200.0))
MASK = ov.Mask(polygons=(SQUARE,))


def ctx(**kw: object) -> ToolContext:
    base: dict[str, object] = {"image_size": SIZE, "style": ov.Style(), "tolerance": 4.0}
    base.update(kw)
    return ToolContext(**base)


def only(edits: list[Edit]) -> Edit:
    assert len(edits) == 1, edits
    return edits[0]


def test_vertices_move_add_and_delete_with_the_kinds_minimum() -> None:
    assert vx.vertex_at(MASK, (201, 99), 3) == (0, 1)
    assert vx.vertex_at(MASK, (150, 150), 3) is None
    moved = vx.move(MASK, (0, 2), (250, 260))
    assert isinstance(moved, ov.Mask) and moved.polygons[0][2] == (250, 260)
    assert vx.move(MASK, (0, 2), (100, 50)) is None  # edges would cross: refused
    (vertex, foot) = vx.edge_at(MASK, (150, 102), 4) or ((-1, -1), (0.0, 0.0))
    assert vertex == (0, 1) and foot == (150, 100)
    five = vx.insert(MASK, vertex, foot)
    assert isinstance(five, ov.Mask) and five.polygons[0][1] == (150, 100)
    assert vx.delete(five, (0, 1)) == MASK
    with pytest.raises(vx.VertexLimit, match="at least 3 points"):
        vx.delete(ov.Mask(polygons=(SQUARE[:3],)), (0, 0))
    tri = ov.Triangle(points=SQUARE[:3])
    with pytest.raises(vx.VertexLimit, match="exactly 3 corners"):
        vx.delete(tri, (0, 0))
    assert vx.move(tri, (0, 0), (90, 90)) == ov.Triangle(points=((90, 90), *SQUARE[1:3]))
    # A scribble is an open stroke: no edge from its last point back to the first; 2 points min.
    line = ov.Scribble(points=((0, 0), (100, 0)))
    assert vx.edge_at(line, (50, 1), 3) == ((0, 1), (50, 0))
    with pytest.raises(vx.VertexLimit, match="at least 2 points"):
        vx.delete(line, (0, 0))
    assert not vx.has_vertices(ov.Rectangle((1, 1, 5, 5)))
    # An imported segmentation (region = the outline) follows the edit; another region stays.
    with_region = ov.Mask(polygons=(SQUARE,), region=ov.Region.from_polygons([SQUARE]))
    edited = vx.move(with_region, (0, 2), (250, 260))
    assert edited is not None and edited.region is not None
    assert edited.region.polygons == edited.polygons
    boxed = ov.Mask(polygons=(SQUARE,), region=ov.Region((0, 0, 300, 300)))
    assert vx.move(boxed, (0, 2), (250, 260)).region == boxed.region


def test_a_dense_outline_shows_only_the_handles_near_the_pointer() -> None:
    n = 3000
    ring = tuple(
        (300 + 150 * math.cos(2 * math.pi * i / n), 200 + 150 * math.sin(2 * math.pi * i / n))
        for i in range(n)
    )
    dense = ov.Mask(polygons=(ring,))
    assert vx.visible(dense, None, 20) == []
    near = vx.visible(dense, (450, 200), 20)
    assert 0 < len(near) <= vx.NEAR_HANDLES
    assert all(math.dist(p, (450, 200)) <= 20 for p in near)
    assert len(vx.visible(MASK, None, 20)) == 4  # a small outline shows every vertex
    # One handle per `spacing` pixels along the outline (here about 0.31 px apart).
    spaced = vx.visible(dense, (450, 200), 20, spacing=4.0)
    assert 8 <= len(spaced) <= 12 and all(p in near for p in spaced)
    assert len(vx.visible(MASK, (150, 150), 20, spacing=4.0)) == 4
    assert vx.bounds(dense) == geo.bounds(dense) and vx.bounds(MASK) == (100, 100, 200, 200)
    # Its edits skip the constructor's per-point checks, with the same result and refusals.
    moved = vx.move(dense, (0, 0), (470.0, 200.0))
    expected = ov.Mask(polygons=(((470.0, 200.0), *ring[1:]),))
    assert moved == expected and moved is not None and moved.bounds == expected.bounds
    assert vx.move(dense, (0, 0), (150.0, 200.0)) is None  # across the outline: not simple
    framed = ov.Mask(polygons=(ring,), region=ov.Region.from_polygons([ring]))
    edited = vx.move(framed, (0, 0), (470.0, 200.0))
    assert edited is not None and edited.region == ov.Region.from_polygons(edited.polygons)
    shifted = geo.translate(framed, 5.0, -3.0)
    assert shifted == geo.map_points(framed, lambda p: (p[0] + 5.0, p[1] - 3.0))


def test_select_tool_drags_adds_and_deletes_vertices() -> None:
    tool = make_tool("select")
    c = ctx(prompts=[MASK], selected=0)
    assert tool.press(c, (200, 200)) == []  # on a vertex (also the se box handle)
    tool.move(c, (230, 210), dragging=True)
    assert tool.moving() == {0: vx.move(MASK, (0, 2), (230, 210))}
    edit = only(tool.release(c, (230, 210)))
    assert edit.op == "replace" and edit.text == "move point"
    assert edit.prompt == vx.move(MASK, (0, 2), (230, 210))
    # Shift: the vertex moves straight, here horizontally.
    tool.press(c, (200, 200))
    tool.move(ctx(prompts=[MASK], selected=0, constrain=True), (240, 207), dragging=True)
    edit = only(tool.release(c, (240, 207)))
    assert edit.prompt.polygons[0][2] == (240, 200)
    # The pressed vertex stays selected: Delete removes it.
    assert tool.selected_vertex(c) == (0, (0, 2))
    edit = only(tool.delete_vertex(c))
    assert edit.text == "delete point" and len(edit.prompt.polygons[0]) == 3
    # Three left: deleting one more is refused with a reason.
    c3 = ctx(prompts=[edit.prompt], selected=0)
    tool.press(c3, (100, 100))
    tool.release(c3, (100, 100))
    refused = only(tool.delete_vertex(c3))
    assert refused.op == "notice" and "at least 3 points" in refused.text
    # Double-click, or Alt+click, on an edge adds a vertex there.
    edit = only(tool.double_click(c, (150, 101)))
    assert edit.text == "add point" and edit.prompt.polygons[0][1] == (150, 100)
    edit = only(tool.press(c, (101, 150), alt=True))
    assert edit.text == "add point" and edit.prompt.polygons[0][4] == (100, 150)
    assert tool.double_click(c, (150, 150)) == []  # not on an edge
    # Ctrl+Z during a drag took the prompt away: the release does nothing.
    tool.press(c, (200, 200))
    tool.move(c, (230, 210), dragging=True)
    assert tool.release(ctx(prompts=[], selected=None), (230, 210)) == []


def test_rubber_band_toggle_and_group_move_with_shift() -> None:
    a, b = ov.Rectangle((10, 10, 50, 50)), ov.Rectangle((100, 10, 150, 50))
    far = ov.Rectangle((300, 300, 400, 390))
    prompts = [a, b, far]
    tool = make_tool("select")
    assert only(tool.press(ctx(prompts=prompts, selected=2), (5, 5))).index is None  # deselect
    tool.move(ctx(prompts=prompts), (200, 100), dragging=True)
    assert tool.band == (5, 5, 200, 100)
    edit = only(tool.release(ctx(prompts=prompts), (200, 100)))
    assert edit.op == "select_many" and edit.indices == (0, 1)
    # Ctrl/Shift+click toggles; Shift+band adds.
    toggled = only(
        tool.press(ctx(prompts=prompts, selection=(0, 1), selected=1, toggle=True), (350, 350))
    )
    assert toggled.op == "toggle" and toggled.index == 2
    tool.release(ctx(prompts=prompts), (350, 350))
    tool.press(ctx(prompts=prompts, selection=(2,), selected=2, toggle=True), (5, 5))
    tool.move(ctx(prompts=prompts), (60, 60), dragging=True)
    assert only(tool.release(ctx(prompts=prompts), (60, 60))).indices == (0, 2)
    # A click (no drag) on one of a group selects it alone.
    tool.press(ctx(prompts=prompts, selection=(0, 1), selected=1), (30, 30))
    solo = only(tool.release(ctx(prompts=prompts, selection=(0, 1), selected=0), (30, 30)))
    assert solo.op == "select" and solo.index == 0
    # Dragging one of a group moves all of it; Shift keeps the move horizontal.
    group = ctx(prompts=prompts, selection=(0, 1), selected=1)
    edit = only(tool.press(group, (30, 30)))
    assert edit.op == "select_many" and edit.index == 0 and edit.indices == (0, 1)
    tool.move(
        ctx(prompts=prompts, selection=(0, 1), selected=0, constrain=True), (70, 36), dragging=True
    )
    assert set(tool.moving()) == {0, 1}
    edit = only(tool.release(group, (70, 36)))
    assert edit.op == "replace_many" and dict(edit.prompts) == {
        0: ov.Rectangle((50, 10, 90, 50)),
        1: ov.Rectangle((140, 10, 190, 50)),
    }


def test_shift_draws_squares_circles_and_45_degree_arrows() -> None:
    for name in ("rectangle", "ellipse"):
        tool = make_tool(name)
        tool.press(ctx(), (100, 100))
        box = only(tool.release(ctx(constrain=True), (180, 130))).prompt.box
        assert box == (100, 100, 180, 180)
    tool = make_tool("rectangle")
    tool.press(ctx(), (100, 100))  # up and left, limited by the image's top edge
    assert only(tool.release(ctx(constrain=True), (0, 20))).prompt.box == (0, 0, 100, 100)
    arrow = make_tool("arrow")
    arrow.press(ctx(), (100, 100))
    tip = only(arrow.release(ctx(constrain=True), (200, 190))).prompt.tip
    assert tip == pytest.approx((100 + 134.536 / math.sqrt(2),) * 2, abs=0.01)
    arrow.press(ctx(), (100, 100))
    assert only(arrow.release(ctx(constrain=True), (300, 110))).prompt.tip == pytest.approx(
        (300.25, 100), abs=0.01
    )


def test_group_delete_duplicate_and_replace_are_one_undo_step_each() -> None:
    doc = PromptDocument(Path("image.jpg"))
    doc.image_size = SIZE
    a, b, c = ov.Rectangle((10, 10, 50, 50)), ov.Point((300, 300)), MASK
    for p in (a, b, c):
        doc.add(p)
    doc.select_many([0, 2])
    stack, steps = doc.undo_stack, doc.undo_stack.count()
    moved = vx.move(MASK, (0, 0), (90, 90))
    assert moved is not None
    doc.replace_many([(0, ov.Rectangle((20, 10, 60, 50))), (2, moved)], "move")
    assert stack.count() == steps + 1 and stack.undo_text() == "move 2 prompts"
    stack.undo()
    assert doc.prompts == [a, b, c] and doc.selected_indices() == (0, 2)
    doc.duplicate(colors=["lime", "blue"])
    assert [p.style.color for p in doc.prompts[3:]] == ["lime", "blue"]
    assert doc.selected_indices() == (3, 4) and stack.undo_text() == "duplicate 2 prompts"
    stack.undo()
    assert len(doc.prompts) == 3 and doc.selected_indices() == (0, 2)
    doc.delete()
    assert doc.prompts == [b] and doc.selected_indices() == ()
    stack.undo()
    assert doc.prompts == [a, b, c] and doc.selected_indices() == (0, 2)
    stack.redo()
    assert doc.prompts == [b]
    # Consecutive style tweaks of one group merge into one step.
    stack.undo()
    n = stack.index()
    for alpha in (100, 150):
        doc.replace_many([(i, _alpha(doc.prompts[i], alpha)) for i in (0, 2)], "style")
    assert stack.index() == n + 1 and doc.prompts[2].style.alpha == 150
    stack.undo()
    assert doc.prompts == [a, b, c]


def _alpha(prompt: ov.Prompt, alpha: int) -> ov.Prompt:
    return replace(prompt, style=replace(prompt.style, alpha=alpha))


def test_apply_edits_turns_each_edit_into_a_command_and_says_what_it_refused() -> None:
    from app.gui.document import apply_edits

    doc = PromptDocument(Path("image.jpg"))
    box = ov.Rectangle((10, 10, 50, 50))
    notices = apply_edits(
        doc,
        [
            Edit("add", box),
            Edit("add", ov.Rectangle((700, 500, 800, 600))),  # off the 600×400 image
            Edit("notice", text="a triangle has exactly 3 corners"),
            Edit("replace_many", prompts=((0, ov.Rectangle((20, 10, 60, 50))),), text="move"),
        ],
        SIZE,
        "paint",
    )
    assert doc.prompts == [ov.Rectangle((20, 10, 60, 50))] and doc.undo_stack.count() == 2
    assert doc.undo_stack.undo_text() == "move rectangle"
    assert notices[0].startswith("not applied") and notices[1] == "a triangle has exactly 3 corners"
