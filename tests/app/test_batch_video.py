"""`ask --batch` lines about a video (issue 14 §4): ``"video"`` with ``"t"`` (or ``"frame"``), and
over time with ``"every"``/``"until"``; bad ones are error records and the batch goes on; a rerun
skips the frames already answered. Real clips (PyAV), the tiny model, a real SQLite log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from video_helpers import square_clip

from app.batch import BatchRunner, Summary
from app.batch_query import BadQuery, parse_query
from data_gen.qalog.log import QALog
from overlays.video_io import write_video
from vip_model.engine import GenerationSettings
from vip_model.hf import HFEngine

SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "samples" / "coffee.jpg"
DEFAULTS = GenerationSettings(max_new_tokens=2)


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> Iterator[HFEngine]:
    with HFEngine(str(tiny_model_dir)) as e:
        yield e


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s at 10 fps, 64×48, each frame a different grey."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    write_video(path, (np.full((48, 64, 3), 10 * i, np.uint8) for i in range(20)), 10)
    return path


def _line(ident: str, **fields: Any) -> str:
    return json.dumps({"id": ident, "question": "What is <region0>?", **fields})


def _run(engine: HFEngine, queries: Path, out: Path, log: QALog) -> Summary:
    runner = BatchRunner(engine, "tiny", log=log, batch_size=3, settings=DEFAULTS)
    return runner.run(queries, out)


def test_video_lines_answer_frames_and_bad_ones_are_error_records(
    engine: HFEngine, clip: Path, tmp_path: Path
) -> None:
    box = [[4, 4, 40, 40]]
    lines = [
        _line("photo", image=str(SAMPLE), bboxes=box),
        _line("moment", video=str(clip), t=0.75, bboxes=box),
        _line("span", video=str(clip), frame=5, every=0.5, until=1.6, bboxes=box),
        _line("late", video=str(clip), t=9, bboxes=box),
        _line("both", video=str(clip), image=str(SAMPLE), t=1),
        _line("when", video=str(clip), bboxes=box),
        _line("broken", video=str(tmp_path / "broken.mp4"), t=0),
        _line("stray", image=str(SAMPLE), every=0.5),
    ]
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"x" * 500)
    queries, out = tmp_path / "q.jsonl", tmp_path / "a.jsonl"
    queries.write_text("\n".join(lines) + "\n")
    with QALog.open(tmp_path / "log.sqlite") as log:
        summary = _run(engine, queries, out, log)
        records = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
        assert (summary.answered, summary.errors) == (5, 5)
        assert "video" not in records["photo"] and records["photo"]["answer"] is not None
        moment = records["moment"]
        assert (moment["video"], moment["frame"], moment["t"]) == (str(clip), 7, 0.7)
        assert moment["image"] == f"{clip}#frame=7"
        # over time: one record per sampled frame, "<id>@<frame>"
        assert [records[f"span@{i}"]["t"] for i in (5, 10, 15)] == pytest.approx([0.5, 1.0, 1.5])
        errors = {k: r["error"] for k, r in records.items() if "error" in r}
        assert "outside the video" in errors["late"]
        assert '"image" (a photo) or "video"' in errors["both"]
        assert '"t" SECONDS or "frame" N' in errors["when"]
        assert "damaged or truncated" in errors["broken"]
        assert "'every'" in errors["stray"]
        turns = log.video_turns()
        assert [(t.frame_index, t.source) for t in turns] == [
            (5, "batch"),
            (7, "batch"),
            (10, "batch"),
            (15, "batch"),
        ]
        assert {t.id for t in turns} == {records[k]["turn_id"] for k in records if "@" in k} | {
            moment["turn_id"]
        }

        # a rerun answers nothing twice: the line's frames are already in the answers file
        again = _run(engine, queries, out, log)
        assert (again.answered, again.skipped) == (0, 5) and len(log.video_turns()) == 4


def test_a_rerun_after_a_lost_answers_file_recovers_the_frames_from_the_log(
    engine: HFEngine, clip: Path, tmp_path: Path
) -> None:
    queries, out = tmp_path / "q.jsonl", tmp_path / "a.jsonl"
    queries.write_text(_line("span", video=str(clip), t=0, every=1, bboxes=[[1, 1, 30, 30]]))
    with QALog.open(tmp_path / "log.sqlite") as log:
        first = _run(engine, queries, out, log)
        out.unlink()
        second = _run(engine, queries, out, log)
        assert (first.answered, second.recovered) == (3, 3) and len(log.video_turns()) == 3
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["frame"]) for r in records] == [("span@0", 0), ("span@10", 10),
                                                          ("span@19", 19)]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"t": -1}, '"t" -1 must be a time'),
        ({"t": "soon"}, "'t' must be a number of seconds"),
        ({"t": 1, "frame": 2}, 'give "t" SECONDS or "frame" N, not both'),
        ({"frame": 1.5}, '"frame" must be a frame index'),
        ({"t": 1, "track": "yes"}, '"track" must be true or false'),
        ({"t": 1, "track": True}, '"track" needs "every"'),
        ({"t": 1, "until": 3}, '"until" needs "every"'),
        ({"t": 1, "every": 0}, '"every" 0 must be a positive'),
        ({"t": 2, "every": 1, "until": 1}, "before"),
        ({"t": 10**400}, "'t' must be a number of seconds"),
    ],
)
def test_bad_video_fields_name_the_key(fields: dict[str, Any], words: str) -> None:
    line = _line("v", video="clip.mp4", **fields)
    with pytest.raises(BadQuery) as caught:
        parse_query(line, Path("/tmp"), DEFAULTS)
    assert words in str(caught.value) and caught.value.ident == "v"


def test_a_video_line_parses_to_where_to_ask() -> None:
    line = _line(
        "v", video="clips/a.mp4", t=1.5, every=0.5, until=4, track=True, bboxes=[[1, 2, 3, 4]]
    )
    query = parse_query(line, Path("/data"), DEFAULTS)
    assert query.image_path == Path("/data/clips/a.mp4")
    assert query.when is not None
    assert (query.when.at, query.when.every, query.when.until, query.when.track) == (
        1.5,
        0.5,
        4,
        True,
    )
    assert parse_query(_line("p", image="a.jpg"), Path("/data"), DEFAULTS).when is None


def test_a_tracked_line_says_lost_on_each_frame_after_the_loss(
    engine: HFEngine, tmp_path: Path
) -> None:
    clip = tmp_path / "glide.mp4"
    boxes = square_clip(clip, 20, gone_at=12)
    queries, out = tmp_path / "q.jsonl", tmp_path / "a.jsonl"
    line = _line("glide", video=str(clip), t=0, every=0.6, track=True, bboxes=[list(boxes[0])])
    queries.write_text(line + "\n")
    with QALog.open(tmp_path / "log.sqlite") as log:
        summary = _run(engine, queries, out, log)
        records = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
        assert sorted(records) == ["glide@0", "glide@12", "glide@18", "glide@6"]
        assert (summary.answered, summary.errors) == (2, 2)
        for lost in ("glide@12", "glide@18"):
            assert records[lost]["error_type"] == "TrackLost"
            assert "lost region 0 at frame 12" in records[lost]["error"]
            assert (records[lost]["video"], records[lost]["frame"]) == (str(clip), int(lost[6:]))
        moved = records["glide@6"]["prompts"][0]["box"]
        assert max(abs(a - b) for a, b in zip(moved, boxes[6], strict=True)) < 6
        (video,) = log.videos()
        (stored,) = log.tracks(video.id)
        assert stored.track().lost_at == 12
