"""Multi-selection in the prompt document (Qt-free): the set of selected indices, its current
prompt, and indices that follow the prompts when others are inserted or removed."""

from __future__ import annotations

from pathlib import Path

import overlays as ov
from app.gui.document import PromptDocument

BOX = ov.Rectangle((10, 20, 110, 120))
ARROW = ov.Arrow(tail=(300, 300), tip=(200, 200))
POINT = ov.Point((50, 60))


def _doc(*prompts: ov.Prompt) -> tuple[PromptDocument, list[int]]:
    doc = PromptDocument(Path("image.jpg"))
    doc.image_size = (400, 300)
    for p in prompts:
        doc.add(p)
    seen: list[int] = []
    doc.selection_changed.connect(seen.append)
    return doc, seen


def test_selected_indices_follow_select_toggle_and_select_many() -> None:
    doc, seen = _doc(BOX, ARROW, POINT)
    assert doc.selected_indices() == (2,) and doc.selected == 2
    doc.select(None)
    assert doc.selected_indices() == () and doc.selected_prompt() is None
    doc.toggle(0)
    doc.toggle(2)
    assert doc.selected_indices() == (0, 2) and doc.selected == 2
    assert doc.selected_prompt() == POINT
    doc.toggle(2)  # out again: the current one falls back to what is left
    assert doc.selected_indices() == (0,) and doc.selected == 0
    doc.select_many([2, 1, 9])  # out of range dropped; the last given is current
    assert doc.selected_indices() == (1, 2) and doc.selected == 1
    doc.select_many([0, 1], current=0)
    assert doc.selected == 0
    doc.select(0)  # the same current prompt, a smaller set: still an event
    assert doc.selected_indices() == (0,)
    assert seen == [-1, 0, 2, 0, 1, 0, 0]
    assert doc.undo_stack.count() == 3  # selecting is not an edit


def test_selection_stays_on_the_same_prompts_when_others_come_and_go() -> None:
    doc, _ = _doc(BOX, ARROW, POINT)
    doc.select_many([1, 2])
    doc._remove(0)
    assert doc.selected_indices() == (0, 1) and doc.selected_prompt() == POINT
    doc._insert(0, BOX)
    assert doc.selected_indices() == (1, 2)
    doc._remove(2)
    assert doc.selected_indices() == (1,) and doc.selected_prompt() == ARROW
    doc._set_all([BOX])
    assert doc.selected_indices() == () and doc.selected is None
