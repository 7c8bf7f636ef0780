"""The label list: its file, keys 1–9 on the selected prompts or the next shapes, the label in
the referring phrase, the labels offered in review."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gui_helpers import click, drag, open_and_wait
from PySide6.QtCore import Qt

import overlays as ov
from app.gui import settings as settings_io
from app.gui.document import PromptDocument
from app.gui.labels import (
    LabelError,
    clean_label,
    follow_label,
    label_prompts,
    parse_labels,
    read_labels,
    write_labels,
)
from app.gui.settings import Settings
from data_gen.qalog.log import NewTurn, QALog

# -- the Qt-free core ------------------------------------------------------------------------


def test_a_labels_file_reads_one_label_per_line_like_labelme(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("__ignore__\n_background_\ncup\n\n  dog  \nCup\nred  car\n", encoding="utf-8")
    assert read_labels(path) == ["cup", "dog", "red car"]
    write_labels(path, ["cup", "person"])
    assert path.read_text(encoding="utf-8") == "cup\nperson\n"
    assert parse_labels("a\r\nA\r\n b \r\n") == ["a", "b"]
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbfa\nb\n")
    assert read_labels(tmp_path / "bom.txt") == ["a", "b"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.txt", "no such labels file"),
        (lambda p: p, "is a folder"),
        (lambda p: (p / "latin.txt").write_bytes(b"caf\xe9\n") and p / "latin.txt", "not UTF-8"),
    ],
)
def test_an_unusable_labels_file_is_one_clear_error(
    tmp_path: Path, make: Any, message: str
) -> None:
    with pytest.raises(LabelError, match=message) as info:
        read_labels(make(tmp_path))
    assert "\n" not in str(info.value)


def test_the_settings_remember_a_labels_file_per_folder(tmp_path: Path) -> None:
    path = tmp_path / "gui.json"
    settings_io.save(Settings(theme="dark"), path)
    settings_io.remember_label_file(path, "/data/frames", "/data/classes.txt")
    stored = settings_io.load(path)
    assert stored.label_files == {"/data/frames": "/data/classes.txt"} and stored.theme == "dark"
    with pytest.raises(settings_io.SettingsError, match="label_files must map folders"):
        Settings.from_dict({"label_files": {"/data": 3}})


def test_a_label_is_trimmed_and_never_empty_reserved_or_twice() -> None:
    assert clean_label("  coffee   cup ") == "coffee cup"
    for bad, why in (("  ", "empty"), ("__ignore__", "reserved"), ("CUP", "already")):
        with pytest.raises(LabelError, match=why):
            clean_label(bad, ["cup"])


def test_a_label_change_renames_the_phrase_in_the_question() -> None:
    old = ov.Rectangle((10, 10, 50, 50))
    new = ov.Rectangle((10, 10, 50, 50), label="cup")
    text = "What is the object within the red rectangle?"
    assert follow_label(text, old, new) == "What is the cup within the red rectangle?"
    back = follow_label("What is the cup within the red rectangle?", new, old)
    assert back == text
    # Another region with the same phrase: the text may mean that one, so it stays.
    assert follow_label(text, old, new, [ov.Rectangle((60, 60, 90, 90))]) == text


def test_labels_apply_to_many_prompts_each_undoable(tmp_path: Path) -> None:
    doc = PromptDocument(tmp_path / "a.jpg")
    for box in ((1, 1, 10, 10), (20, 20, 30, 30), (40, 40, 50, 50)):
        doc.add(ov.Rectangle(box))
    doc.select(2)
    assert label_prompts(doc, [0, 2, 7], "cup") == 2  # 7: no such prompt
    assert [p.label for p in doc.prompts] == ["cup", None, "cup"]
    assert doc.selected == 2
    assert label_prompts(doc, [0], "cup") == 0  # no change, no undo step
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert [p.label for p in doc.prompts] == [None, None, None]


# -- in the window -----------------------------------------------------------------------------


def _settings_file(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "gui.json").read_text(encoding="utf-8"))


def test_the_list_comes_from_its_file_edits_are_saved_and_the_folder_remembers_it(
    qtbot: Any, make_window: Any, samples: Path, tmp_path: Path
) -> None:
    labels = tmp_path / "classes.txt"
    labels.write_text("cup\nperson\n", encoding="utf-8")
    window = make_window(labels_file=labels)
    open_and_wait(qtbot, window, samples)
    panel = window.labels_panel
    assert [panel.list.item(i).text() for i in range(panel.list.count())] == [
        "1  cup",
        "2  person",
    ]
    assert window.actions_["label_2"].text() == "2: person"
    window.labels.add_label("dog")
    window.labels.rename_label(0, "mug")
    window.labels.add_label("Dog")  # already there: refused, said in the status bar
    assert "already in the list" in window.statusbar.currentMessage()
    assert labels.read_text(encoding="utf-8") == "mug\nperson\ndog\n"
    window.labels.remove_label(1)
    assert read_labels(labels) == ["mug", "dog"]
    assert _settings_file(tmp_path)["label_files"] == {str(samples): str(labels)}
    window.close()
    # Next time, without --labels: the folder's list is back.
    stored = settings_io.load(tmp_path / "gui.json")
    again = make_window(
        Settings(db_path=str(tmp_path / "log.sqlite"), model="", label_files=stored.label_files)
    )
    open_and_wait(qtbot, again, samples)
    assert again.labels.labels == ["mug", "dog"] and again.labels.file == labels


def test_a_folder_without_a_list_gets_its_own_file_beside_the_settings(
    qtbot: Any, make_window: Any, samples: Path, tmp_path: Path
) -> None:
    window = make_window()
    open_and_wait(qtbot, window, samples)
    assert window.labels.labels == []
    window.labels.add_label("cat")
    file = window.labels.file
    assert file is not None and file.parent == tmp_path / "labels"
    assert file.read_text(encoding="utf-8") == "cat\n"
    assert not list(samples.glob("*.txt"))  # nothing written into the image folder


def _labelled_window(qtbot: Any, make_window: Any, samples: Path, tmp_path: Path) -> Any:
    labels = tmp_path / "classes.txt"
    labels.write_text("person\ncup\n", encoding="utf-8")
    window = make_window(labels_file=labels)
    open_and_wait(qtbot, window, samples / "coffee.jpg")
    return window


def test_a_key_labels_the_selected_prompt_undoably_and_the_phrase_follows(
    qtbot: Any, make_window: Any, samples: Path, tmp_path: Path
) -> None:
    window = _labelled_window(qtbot, make_window, samples, tmp_path)
    canvas, doc = window.canvas, window.studio.doc
    drag(qtbot, canvas, [(100, 100), (200, 180)])
    assert doc.selected == 0
    box = window.chat.question
    box.setPlainText("What is the object within the red rectangle?")
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_2)
    assert doc.prompts[0].label == "cup"
    assert box.toPlainText() == "What is the cup within the red rectangle?"
    assert window.layers.list.item(0).text().endswith("· cup")
    box.setPlainText("")
    window.actions_["insert_phrase"].trigger()
    assert box.toPlainText() == "the cup within the red rectangle"
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert doc.prompts[0].label is None
    qtbot.keyClick(canvas, Qt.Key.Key_7)  # no 7th label: said, nothing changes
    assert "no label 7" in window.statusbar.currentMessage()
    assert doc.prompts[0].label is None


def test_with_nothing_selected_a_key_sets_the_label_of_the_next_shapes(
    qtbot: Any, make_window: Any, samples: Path, tmp_path: Path
) -> None:
    window = _labelled_window(qtbot, make_window, samples, tmp_path)
    canvas, doc = window.canvas, window.studio.doc
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_1)
    assert window.labels_panel.next_label.text() == "new shapes: person"
    drag(qtbot, canvas, [(100, 100), (200, 180)])
    window.select_tool("ellipse")
    drag(qtbot, canvas, [(300, 100), (400, 180)])
    assert [p.label for p in doc.prompts] == ["person", "person"]
    doc.select(None)
    qtbot.keyClick(canvas, Qt.Key.Key_0)
    window.select_tool("point")
    click(qtbot, canvas, 50, 50)
    assert doc.prompts[-1].label is None


def test_digits_typed_in_the_question_or_a_field_are_text_not_labels(
    qtbot: Any, make_window: Any, samples: Path, tmp_path: Path
) -> None:
    window = _labelled_window(qtbot, make_window, samples, tmp_path)
    doc = window.studio.doc
    drag(qtbot, window.canvas, [(100, 100), (200, 180)])
    box = window.chat.question
    box.setFocus()
    qtbot.keyClick(box, Qt.Key.Key_1)
    qtbot.keyClick(box, Qt.Key.Key_2)
    assert box.toPlainText() == "12"
    window.filter_text.setFocus()
    qtbot.keyClick(window.filter_text, Qt.Key.Key_1)
    assert window.filter_text.text() == "1"
    alpha = window.stylebar.alpha
    alpha.setFocus()
    alpha.selectAll()
    qtbot.keyClick(alpha, Qt.Key.Key_9)
    assert alpha.value() == 9
    assert doc.prompts[0].label is None and window.canvas.new_label is None


def test_the_review_card_offers_the_labels_for_the_turns_regions(
    qtbot: Any, make_window: Any, samples: Path, tmp_path: Path
) -> None:
    rect = ov.Rectangle((100, 100, 200, 180))
    with QALog.open(tmp_path / "log.sqlite") as log:
        image = log.add_image(samples / "coffee.jpg")
        session = log.start_session(image.id)
        turn_id = log.add_turn(
            NewTurn(session, [rect], "What is it?", "A cup.", "tiny", "llava_v1", source="gui")
        )
        log.save_draft(image.id, [rect], "", session)
    window = _labelled_window(qtbot, make_window, samples, tmp_path)
    qtbot.waitUntil(lambda: turn_id in window.chat.cards, timeout=10_000)
    card = window.chat.cards[turn_id]
    assert card.regions.isVisibleTo(card)
    combo = card.regions.combos[0]
    assert [combo.itemText(i) for i in range(combo.count())] == ["—", "person", "cup"]
    assert combo.toolTip().startswith("Label of the red rectangle")
    combo.setCurrentIndex(2)
    combo.textActivated.emit("cup")
    doc = window.studio.doc
    assert doc.prompts[0].label == "cup"
    assert card.regions.combos[0].currentText() == "cup"
    doc.undo_stack.undo()
    assert doc.prompts[0].label is None
    assert window.chat.cards[turn_id].regions.combos[0].currentText() == "—"
    # Without labels in the project, no chooser.
    for _ in range(2):
        window.labels.remove_label(0)
    assert not card.regions.isVisibleTo(card)


def test_labels_given_without_a_folder_are_used_and_a_bad_file_is_a_banner(
    qtbot: Any, make_window: Any, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from app.cli import main

    labels = tmp_path / "classes.txt"
    labels.write_text("cup\n", encoding="utf-8")
    window = make_window(labels_file=labels)
    window.labels.use_given()  # what `vipstudio gui --labels F` does when no folder opens
    assert window.labels.labels == ["cup"]
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9\n")
    bad = make_window(labels_file=tmp_path / "bad.txt")
    bad.labels.use_given()
    assert bad.banner.isVisible() and "not UTF-8" in bad.banner.messages[-1]
    assert bad.labels.labels == []
    result = CliRunner().invoke(main, ["gui", "--help"])
    assert "--labels FILE" in result.output and "remembered for that folder" in result.output
    folder = CliRunner().invoke(main, ["gui", "--labels", str(tmp_path)])
    assert folder.exit_code == 2 and "is a directory" in folder.output


def test_an_empty_list_is_seeded_from_the_regions_imported_for_the_folder(
    qtbot: Any, make_window: Any, samples: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    (elsewhere / "x.jpg").write_bytes((samples / "coffee.jpg").read_bytes() + b"\0")
    with QALog.open(tmp_path / "log.sqlite") as log:
        box = ov.Region(box=(1, 1, 20, 20))
        coffee = log.add_image(samples / "coffee.jpg")
        rocket = log.add_image(samples / "rocket.jpg")
        other = log.add_image(elsewhere / "x.jpg")
        with log.batch() as batch:
            for image, label in (
                (rocket, "rocket"),
                (coffee, "cup"),
                (coffee, "cup"),
                (other, "elsewhere"),
                (coffee, None),
            ):
                batch.add_region(image.id, box, label=label)
    window = make_window()
    open_and_wait(qtbot, window, samples)
    qtbot.waitUntil(lambda: window.labels.labels == ["cup", "rocket"], timeout=10_000)
    assert window.labels.file is not None
    assert read_labels(window.labels.file) == ["cup", "rocket"]
