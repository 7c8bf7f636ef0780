"""The Qt-free core of the desktop app: geometry, tools, conversation rules, settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import overlays as ov
from app.gui import geometry as geo
from app.gui.conversation import Conversation, history, insert_phrase, settings_for
from app.gui.settings import Generation, Settings, SettingsError, load, save
from app.gui.stylebar import Pen, auto_color
from app.gui.tools import ToolContext, make_tool
from tests.gui.gui_helpers import turn_row

SIZE = (600, 400)


def ctx(**kw: object) -> ToolContext:
    base: dict[str, object] = {"image_size": SIZE, "style": ov.Style()}
    base.update(kw)
    return ToolContext(**base)  # type: ignore[arg-type]


def test_the_core_modules_do_not_import_qt() -> None:
    code = (
        "import sys; import app.gui.geometry, app.gui.tools, app.gui.conversation, "
        "app.gui.settings, app.gui.document, app.gui.undo; "
        "bad = [m for m in sys.modules if m.startswith('PySide6')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_box_tool_drag_click_and_clamp() -> None:
    tool = make_tool("rectangle")
    tool.press(ctx(), (590, 10))
    tool.move(ctx(), (700, 100), dragging=True)
    assert tool.preview is not None
    [edit] = tool.release(ctx(), (700, 100))
    assert edit.op == "add" and edit.prompt.box == (590, 10, 600, 100)  # type: ignore[union-attr]
    tool.press(ctx(), (50, 50))
    assert tool.release(ctx(), (51, 50)) == []  # a click is not a box


def test_polygon_triangle_and_brush_tools() -> None:
    mask = make_tool("mask")
    for pt in [(10, 10), (100, 10), (100, 100)]:
        assert mask.press(ctx(), pt) == []
    [edit] = mask.press(ctx(), (11, 11))  # clicking the first vertex closes it
    assert isinstance(edit.prompt, ov.Mask) and len(edit.prompt.polygons[0]) == 3
    tri = make_tool("triangle")
    tri.press(ctx(), (0, 0))
    tri.press(ctx(), (10, 0))
    assert tri.press(ctx(), (20, 0)) == [] and len(tri.guide) == 2  # collinear: retry
    [edit] = tri.press(ctx(), (5, 30))
    assert isinstance(edit.prompt, ov.Triangle)
    brush = make_tool("brush")
    brush.press(ctx(brush_radius=10), (100, 100))
    brush.move(ctx(brush_radius=10), (200, 100), dragging=True)
    [edit] = brush.release(ctx(brush_radius=10), (200, 100))
    assert isinstance(edit.prompt, ov.Mask)
    x1, y1, x2, y2 = edit.prompt.bounds
    assert (x1, x2) == pytest.approx((90, 210), abs=1)
    assert (y1, y2) == pytest.approx((90, 110), abs=1)
    # With that mask selected, Alt erases a hole through it (split in two).
    prompts = [edit.prompt]
    brush.press(ctx(prompts=prompts, selected=0, brush_radius=10), (150, 60), alt=True)
    brush.move(ctx(prompts=prompts, selected=0, brush_radius=10), (150, 140), dragging=True)
    [cut] = brush.release(ctx(prompts=prompts, selected=0, brush_radius=10), (150, 140))
    assert cut.op == "replace" and len(cut.prompt.polygons) == 2  # type: ignore[union-attr]


def test_select_tool_moves_and_resizes() -> None:
    rect = ov.Rectangle((100, 100, 200, 200))
    tool = make_tool("select")
    [sel] = tool.press(ctx(prompts=[rect]), (150, 150))
    assert sel.op == "select" and sel.index == 0
    tool.move(ctx(prompts=[rect], selected=0), (160, 170), dragging=True)
    [edit] = tool.release(ctx(prompts=[rect], selected=0), (160, 170))
    assert edit.prompt.box == (110, 120, 210, 220)  # type: ignore[union-attr]
    assert tool.press(ctx(prompts=[rect], selected=0), (200, 200)) == []  # on the se handle
    tool.move(ctx(prompts=[rect], selected=0), (90, 250), dragging=True)  # crosses the west edge
    [edit] = tool.release(ctx(prompts=[rect], selected=0), (90, 250))
    assert edit.prompt.box == (90, 100, 100, 250)  # type: ignore[union-attr]


def test_geometry_hit_test_handles_and_transforms() -> None:
    arrow = ov.Arrow(tail=(10, 10), tip=(100, 100))
    ring = ((200.0, 200.0), (300.0, 200.0), (300.0, 300.0))
    mask = ov.Mask(polygons=(ring,), region=ov.Region((200, 200, 300, 300)))
    prompts: list[ov.Prompt] = [arrow, mask]
    assert geo.hit_test(prompts, (55, 57), 4, SIZE) == 0
    assert geo.hit_test(prompts, (280, 220), 4, SIZE) == 1
    assert geo.hit_test(prompts, (500, 50), 4, SIZE) is None
    assert [n for n, _ in geo.handles(arrow)] == ["tail", "tip"]
    assert geo.handle_at(arrow, (99, 101), 3) == "tip"
    moved = geo.translate(mask, 10, -5)
    assert moved.region is not None and moved.region.box == (210, 195, 310, 295)
    bigger = geo.drag_handle(mask, "se", (400, 400))
    assert bigger is not None and bigger.bounds == (200, 200, 400, 400)
    assert geo.drag_handle(mask, "se", (201, 201)) is None  # degenerate: refused


def test_history_skips_rejected_cancelled_and_replaces_regenerated() -> None:
    rows = [
        turn_row(0, "q1", "a1"),
        turn_row(1, "q2", "bad", review="rejected"),
        turn_row(2, "q3", "part", finish_reason="cancelled"),
        turn_row(3, "q4", "a4"),
        turn_row(4, "q4", "a4 again", tags=["regenerated"]),
        turn_row(5, "q5", "wrong", review="edited", corrected_answer="right"),
    ]
    assert [(t.question, t.answer) for t in history(rows)] == [
        ("q1", "a1"),
        ("q4", "a4 again"),
        ("q5", "right"),
    ]
    conv = Conversation()
    conv.resume(None, rows)
    assert conv.session_id == 1 and conv.continues([])
    assert not conv.continues([ov.Rectangle((1, 1, 5, 5))])


def test_settings_for_regeneration_samples_and_insert_phrase_spacing() -> None:
    greedy = settings_for(Generation())
    assert greedy.temperature == 0 and greedy.seed is None
    again = settings_for(Generation(), regenerate=True)
    assert again.temperature > 0 and again.seed is not None
    assert insert_phrase("What is", 7, "the cat") == ("What is the cat", 15)
    assert insert_phrase("Is ? ok", 3, "it") == ("Is it? ok", 5)


def test_auto_colors_are_distinct() -> None:
    prompts = [ov.Rectangle((1, 1, 9, 9)), ov.Rectangle((1, 1, 9, 9), style=ov.Style("blue"))]
    assert auto_color(prompts) == "lime"
    pen = Pen()
    assert pen.style_for("contour", []).width == 1.0 and pen.radius("point") == 8.0


def test_settings_round_trip_and_validation(tmp_path: Path) -> None:
    path = tmp_path / "s" / "gui.json"
    assert load(path) == Settings()
    s = Settings(server_url="http://h:1", generation=Generation(top_p=0.5, seed=3))
    save(s, path)
    assert load(path) == s
    path.write_text(json.dumps({"generation": {"temp": 1}}))
    with pytest.raises(SettingsError, match="temp"):
        load(path)
    with pytest.raises(SettingsError, match="server_url"):
        Settings(server_url="localhost:8000")
    with pytest.raises(SettingsError, match="temperature"):
        Generation(temperature=3)
    path.write_text("{not json")
    with pytest.raises(SettingsError, match="not valid JSON"):
        load(path)
