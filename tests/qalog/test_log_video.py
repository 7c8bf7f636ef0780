"""Video in the Q&A log (issue 14 §5): the migration from schema 2, video turns with their frame
index and time, and region tracks — against real SQLite files."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

import overlays as ov
from data_gen.qalog import log_open
from data_gen.qalog.log import SCHEMA_VERSION, ImageFile, LogError, NewTurn, QALog
from data_gen.qalog.log_schema import APPLICATION_ID, MIGRATIONS
from data_gen.qalog.log_video import frame_image, frame_sha256, parse_frame_path
from overlays.tracks import Track

SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "samples" / "coffee.jpg"


@dataclass(frozen=True)
class Clip:
    """The fields of ``overlays.video_io.VideoInfo`` that the log keeps."""

    path: str
    sha256: str = "c" * 64
    width: int = 64
    height: int = 48
    fps: float = 25.0
    frame_count: int = 50
    duration: float = 2.0
    codec: str = "h264"
    variable_frame_rate: bool = False


def _turn(question: str = "What is <region0> doing?", **kw: object) -> NewTurn:
    kw.setdefault("session_id", 0)
    return NewTurn(
        prompts=[ov.Rectangle((4, 4, 30, 30))],
        question=question,
        answer="walking",
        model="tiny",
        template="llava_v1",
        **kw,  # type: ignore[arg-type]
    )


def _frame(shade: int) -> Image.Image:
    return Image.new("RGB", (64, 48), (shade, 0, 0))


def _ask_frame(log: QALog, clip: Clip, index: int, **kw: object) -> int:
    recorded = log.record_turn(
        _turn(**kw),
        image=frame_image(clip, index, _frame(index)),
        video=clip,
        frame_index=index,
        frame_time=index / clip.fps,
    )
    return recorded.turn_id


# --------------------------------------------------------------------------- the migration


def _today_log(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A log written by this code with the schema of today's releases (version 2): images,
    sessions, turns, tags, a review, a draft, an import and its regions."""
    with monkeypatch.context() as m:
        m.setattr(log_open, "MIGRATIONS", MIGRATIONS[:2])
        m.setattr(log_open, "SCHEMA_VERSION", 2)
        with QALog.open(path) as log:
            assert log.conn.execute("PRAGMA user_version").fetchone()[0] == 2
            first = log.record_turn(_turn(tags=["hard"]), image=ImageFile.read(SAMPLE))
            log.add_turn(_turn("And then?", session_id=first.session_id))
            log.review(first.turn_id, "edited", "running")
            log.save_draft(first.image_id, [ov.Ellipse((1, 2, 30, 40))], "draft?", None)
            with log.batch() as batch:
                imported = batch.add_import("coco", SAMPLE, "d" * 64)
                batch.add_region(
                    first.image_id, ov.Region((1, 2, 3, 4)), label="cup", import_id=imported
                )


def _dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall()
            for t in ("images", "sessions", "turns", "turn_tags", "drafts", "imports", "regions")
        }
    finally:
        conn.close()


def test_a_log_of_todays_schema_migrates_with_every_row_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "log.sqlite"
    _today_log(db, monkeypatch)
    before = _dump(db)
    with QALog.open(db) as log:
        conn = log.conn
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        old = log.turns()
        assert [(t.answer, t.final_answer, t.tags) for t in old] == [
            ("walking", "running", ["hard"]),
            ("walking", "walking", []),
        ]
        assert all(t.video_id is None and t.frame_index is None and not t.is_video for t in old)
        assert log.load_draft(old[0].image_id) is not None
        assert [r.label for r in log.iter_regions()] == ["cup"]
        # the migrated log takes video turns
        turn_id = _ask_frame(log, Clip(str(tmp_path / "clip.mp4")), 7)
        assert log.turn(turn_id).frame_index == 7
    after = _dump(db)
    for table, rows in before.items():
        width = len(rows[0]) if rows else 0
        # the old columns of every old row, unchanged; the new turn columns NULL on them
        assert [r[:width] for r in after[table][: len(rows)]] == rows, table
    assert [r[-3:] for r in after["turns"][:2]] == [(None, None, None)] * 2


