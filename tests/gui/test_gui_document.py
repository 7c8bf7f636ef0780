"""The prompt document and its undo history are plain Python: every test here also runs in a
fresh interpreter where PySide6 cannot be imported (napari's headless rule, STYLE.md 16)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import overlays as ov
from app.gui.document import PromptDocument
from app.gui.undo import Command, Event, UndoStack

BOX = ov.Rectangle((10, 20, 110, 120))
ARROW = ov.Arrow(tail=(300, 300), tip=(200, 200))
POINT = ov.Point((50, 60))


def _doc() -> tuple[PromptDocument, list[str]]:
    doc = PromptDocument(Path("image.jpg"))
    doc.image_size = (400, 300)
    seen: list[str] = []
    doc.changed.connect(lambda: seen.append("changed"))
    doc.selection_changed.connect(lambda i: seen.append(f"selected {i}"))
    return doc, seen


def test_add_move_delete_undo_redo() -> None:
    doc, seen = _doc()
    doc.add(BOX)
    doc.add(ARROW)
    doc.add(POINT)
    assert doc.prompts == [BOX, ARROW, POINT] and doc.selected == 2
    doc.move(2, 0)
    assert doc.prompts == [POINT, BOX, ARROW] and doc.selected == 0
    doc.delete(1)
    assert doc.prompts == [POINT, ARROW]
    stack = doc.undo_stack
    assert stack.count() == 5 and stack.undo_text() == "delete rectangle"
    stack.undo()
    assert doc.prompts == [POINT, BOX, ARROW] and doc.selected == 1
    stack.undo()
    assert doc.prompts == [BOX, ARROW, POINT] and doc.selected == 2
    for _ in range(3):
        stack.undo()
    assert doc.prompts == [] and not stack.can_undo() and stack.redo_text() == "draw rectangle"
    stack.undo()  # nothing left: a no-op
    for _ in range(5):
        stack.redo()
    assert doc.prompts == [POINT, ARROW] and not stack.can_redo()
    assert "changed" in seen and "selected -1" in seen


def test_a_new_edit_drops_the_redo_history() -> None:
    doc, _ = _doc()
    doc.add(BOX)
    doc.add(ARROW)
    doc.undo_stack.undo()
    doc.add(POINT)
    assert doc.prompts == [BOX, POINT]
    assert doc.undo_stack.count() == 2 and not doc.undo_stack.can_redo()


def test_consecutive_style_edits_merge_into_one_undo_step() -> None:
    doc, _ = _doc()
    doc.add(BOX)
    for alpha in (100, 150, 200):
        doc.restyle(0, ov.Style(alpha=alpha))
    assert doc.undo_stack.count() == 2 and doc.prompts[0].style.alpha == 200
    doc.undo_stack.undo()
    assert doc.prompts == [BOX]
    doc.replace_at(0, ov.Rectangle((0, 0, 50, 50)), "move")
    doc.replace_at(0, ov.Rectangle((5, 5, 50, 50)), "move")  # moves never merge
    assert doc.undo_stack.count() == 3


def test_duplicate_clear_set_all_and_restore() -> None:
    doc, _ = _doc()
    doc.add(BOX)
    doc.duplicate()
    assert doc.prompts[1].box == (20, 30, 120, 130) and doc.selected == 1
    doc.clear()
    assert doc.prompts == [] and doc.selected is None
    doc.undo_stack.undo()
    assert len(doc.prompts) == 2
    doc.set_all([ARROW], "import")
    doc.set_all([ARROW], "import")  # unchanged: not an edit
    # the undone "clear" was dropped: add, duplicate, import
    assert doc.undo_stack.undo_text() == "import" and doc.undo_stack.count() == 3
    doc.restore([POINT])  # a draft coming back: no history
    assert doc.prompts == [POINT] and doc.undo_stack.count() == 0


def test_selection_is_not_an_edit_and_stays_in_range() -> None:
    doc, seen = _doc()
    doc.add(BOX)
    doc.select(None)
    doc.select(7)
    assert doc.selected is None and doc.selected_prompt() is None
    doc.select(0)
    assert doc.selected_prompt() == BOX and doc.undo_stack.count() == 1
    assert seen[-1] == "selected 0"


def test_events_and_the_stack_on_their_own() -> None:
    event, calls = Event(), []

    def once() -> None:
        calls.append("once")
        event.disconnect(once)

    event.connect(once)
    event.connect(lambda: calls.append("always"))
    event.emit()
    event.emit()
    assert calls == ["once", "always", "always"]

    class Append(Command):
        def __init__(self, into: list[int], value: int) -> None:
            super().__init__(f"append {value}")
            self.into, self.value = into, value

        def redo(self) -> None:
            self.into.append(self.value)

        def undo(self) -> None:
            self.into.pop()

    stack, values, changes = UndoStack(), [], []
    stack.changed.connect(lambda: changes.append(stack.index()))
    stack.push(Append(values, 1))
    stack.push(Append(values, 2))
    stack.undo()
    stack.redo()
    stack.clear()
    assert values == [1, 2] and changes == [1, 2, 1, 2, 0] and stack.count() == 0


def test_the_document_runs_with_qt_unimportable() -> None:
    """Run every test above in a fresh interpreter where ``import PySide6`` fails."""
    script = f"""
import runpy, sys
sys.modules["PySide6"] = None
sys.modules["shiboken6"] = None
tests = runpy.run_path({str(Path(__file__))!r})
names = [n for n in tests if n.startswith("test_") and "qt_unimportable" not in n]
for name in names:
    tests[name]()
assert not [m for m in sys.modules if m.startswith(("PySide6.", "shiboken6."))]
print(len(names), "passed without Qt")
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "6 passed without Qt" in result.stdout
