"""`QALog.record_turn`: image, session and turn in ONE transaction, for every door."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import overlays as ov
from data_gen.qalog.log import ImageFile, LogError, NewTurn, QALog

SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "samples" / "coffee.jpg"


def _turn(question: str = "What is the cup within the red rectangle?", **kw: object) -> NewTurn:
    return NewTurn(
        session_id=0,
        prompts=[ov.Rectangle((10, 20, 110, 220))],
        question=question,
        answer="a cup",
        model="tiny",
        template="llava_v1",
        **kw,  # type: ignore[arg-type]
    )


def _counts(path: Path) -> tuple[int, int, int]:
    with sqlite3.connect(path) as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("images", "sessions", "turns")
        )


def test_a_new_conversation_writes_image_session_and_turn(tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite"
    with QALog.open(db) as log:
        first = log.record_turn(_turn(source="batch"), image=ImageFile.read(SAMPLE))
        follow = log.record_turn(_turn("And its colour?"), session_id=first.session_id)
        again = log.record_turn(_turn(), image_id=first.image_id)
        row = log.turn(first.turn_id)
        assert (row.session_id, row.image_id, row.source) == (
            first.session_id,
            first.image_id,
            "batch",
        )
        assert log.turn(follow.turn_id).idx == 1 and follow.session_id == first.session_id
        assert again.session_id != first.session_id and again.image_id == first.image_id
    assert _counts(db) == (1, 2, 3)


def test_a_turn_that_fails_leaves_no_image_and_no_empty_session(tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite"
    with QALog.open(db) as log:
        with pytest.raises(LogError, match="non-empty question"):
            log.record_turn(_turn("   "), image=ImageFile.read(SAMPLE))
        with pytest.raises(LogError, match="unknown source"):
            log.record_turn(_turn(source="nowhere"), image=ImageFile.read(SAMPLE))
    assert _counts(db) == (0, 0, 0)


def test_a_retry_under_the_same_request_id_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite"
    with QALog.open(db) as log:
        first = log.record_turn(_turn(request_id="r1"), image=ImageFile.read(SAMPLE))
        second = log.record_turn(_turn(request_id="r1"), image=ImageFile.read(SAMPLE))
    assert second == first
    assert _counts(db) == (1, 1, 1)


def test_a_turn_needs_its_image_or_session(tmp_path: Path) -> None:
    with (
        QALog.open(tmp_path / "log.sqlite") as log,
        pytest.raises(LogError, match="image or session"),
    ):
        log.record_turn(_turn())