def test_a_read_only_log_of_todays_schema_reads_with_no_video_turns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "log.sqlite"
    _today_log(db, monkeypatch)
    with QALog.open(db, mode="ro") as log:
        assert log.conn.execute("PRAGMA user_version").fetchone()[0] == 2  # not migrated
        assert len(log.turns()) == 2 and len(log.turns(video=False)) == 2
        assert log.turns(video=True) == [] and log.video_turns() == []
        assert log.videos() == [] and log.tracks(1) == [] and log.video_statuses() == {}
        assert log.video_by_path(tmp_path / "clip.mp4") is None
        with pytest.raises(LogError, match="video 1 does not exist"):
            log.video(1)


# --------------------------------------------------------------------------- video turns


def test_a_video_turn_records_the_video_its_frame_and_time(tmp_path: Path) -> None:
    clip = Clip(str(tmp_path / "clip.mp4"))
    with QALog.open(tmp_path / "log.sqlite") as log:
        late = _ask_frame(log, clip, 30)
        early = _ask_frame(log, clip, 5)
        (video,) = log.videos()
        assert (video.path, video.fps, video.frame_count, video.duration, video.codec) == (
            str(tmp_path / "clip.mp4"),
            25.0,
            50,
            2.0,
            "h264",
        )
        assert log.video(video.id) == video == log.video_by_path(tmp_path / "clip.mp4")
        rows = log.video_turns(video.id)
        assert [(r.id, r.frame_index, r.frame_time) for r in rows] == [
            (early, 5, 0.2),
            (late, 30, 1.2),
        ]
        row = rows[0]
        assert row.is_video and row.video_path == video.path and row.source == "cli"
        # the turn's image is the frame itself: every image-only reader keeps working
        assert parse_frame_path(row.image_path) == (video.path, 5)
        assert row.image_sha256 == frame_sha256(_frame(5))
        assert (row.image_width, row.image_height) == (64, 48)
        assert [t.id for t in log.turns(video=False)] == []
        assert video.path in log.source_paths()
        assert log.video_statuses() == {video.path: (2, 0)}
        # the same video again (by content) is the same row
        _ask_frame(log, Clip(str(tmp_path / "copy.mp4")), 6)
        assert len(log.videos()) == 1 and len(log.video_turns(video.id)) == 3


def test_a_follow_up_stays_on_its_frame(tmp_path: Path) -> None:
    clip = Clip(str(tmp_path / "clip.mp4"))
    with QALog.open(tmp_path / "log.sqlite") as log:
        first = log.turn(_ask_frame(log, clip, 12))
        follow = log.record_turn(_turn("And then?"), session_id=first.session_id)
        again = log.record_turn(
            _turn("Why?"), session_id=first.session_id, video=clip, frame_index=12, frame_time=0.48
        )
        for recorded in (follow, again):
            row = log.turn(recorded.turn_id)
            assert (row.video_id, row.frame_index, row.frame_time, row.image_id) == (
                first.video_id,
                12,
                0.48,
                first.image_id,
            )
        with pytest.raises(LogError, match="stays on one frame; start a new session"):
            log.record_turn(
                _turn(), session_id=first.session_id, video=clip, frame_index=13, frame_time=0.52
            )
        assert log.count() == 3


@pytest.mark.parametrize(
    ("index", "time", "message"),
    [
        (50, 2.0, r"frame 50 is not in .*clip.mp4 \(frames 0-49\)"),
        (-1, 0.0, "frame -1 is not in"),
        (3, float("nan"), "finite and non-negative"),
        (None, 1.0, "needs its frame_index and frame_time"),
    ],
)
def test_a_bad_frame_is_refused_and_writes_nothing(
    tmp_path: Path, index: int | None, time: float, message: str
) -> None:
    clip = Clip(str(tmp_path / "clip.mp4"))
    db = tmp_path / "log.sqlite"
    with QALog.open(db) as log:
        with pytest.raises(LogError, match=message):
            log.record_turn(
                _turn(),
                image=frame_image(clip, 0, _frame(0)),
                video=clip,
                frame_index=index,
                frame_time=time,
            )
        with pytest.raises(LogError, match="needs its video"):
            log.record_turn(_turn(), image=ImageFile.read(SAMPLE), frame_index=3)
        assert log.count() == 0 and log.videos() == []


