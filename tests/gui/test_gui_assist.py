"""Box → mask in the desktop app: the assist tool (G) and "selected rectangle → mask"
(Shift+M) give a mask of the object, off the GUI thread with a busy bar, as one undo step;
GrabCut by default, SAM / SAM 2 from the folder in the settings."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from gui_helpers import drag, open_and_wait
from PIL import Image

import overlays as ov
from app.gui import assist as gui_assist
from app.gui.settings import Settings, SettingsError
from app.gui.tools import Edit, ToolContext, make_tool
from overlays.assist import mask_iou

BOX = (120.0, 70.0, 360.0, 300.0)


@pytest.fixture
def object_photo(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A 480×360 PNG with an orange object on a blue-grey noisy background, and its mask."""
    rng = np.random.default_rng(0)
    h, w = 360, 480
    image = (rng.normal(0, 12, (h, w, 3)) + np.array([70, 110, 160])).clip(0, 255).astype(np.uint8)
    truth = np.zeros((h, w), np.uint8)
    cv2.ellipse(truth, (240, 180), (96, 90), 20, 0, 360, 1, -1)
    obj = (rng.normal(0, 15, (h, w, 3)) + np.array([200, 80, 40])).clip(0, 255).astype(np.uint8)
    image = np.where(truth[..., None] > 0, obj, image)
    folder = tmp_path / "objects"
    folder.mkdir()
    path = folder / "object.png"
    Image.fromarray(image).save(path)
    return path, truth.astype(bool)


def wait_done(qtbot: Any, window: Any, start: Any) -> str:
    with qtbot.waitSignal(window.assist.done, timeout=30_000) as blocker:
        start()
    return str(blocker.args[0])


def masks(window: Any) -> list[ov.Mask]:
    return [p for p in window.studio.doc.prompts if isinstance(p, ov.Mask)]


def test_assist_tool_is_a_box_drag_that_asks_for_a_mask() -> None:
    tool = make_tool("assist")
    ctx = ToolContext(image_size=(400, 300), style=ov.Style(color="blue"))
    tool.press(ctx, (10, 20))
    tool.move(ctx, (110, 120), dragging=True)
    assert isinstance(tool.preview, ov.Rectangle)  # the box is shown while dragging
    edits = tool.release(ctx, (110, 120))
    assert edits == [Edit("assist", ov.Rectangle(box=(10, 20, 110, 120), style=ctx.style))]
    assert tool.release(ctx, (110, 120)) == []  # a click without a drag asks nothing


def test_draw_a_box_get_the_object_mask_off_the_gui_thread_one_undo_step(
    qtbot: Any, window: Any, object_photo: tuple[Path, np.ndarray], monkeypatch: Any
) -> None:
    path, truth = object_photo
    open_and_wait(qtbot, window, path)
    threads: list[threading.Thread] = []
    real = gui_assist.find_mask

    def spy(*args: Any) -> ov.Mask:
        threads.append(threading.current_thread())
        return real(*args)

    monkeypatch.setattr(gui_assist, "find_mask", spy)
    assert window.actions_["tool_assist"].shortcut().toString() == "G"
    window.actions_["tool_assist"].trigger()
    assert window.canvas.tool.name == "assist"
    panel = window.assist.panel
    assert panel.current() == "grabcut"  # the offline default

    def start() -> None:
        drag(qtbot, window.canvas, [BOX[:2], (250, 200), BOX[2:]])
        assert panel.busy.isVisible()  # the busy bar shows while it works

    assert wait_done(qtbot, window, start) == ""
    assert not panel.busy.isVisible()
    assert threads and threads[0] is not threading.main_thread()
    doc = window.studio.doc
    [mask] = masks(window)
    assert len(doc.prompts) == 1  # the box itself is not kept
    region = ov.region_mask(mask.marked_region(), (480, 360))
    assert mask_iou(np.asarray(region), truth) > 0.9
    assert doc.undo_stack.undo_text() == "box → mask"
    window.actions_["undo"].trigger()
    assert doc.prompts == []
    window.actions_["redo"].trigger()
    assert doc.prompts == [mask]


def test_selected_rectangle_becomes_a_mask_with_its_style_and_label(
    qtbot: Any, window: Any, object_photo: tuple[Path, np.ndarray]
) -> None:
    path, truth = object_photo
    open_and_wait(qtbot, window, path)
    doc = window.studio.doc
    other = ov.Point(center=(20, 20), style=ov.Style(color="lime"))
    rect = ov.Rectangle(box=BOX, style=ov.Style(color="fuchsia", alpha=90), label="ball")
    doc.add(other)
    doc.add(rect)
    assert doc.selected == 1
    assert window.actions_["box_to_mask"].shortcut().toString() == "Shift+M"
    assert wait_done(qtbot, window, window.actions_["box_to_mask"].trigger) == ""
    assert doc.prompts[0] == other
    mask = doc.prompts[1]
    assert isinstance(mask, ov.Mask)
    assert mask.style == rect.style and mask.label == "ball"
    assert mask_iou(np.asarray(ov.region_mask(mask.marked_region(), (480, 360))), truth) > 0.9
    window.actions_["undo"].trigger()  # one step back: the rectangle again
    assert doc.prompts == [other, rect]


