"""The desktop app asks through the shared preparation (`vip_model.prepare`): a `<region0>` typed
in the question reaches the model, the chat and the log as the referring phrase, with its span."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gui_helpers import adopt, drag, open_and_wait
from PySide6.QtCore import Qt

import overlays as ov
from app.gui.settings import Generation
from data_gen.qalog.log import QALog, TurnRow
from vip_model.engine import GenerationSettings, Request


def test_region_references_are_composed_before_the_model_and_the_log(
    qtbot: Any, window: Any, samples: Path, tiny_engine: Any, tiny_model_dir: Path
) -> None:
    open_and_wait(qtbot, window, samples / "coffee.jpg")
    adopt(window, tiny_engine, tiny_model_dir)
    window.settings = window.settings.with_changes(generation=Generation(max_new_tokens=4))
    drag(qtbot, window.canvas, [(120, 80), (260, 240)])
    window.chat.question.setPlainText("What is <region0>?")
    with qtbot.waitSignal(window.asker.answered, timeout=60_000) as blocker:
        qtbot.mouseClick(window.chat.ask_btn, Qt.MouseButton.LeftButton)
    row = blocker.args[0]
    with QALog.open(window.writer.path, mode="ro") as log:
        stored = log.turn(row.id)
    phrase = "the object within the red rectangle"
    assert stored.question == f"What is {phrase}?"
    (ref,) = stored.question_refs
    assert (ref.prompt, stored.question[ref.start : ref.end]) == (0, phrase)
    assert stored.prompt_tokens == len(tiny_engine.input_ids(_request(stored)))


def _request(row: TurnRow) -> Request:
    return Request(
        image=ov.load_image(row.image_path),
        question=row.question,
        prompts=tuple(row.prompts),
        settings=GenerationSettings.from_dict(row.settings),
        template=row.template,
    )
