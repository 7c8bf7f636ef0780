"""Asking about a video from the real window with the tiny random ViP-LLaVA: at the current frame
(the turn is logged with the video, frame and time) and over time (every N seconds, batched,
listed by time, each answer logged and reviewed like any answer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from gui_helpers import adopt, drag
from gui_video_helpers import make_clip, open_video, read_index
from PySide6.QtCore import Qt

import overlays as ov
from app.gui.settings import Generation
from app.gui.video_frames import answer_over_time, plan_frames
from data_gen.qalog.log import QALog
from overlays.tracks import Track
from vip_model.engine import CancelToken, GenerationSettings


def ready(qtbot: Any, window: Any, tmp_path: Path, engine: Any, model_dir: Path) -> Path:
    clip = make_clip(tmp_path / "clip.mp4", count=30, fps=10)
    open_video(qtbot, window, clip)
    adopt(window, engine, model_dir)
    window.settings = window.settings.with_changes(generation=Generation(max_new_tokens=4))
    drag(qtbot, window.canvas, [(10, 50), (42, 82)])
    return clip


def test_ask_at_a_frame_logs_the_video_and_the_frame(
    qtbot: Any, window: Any, tmp_path: Path, tiny_engine: Any, tiny_model_dir: Path
) -> None:
    clip = ready(qtbot, window, tmp_path, tiny_engine, tiny_model_dir)
    window.video.seek(4)
    qtbot.waitUntil(lambda: window.video.shown_frame == 4)
    assert read_index(np.asarray(window.studio.image)) == 4  # the model input is this frame
    window.chat.question.setPlainText("What is <region0> doing?")
    with qtbot.waitSignal(window.asker.answered, timeout=60_000) as blocker:
        qtbot.mouseClick(window.chat.ask_btn, Qt.MouseButton.LeftButton)
    row = blocker.args[0]
    assert row.frame_index == 4 and abs(row.frame_time - 0.4) < 1e-6
    with QALog.open(window.writer.path) as log:
        stored = log.turn(row.id)
        video = log.video(stored.video_id)
    assert stored.image_path.endswith("clip.mp4#frame=4")
    assert stored.prompts == window.studio.doc.prompts
    assert video.frame_count == 30 and Path(video.path) == clip.resolve()


def test_ask_over_time_lists_answers_by_time_logs_them_and_reviews_them(
    qtbot: Any,
    make_window: Any,
    tmp_path: Path,
    tiny_engine: Any,
    tiny_model_dir: Path,
) -> None:
    window = make_window()
    clip = ready(qtbot, window, tmp_path, tiny_engine, tiny_model_dir)
    bar, answers = window.video_bar, window.over_time
    window.chat.question.setPlainText("What is <region0> doing?")
    answers.every.setValue(1.0)
    answers.until.setValue(2.0)
    assert window.video.ask_over_time()
    qtbot.waitUntil(
        lambda: len(answers.rows) == 3 and all(r.turn_id for r in answers.rows), timeout=90_000
    )
    assert [r.frame for r in answers.rows] == [0, 10, 20]
    assert [round(r.time, 3) for r in answers.rows] == [0.0, 1.0, 2.0]
    assert bar.timeline.answers == [0, 10, 20]
    with QALog.open(window.writer.path) as log:
        turns = [log.turn(r.turn_id) for r in answers.rows]
    assert [t.frame_index for t in turns] == [0, 10, 20]
    assert all(
        "over-time" in t.tags and t.answer == r.text
        for t, r in zip(turns, answers.rows, strict=True)
    )
    # Clicking a row goes to its frame; Accept reviews its logged turn.
    answers.list.setCurrentRow(1)
    qtbot.waitUntil(lambda: window.video.shown_frame == 10)
    assert answers.accept.isEnabled()
    qtbot.mouseClick(answers.accept, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: answers.rows[1].review == "accepted", timeout=10_000)
    with QALog.open(window.writer.path) as log:
        assert log.turn(answers.rows[1].turn_id).review == "accepted"
    assert "✓" in answers.list.item(1).text()
    key = str(window.studio.path)
    qtbot.waitUntil(lambda: window.files.statuses.get(key) == (3, 1), timeout=10_000)
    # The video opened again lists them again, reviews included.
    expected = [(r.frame, r.turn_id, r.review) for r in answers.rows]
    window.close()
    again = make_window()
    open_video(qtbot, again, clip)
    qtbot.waitUntil(lambda: len(again.over_time.rows) == 3, timeout=15_000)
    assert [(r.frame, r.turn_id, r.review) for r in again.over_time.rows] == expected
    assert again.video_bar.timeline.answers == [0, 10, 20]


def test_frames_where_a_tracker_lost_the_region_get_no_answer_and_say_why() -> None:
    box = ov.Rectangle((0, 0, 10, 10))
    lost = Track({0: box}).with_tracked({1: box}, lost_at=2)
    plans = plan_frames([lost], [0, 1, 2, 5], [0.0, 0.1, 0.2, 0.5])
    assert [p.prompts is not None for p in plans] == [True, True, False, False]
    assert "lost region 0 at frame 2" in plans[3].why_not


def test_answers_over_time_come_in_time_order_with_the_frames_left_unanswered(
    tmp_path: Path, tiny_engine: Any
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", count=30, fps=10)
    box = ov.Rectangle((10, 50, 42, 82))
    track = Track({0: box}).with_tracked({i: box for i in range(1, 15)}, lost_at=15)
    plans = plan_frames([track], [0, 10, 20, 25], [0.0, 1.0, 2.0, 2.5])
    settings = GenerationSettings(max_new_tokens=2)
    run = answer_over_time(
        tiny_engine, clip, plans, "What is <region0>?", settings, "llava_v1", 8, CancelToken()
    )
    items = list(run)
    assert [i.plan.index for i in items] == [0, 10, 20, 25]
    assert [bool(i.answer) for i in items] == [True, True, False, False]
    assert read_index(np.asarray(items[1].image)) == 10  # the frame asked about


def test_ask_over_time_with_an_end_before_the_current_frame_says_so(
    qtbot: Any, window: Any, tmp_path: Path, tiny_engine: Any, tiny_model_dir: Path
) -> None:
    ready(qtbot, window, tmp_path, tiny_engine, tiny_model_dir)
    window.video.seek(20)
    window.chat.question.setPlainText("What is <region0> doing?")
    window.over_time.until.setValue(1.0)
    assert not window.video.ask_over_time()
    message = window.statusbar.currentMessage()
    assert message.startswith("cannot ask over time:") and "before the start" in message
    assert window.host.job is None and window.over_time.rows == []
