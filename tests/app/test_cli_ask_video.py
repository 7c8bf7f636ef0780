"""`vipstudio ask clip.mp4 ...` (issue 14 §4): a question at one moment or over time, through the
tiny model (in-process), real clips made with PyAV and a real SQLite log."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from video_helpers import square_clip

from app.cli import main
from data_gen.qalog.log import QALog
from data_gen.qalog.log_video import frame_sha256, parse_frame_path
from overlays.video_io import VideoReader, write_video

FPS = 10


def _frame(i: int) -> np.ndarray:
    """64×48: a grey level that says the frame's index, and a bright square moving right."""
    frame = np.full((48, 64, 3), 20 + 8 * i, np.uint8)
    frame[10:30, 4 + 2 * i : 24 + 2 * i] = 250
    return frame


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s at 10 fps: 20 frames."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    write_video(path, (_frame(i) for i in range(20)), FPS, crf=10)
    return path


def _ask(model: Path, db: Path, *args: str) -> Result:
    result = CliRunner().invoke(
        main,
        [*args, "--model", str(model), "--max-new-tokens", "3", "--db", str(db)],
        catch_exceptions=False,
    )
    return result


def test_at_a_moment_asks_about_that_frame_and_logs_it(
    tiny_model_dir: Path, clip: Path, tmp_path: Path
) -> None:
    db = tmp_path / "log.sqlite"
    question = "What is <region0> doing?"
    done = _ask(tiny_model_dir, db, "ask", str(clip), question, "--bbox", "4,10,24,30",
                "--at", "0.75", "--json")  # fmt: skip
    assert done.exit_code == 0, done.output
    record = json.loads(done.stdout)
    assert (record["video"], record["frame"], record["t"]) == (str(clip), 7, pytest.approx(0.7))
    assert record["image"] == f"{clip}#frame=7" and record["phrases"]
    with QALog.open(db) as log, VideoReader(clip) as reader:
        (turn,) = log.turns()
        (video,) = log.videos()
        # the model was asked about frame 7 itself: the logged image is its pixels
        assert turn.image_sha256 == frame_sha256(reader.frame(7))
        assert parse_frame_path(turn.image_path) == (str(clip), 7)
        assert (video.frame_count, video.sha256) == (20, reader.info.sha256)
    assert (turn.video_id, turn.frame_index, turn.source) == (video.id, 7, "cli")
    assert turn.frame_time == pytest.approx(0.7) and turn.id == record["turn_id"]

    by_index = _ask(tiny_model_dir, db, "ask", str(clip), question, "--bbox", "4,10,24,30",
                    "--frame", "19")  # fmt: skip
    assert by_index.exit_code == 0, by_index.output
    assert "[frame 19 at 1.90 s, " in by_index.stderr and "turn 2" in by_index.stderr
    with QALog.open(db) as log:
        assert [(t.frame_index, t.frame_time) for t in log.video_turns(video.id)] == [
            (7, pytest.approx(0.7)),
            (19, pytest.approx(1.9)),
        ]


class CountingEngine:
    """The real engine, counting the requests of each ``batch`` call."""

    def __init__(self, engine: object) -> None:
        self.engine = engine
        self.batches: list[int] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.engine, name)

    def batch(self, requests: list[object], cancel: object = None) -> object:
        self.batches.append(len(requests))
        return self.engine.batch(requests, cancel)  # type: ignore[attr-defined]