def test_nothing_selected_or_nothing_found_says_so(
    qtbot: Any, window: Any, object_photo: tuple[Path, np.ndarray]
) -> None:
    path, _ = object_photo
    open_and_wait(qtbot, window, path)
    message = wait_done(qtbot, window, window.assist.convert_selected)
    assert "select a rectangle first" in message
    assert window.studio.doc.prompts == []
    # A box on the flat background corner: GrabCut finds nothing → one clear line, no mask.
    flat = ov.Rectangle(box=(0, 0, 6, 6))
    message = wait_done(qtbot, window, lambda: window.assist.request(flat))
    assert message.startswith("Box → mask: ")
    assert window.banner.isVisible()
    assert window.studio.doc.prompts == []


def test_sam_method_uses_the_folder_in_the_settings(
    qtbot: Any, make_window: Any, tmp_path: Path, object_photo: tuple[Path, np.ndarray]
) -> None:
    from vip_model.tiny_sam import make_tiny_sam

    folder = make_tiny_sam(tmp_path / "tiny-sam", "sam")
    settings = Settings(
        db_path=str(tmp_path / "log.sqlite"),
        model="",
        assist_method="sam",
        sam_model=str(folder),
    )
    window = make_window(settings)
    path, _ = object_photo
    open_and_wait(qtbot, window, path)
    assert window.assist.panel.current() == "sam"
    message = wait_done(qtbot, window, lambda: window.assist.request(ov.Rectangle(box=BOX)))
    # Random weights: a mask of some pixels inside the box, or "found no object" naming SAM.
    if message:
        assert "SAM" in message and "found no object" in message
    else:
        [mask] = masks(window)
        x1, y1, x2, y2 = mask.marked_region().box
        assert x1 >= BOX[0] and y1 >= BOX[1] and x2 <= BOX[2] + 1 and y2 <= BOX[3] + 1
    assert window.assist.cache.get(str(folder)).kind == "sam"  # loaded once, kept


@pytest.mark.parametrize(
    ("sam_model", "words"),
    [("", "no SAM model folder is set"), ("{tmp}", "no config.json")],
)
def test_sam_without_a_usable_folder_is_a_clear_error(
    qtbot: Any,
    make_window: Any,
    tmp_path: Path,
    object_photo: tuple[Path, np.ndarray],
    sam_model: str,
    words: str,
) -> None:
    settings = Settings(
        db_path=str(tmp_path / "log.sqlite"),
        model="",
        assist_method="sam",
        sam_model=sam_model.format(tmp=tmp_path),
    )
    window = make_window(settings)
    open_and_wait(qtbot, window, object_photo[0])
    message = wait_done(qtbot, window, lambda: window.assist.request(ov.Rectangle(box=BOX)))
    assert words in message
    assert window.banner.isVisible() and words in window.banner.text.text()
    assert window.studio.doc.prompts == []


def test_assist_settings_are_checked() -> None:
    with pytest.raises(SettingsError, match="assist_method 'magic' is not one of grabcut, sam"):
        Settings(assist_method="magic")
    with pytest.raises(SettingsError, match="sam_model must be text"):
        Settings.from_dict({"sam_model": 3})
    assert Settings.from_dict(Settings(sam_model="/m").to_dict()).sam_model == "/m"


def test_gui_sam_option_names_a_missing_folder(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from app.cli import main

    result = CliRunner().invoke(main, ["gui", "--sam", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "--sam" in result.output and "does not exist" in result.output


def test_mask_for_an_image_no_longer_shown_is_dropped(
    qtbot: Any, object_photo: tuple[Path, np.ndarray]
) -> None:
    from app.gui.document import PromptDocument

    path, _ = object_photo
    image = Image.open(path).convert("RGB")
    first, second = PromptDocument(path), PromptDocument(path.with_name("other.png"))
    shown = [first]
    notes: list[str] = []
    boxes: list[Any] = []
    panel = gui_assist.AssistPanel()
    qtbot.addWidget(panel)
    assist = gui_assist.BoxAssist(
        panel,
        image=lambda: image,
        document=lambda: shown[0],
        sam_folder=lambda: "",
        notify=notes.append,
        error=notes.append,
        show_box=boxes.append,
        parent=panel,
    )
    with qtbot.waitSignal(assist.done, timeout=30_000) as blocker:
        assert assist.request(ov.Rectangle(box=BOX))
        assert assist.busy and not assist.request(ov.Rectangle(box=BOX))  # one at a time
        shown[0] = second  # the person moved on to another image
    assert "image changed" in blocker.args[0]
    assert first.prompts == [] and second.prompts == []
    assert "still working" in notes[1]
    assert boxes[0] == ov.Rectangle(box=BOX) and boxes[-1] is None  # shown, then hidden
    assert not assist.busy
    qtbot.waitUntil(lambda: assist.pool.activeThreadCount() == 0)


def test_choosing_sam_asks_for_the_folder_and_saves_the_choice(
    qtbot: Any, window: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    from PySide6.QtWidgets import QFileDialog

    from app.gui import settings as settings_io

    answers = [""]  # the person cancels the folder dialog, then picks a folder
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: answers.pop(0))
    method = window.assist.panel.method
    sam_index = method.findData("sam")
    method.setCurrentIndex(sam_index)
    method.activated.emit(sam_index)
    assert window.assist.panel.current() == "grabcut"  # cancelled with no folder: back
    assert window.settings.assist_method == "grabcut"
    answers.append(str(tmp_path / "sam-vit-base"))
    method.setCurrentIndex(sam_index)
    method.activated.emit(sam_index)
    assert window.settings.sam_model == str(tmp_path / "sam-vit-base")
    stored = settings_io.load(tmp_path / "gui.json")
    assert (stored.assist_method, stored.sam_model) == ("sam", str(tmp_path / "sam-vit-base"))