# --------------------------------------------------------------------------- tracks


def _track(x: float, lost_at: int | None = None) -> Track:
    box = ov.Rectangle((x, 4, x + 20, 30))
    return Track({0: box}, {1: ov.Rectangle((x + 1, 4, x + 21, 30))}, lost_at)


def test_tracks_are_kept_per_video_session_and_region(tmp_path: Path) -> None:
    clip = Clip(str(tmp_path / "clip.mp4"))
    with QALog.open(tmp_path / "log.sqlite") as log:
        session = log.turn(_ask_frame(log, clip, 0)).session_id
        video = log.videos()[0].id
        first = log.save_track(video, 0, _track(4), session_id=session)
        log.save_track(video, 1, _track(30), session_id=session)
        loose = log.save_track(video, 0, _track(8))
        # saving again replaces the region's track
        assert log.save_track(video, 0, _track(6, lost_at=20), session_id=session) == first
        rows = log.tracks(video)
        assert [(r.session_id, r.region_index) for r in rows] == [
            (None, 0),
            (session, 0),
            (session, 1),
        ]
        mine = log.tracks(video, session, any_session=False)
        assert [r.track() for r in mine] == [_track(6, lost_at=20), _track(30)]
        assert mine[0].data["format"] == "vipstudio.track/1"
        # its JSON (Track.to_dict) is taken as well, and checked
        assert log.save_track(video, 2, _track(9).to_dict(), session_id=session) > 0
        assert [r.id for r in log.tracks(video, None, any_session=False)] == [loose]
        with pytest.raises(LogError, match="video 99 does not exist"):
            log.save_track(99, 0, _track(1))
        with pytest.raises(LogError, match=r"not a track .*give an overlays\.tracks\.Track"):
            log.save_track(video, 0, {"not": "a track"})
        assert len(log.tracks(video)) == 4


def test_log_list_show_and_stats_name_the_video_and_time(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from app.cli import main

    db = tmp_path / "log.sqlite"
    with QALog.open(db) as log:
        log.record_turn(_turn("What is in the photo?"), image=ImageFile.read(SAMPLE))
        turn_id = _ask_frame(log, Clip(str(tmp_path / "clip.mp4")), 30)

    def run(*args: str) -> str:
        result = CliRunner().invoke(main, [*args, "--db", str(db)])
        assert result.exit_code == 0, result.output
        return result.output

    listed = run("log", "list").splitlines()
    assert "clip.mp4 @1.20s" in listed[0] and "coffee.jpg" in listed[1]
    lines = [json.loads(line) for line in run("log", "list", "--json").splitlines()]
    assert (lines[0]["video"], lines[0]["frame"], lines[0]["t"]) == (
        str(tmp_path / "clip.mp4"),
        30,
        1.2,
    )
    assert "video" not in lines[1]  # an image turn's summary is unchanged
    shown = json.loads(run("log", "show", str(turn_id)))
    assert shown["frame"] == 30 and shown["image"].endswith("clip.mp4#frame=30")
    stats = run("log", "stats")
    assert (
        stats.startswith("2 turns on 2 images") and "video: 1 turns on frames of 1 videos" in stats
    )
    data = json.loads(run("log", "stats", "--json"))
    assert (data["video_turns"], data["videos"]) == (1, 1)


def test_a_migration_that_fails_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "log.sqlite"
    _today_log(db, monkeypatch)
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE videos (x)")  # in the way of migration 3
    conn.commit()
    conn.close()
    before = _dump(db)
    with pytest.raises(LogError, match="videos already exists"):
        QALog.open(db)
    assert _dump(db) == before
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        columns = {r[1] for r in conn.execute("PRAGMA table_info(turns)")}
        assert "video_id" not in columns  # the ALTERs rolled back with the rest
    finally:
        conn.close()