def test_over_time_asks_every_step_in_batches_one_record_per_frame(
    tiny_model_dir: Path, clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.ask_over_time as over_time

    engines: list[CountingEngine] = []
    real = over_time.engine_from_options

    def counted(kw: dict[str, object], max_batch_size: int = 8) -> tuple[object, str]:
        engine, name = real(kw, max_batch_size=max_batch_size)
        engines.append(CountingEngine(engine))
        return engines[-1], name

    monkeypatch.setattr(over_time, "engine_from_options", counted)
    db = tmp_path / "log.sqlite"
    done = _ask(tiny_model_dir, db, "ask", str(clip), "What is <region0>?", "--bbox", "4,10,24,30",
                "--at", "0.5", "--every", "0.3", "--until", "1.7", "--batch-size", "2",
                "--json")  # fmt: skip
    assert done.exit_code == 0, done.output
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["frame"] for r in records] == [5, 8, 11, 14, 17]
    assert [r["t"] for r in records] == pytest.approx([0.5, 0.8, 1.1, 1.4, 1.7])
    assert all(r["prompts"][0]["box"] == [4.0, 10.0, 24.0, 30.0] for r in records)
    assert engines[0].batches == [2, 2, 1]  # through engine.batch, --batch-size frames at a time
    assert "5 frame(s) answered, 0 without an answer" in done.stderr
    with QALog.open(db) as log:
        turns = log.video_turns()
    assert [t.frame_index for t in turns] == [5, 8, 11, 14, 17]
    assert [t.id for t in turns] == [r["turn_id"] for r in records]
    assert len({t.session_id for t in turns}) == 5  # a conversation stays on one frame

    text = _ask(tiny_model_dir, db, "ask", str(clip), "What is it?", "--bbox", "4,10,24,30",
                "--frame", "15", "--every", "1", "--no-log")  # fmt: skip
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert len(lines) == 1 and lines[0].split()[:4] == ["1.50", "s", "frame", "15"]


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--at", "2.5"], 1, "time 2.5 s is outside the video"),
        (["--frame", "20"], 1, "frame 20 is outside the video"),
        ([], 2, "needs --at SECONDS or --frame N"),
        (["--at", "1", "--frame", "3"], 2, "not both"),
        (["--at", "1", "--track"], 2, "--track needs --every"),
        (["--at", "1", "--until", "1.5"], 2, "--until needs --every"),
        (["--at", "1", "--every", "0"], 2, "--every 0 must be a positive"),
        (["--at", "1", "--every", "0.5", "--until", "0.5"], 2, "before --at"),
    ],
)
def test_bad_moments_are_one_line_before_any_model_loads(
    clip: Path, tmp_path: Path, args: list[str], code: int, words: str
) -> None:
    result = CliRunner().invoke(
        main,
        ["ask", str(clip), "q?", "--bbox", "4,10,24,30", *args, "--model", str(tmp_path / "none"),
         "--db", str(tmp_path / "log.sqlite")],
    )  # fmt: skip
    assert result.exit_code == code, result.output
    assert words in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "log.sqlite").exists()


def test_track_follows_the_region_and_a_lost_track_says_so_on_every_later_frame(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    clip = tmp_path / "glide.mp4"
    boxes = square_clip(clip, 20, gone_at=12)
    db = tmp_path / "log.sqlite"
    box = ",".join(f"{v:g}" for v in boxes[0])
    done = _ask(tiny_model_dir, db, "ask", str(clip), "What is <region0> doing?", "--bbox", box,
                "--at", "0", "--track", "--every", "0.3", "--json")  # fmt: skip
    assert done.exit_code == 3, done.output  # done, with frames left unanswered
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["frame"] for r in records] == [0, 3, 6, 9, 12, 15, 18]  # in frame order
    answered = [r for r in records if "answer" in r]
    lost = [r for r in records if "error" in r]
    assert [r["frame"] for r in answered] == [0, 3, 6, 9]
    for record in answered:  # the prompt moved with the square
        got, truth = record["prompts"][0]["box"], boxes[record["frame"]]
        assert max(abs(a - b) for a, b in zip(got, truth, strict=True)) < 6, (got, truth)
    assert [r["frame"] for r in lost] == [12, 15, 18]
    assert all(r["error_type"] == "TrackLost" for r in lost)
    assert "the tracker lost region 0 at frame 12 (1.20 s)" in lost[0]["error"]
    assert "lost region 0 at frame 12" in done.stderr and "4 frame(s) answered, 3 without" in (
        done.stderr
    )
    with QALog.open(db) as log:
        turns = log.video_turns()
        (video,) = log.videos()
        (stored,) = log.tracks(video.id)
    assert [t.frame_index for t in turns] == [0, 3, 6, 9]
    assert [t.prompts[0].box for t in turns] == [tuple(r["prompts"][0]["box"]) for r in answered]
    assert stored.track().lost_at == 12 and stored.session_id == turns[0].session_id


def test_a_chat_on_a_frame_stays_on_that_frame(
    tiny_model_dir: Path, clip: Path, tmp_path: Path
) -> None:
    db = tmp_path / "log.sqlite"
    result = CliRunner().invoke(
        main,
        ["ask", str(clip), "--bbox", "4,10,24,30", "--frame", "12", "--json", "--model",
         str(tiny_model_dir), "--max-new-tokens", "2", "--db", str(db)],
        input="What is it?\nAnd now?\n\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["frame"], r["question"]) for r in records] == [(12, "What is it?"), (12, "And now?")]
    with QALog.open(db) as log:
        first, second = log.video_turns()
    assert first.session_id == second.session_id and (first.idx, second.idx) == (0, 1)
    assert first.frame_index == second.frame_index == 12
