"""Video exports follow the image exports' rules (issue 15 §5): review filters, split by video,
reproducible, staged output with its marker, a summary of what was left out and why, and
``--augment`` drawing one new mark per region across every frame of a sample."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from vx_fixtures import VideoLog, populate_videos, still_clip, walk_box

import overlays as ov
from data_gen.base import ExportOptions
from data_gen.errors import ExportFailed, InvalidSelection
from data_gen.export import export
from data_gen.output import EXPORT_MARKER
from data_gen.qalog.log import QALog
from data_gen.records import VIDEO_TURN, Selection
from data_gen.video_records import iter_video_samples
from data_gen.video_samples import VideoRef, VideoSample, VideoTurn, clip_plan, redraw_frames
from overlays.tracks import Track

VIPSTUDIO = Path(sys.executable).parent / "vipstudio"


@pytest.fixture
def vlog(tmp_path: Path) -> Iterator[VideoLog]:
    with QALog.open(tmp_path / "log.sqlite") as log:
        yield populate_videos(log, tmp_path / "clips")


def _records(out: Path) -> dict[str, list[dict[str, Any]]]:
    return {
        split: json.loads((out / f"{split}.json").read_text())
        for split in ("train", "val")
        if (out / f"{split}.json").exists()
    }


def test_review_rules_and_summary(vlog: VideoLog, tmp_path: Path) -> None:
    out = tmp_path / "lfv"
    summary = export(vlog.log, ExportOptions(format="llama-factory-video", out=out, workers=1))
    rows = _records(out)["train"]
    assert summary.records == {"train": 6, "val": 0} and summary.turns == 7
    assert summary.skipped["rejected turn"] == 1
    assert summary.counts["image turns (not in a video format)"] == 1
    texts = [m["content"] for r in rows for m in r["messages"]]
    assert "Yes, it is yellow." in texts and "No." not in texts  # the correction, not the model
    assert not any("banana" in t for t in texts)  # the rejected turn
    assert (out / EXPORT_MARKER).is_file()
    assert sorted(summary.files) == ["dataset_info.json", "summary.json", "train.json"]
    assert summary.images["clips"] == len(list((out / "videos").iterdir()))
    lines = summary.lines()
    assert lines[1].startswith("  videos: clip frames")
    # Regions without a stored track stay where they were asked, and the summary says so.
    assert any("where it was last known" in line for line in lines)


def test_split_by_video_and_reproducible(vlog: VideoLog, tmp_path: Path) -> None:
    def run(name: str, seed: int) -> dict[str, list[dict[str, Any]]]:
        out = tmp_path / name
        options = ExportOptions(
            format="videorefer", out=out, workers=1, val_fraction=0.5, seed=seed
        )
        export(vlog.log, options)
        return _records(out)

    first = run("a", 3)
    videos = {split: {r["video"] for r in rows} for split, rows in first.items()}
    assert videos["train"] and videos["val"] and not videos["train"] & videos["val"]
    assert run("b", 3) == first


def test_image_formats_leave_video_turns_out(vlog: VideoLog, tmp_path: Path) -> None:
    summary = export(
        vlog.log, ExportOptions(format="llava-rendered", out=tmp_path / "img", workers=1)
    )
    assert summary.records["train"] == 1  # the photo's turn
    assert summary.skipped[VIDEO_TURN] == 8  # every video turn, the rejected one included


def test_augment_redraws_one_mark_on_every_frame(vlog: VideoLog, tmp_path: Path) -> None:
    samples = list(iter_video_samples(vlog.log, Selection()))
    run = next(s for s in samples if s.turns[0].frame == 10 and s.tracks[0] is not None)
    plan = clip_plan(run, fps=10, before=1.0, after=1.0)
    assert plan is not None and plan.frames == tuple(range(0, 20)) and plan.held == 0
    for variant in (1, 2):
        redrawn = redraw_frames(run, plan, variant, seed=0)
        assert redrawn is not None
        new, texts = redrawn
        kinds = {p[0].kind for p in new.prompts}
        styles = {p[0].style for p in new.prompts}
        assert len(kinds) == 1 and len(styles) == 1 and kinds != {"ellipse"}
        # The mark follows the tracked square: its region box is the square's on each frame.
        for frame, prompts in zip(new.frames, new.prompts, strict=True):
            assert prompts[0].marked_region().box == pytest.approx(walk_box(frame))
        kind = kinds.pop()
        assert "ellipse" not in texts[0][0] and kind.split()[-1] in texts[0][0].replace(
            "mask contour", "contour"
        )
    again = redraw_frames(run, plan, 1, seed=0)
    assert again == redraw_frames(run, plan, 1, seed=0)
    summary = export(
        vlog.log,
        ExportOptions(format="llama-factory-video", out=tmp_path / "aug", workers=1, augment=2),
    )
    assert summary.augmented == 12  # 6 samples with a region, 2 variants each
    clips = [r["videos"][0] for r in _records(tmp_path / "aug")["train"]]
    base, variants = set(clips[0::3]), clips[1::3] + clips[2::3]  # each sample, then its two
    assert len(set(variants)) == 12 and not base & set(variants)  # every variant its own clip
    # The runs asked at 0.5 s and 1 s cover the same frames at 2 fps (0, 5, 10, 15): one clip.
    assert len(base) == 5 and summary.images["clips"] == 17


def test_changed_and_missing_videos_are_left_out_with_reasons(
    vlog: VideoLog, tmp_path: Path
) -> None:
    still_clip(Path(vlog.still.path), frames=12, fps=9.0)  # other bytes, same name
    Path(vlog.walk.path).unlink()
    summary = export(vlog.log, ExportOptions(format="llava-video", out=tmp_path / "x", workers=1))
    assert summary.records["train"] == 0
    assert summary.skipped["video changed since it was logged"] == 1
    assert summary.skipped["video unreadable"] == 6  # turns of the five walk.mp4 samples
    assert "no such file" in summary.examples["video unreadable"][0]
    with pytest.raises(ExportFailed, match="--strict stops"):
        export(
            vlog.log,
            ExportOptions(format="llava-video", out=tmp_path / "y", workers=1, strict=True),
        )
    assert not (tmp_path / "y").exists()


def test_parallel_workers_write_the_same_dataset(vlog: VideoLog, tmp_path: Path) -> None:
    one = export(vlog.log, ExportOptions(format="streaming", out=tmp_path / "one", workers=1))
    two = export(vlog.log, ExportOptions(format="streaming", out=tmp_path / "two", workers=2))
    assert _records(tmp_path / "one") == _records(tmp_path / "two")
    assert one.images == two.images
    for clip in (tmp_path / "one" / "videos").iterdir():
        assert clip.read_bytes() == (tmp_path / "two" / "videos" / clip.name).read_bytes()


def test_options_fail_early() -> None:
    with pytest.raises(InvalidSelection, match="does not apply to videorefer"):
        ExportOptions(format="videorefer", out=Path("x"), augment=1)
    with pytest.raises(InvalidSelection, match="--video-fps"):
        ExportOptions(format="streaming", out=Path("x"), video_fps=0)
    with pytest.raises(InvalidSelection, match="--llava-flavor"):
        ExportOptions(format="llava-video", out=Path("x"), llava_flavor="llava")


def test_cli_exports_video_formats(vlog: VideoLog, tmp_path: Path) -> None:
    db = str(vlog.log.path)
    out = tmp_path / "cli"
    args = ["export", "--db", db, "--format", "llava-video", "--out", str(out), "--workers", "1"]
    done = subprocess.run(
        [str(VIPSTUDIO), *args, "--llava-flavor", "video-chatgpt", "--video-size", "48"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "llava-video →" in done.stderr and "videos: clip frames" in done.stderr
    rows = _records(out)["train"]
    assert rows[0]["video"].endswith(".pkl")
    bad_args = ["export", "--db", db, "--format", "videorefer", "--out", str(tmp_path / "b")]
    bad = subprocess.run(
        [str(VIPSTUDIO), *bad_args, "--augment", "1"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 1 and "does not apply to videorefer" in bad.stderr
    assert bad.stderr.count("\n") == 1 and not (tmp_path / "b").exists()
    shutil.rmtree(out)


@pytest.mark.parametrize("mode", ["copy", "link", "absolute"])
def test_videorefer_places_the_original_video(vlog: VideoLog, tmp_path: Path, mode: str) -> None:
    out = tmp_path / mode
    export(vlog.log, ExportOptions(format="videorefer", out=out, workers=1, images=mode))  # type: ignore[arg-type]
    videos = {r["video"] for r in _records(out)["train"]}
    assert len(videos) == 2  # each video once, whatever the number of its records
    for video in videos:
        assert Path(video).is_absolute() == (mode == "absolute")
        path = Path(video) if mode == "absolute" else out / video
        assert path.is_symlink() == (mode == "link")
        original = vlog.walk.path if "walk" in video else vlog.still.path
        assert path.read_bytes() == Path(original).read_bytes()


def test_a_region_stays_where_last_known_but_never_past_a_lost_track() -> None:
    video = VideoRef(1, "/v.mp4", "0" * 64, 96, 64, 10.0, 20, 2.0)
    box = ov.Rectangle(walk_box(5))
    turn = VideoTurn(1, 1, 5, 0.5, "What is the red rectangle?", "A square.", (), (box,))
    # Drawn at frame 5 only (a keyframe, as the desktop app saves it): held on every frame.
    drawn = VideoSample("k", video, (turn,), (Track(keyframes={5: box}),))
    plan = clip_plan(drawn, fps=10, before=0.3, after=0.3)
    assert plan is not None and plan.frames == (2, 3, 4, 5, 6, 7, 8) and plan.held == 6
    # Tracked forward from 5 and lost at 8: before 5 it is held, from 8 on the clip ends.
    tracked = {i: ov.Rectangle(walk_box(i)) for i in (6, 7)}
    lost = Track(keyframes={5: box}, tracked=tracked, lost_at=8)
    plan = clip_plan(VideoSample("t", video, (turn,), (lost,)), fps=10, before=0.3, after=0.3)
    assert plan is not None and plan.frames == (2, 3, 4, 5, 6, 7) and plan.held == 3
    assert plan.prompts[-1][0].marked_region().box == walk_box(7)


@pytest.mark.parametrize("workers", [1, 2])
def test_video_export_reports_progress_and_a_stop_leaves_nothing(
    vlog: VideoLog, tmp_path: Path, workers: int
) -> None:
    """The desktop app's export dialog drives video formats as it drives image ones: progress
    from 0 to the total, and an exception from the callback (its Cancel) stops the export with
    nothing at ``out`` and no staging folder (the clip workers are stopped before it goes)."""
    seen: list[tuple[int, int | None]] = []
    out = tmp_path / "lfv"
    export(
        vlog.log,
        ExportOptions(format="llama-factory-video", out=out, workers=workers),
        on_progress=lambda done, total: seen.append((done, total)),
    )
    total = seen[0][1]
    assert seen[0] == (0, total) and total and seen[-1] == (total, total)

    class Stop(Exception):
        pass

    calls: list[int] = []

    def stop_at_second(done: int, total: int | None) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise Stop

    again = tmp_path / "stopped"
    with pytest.raises(Stop):
        export(
            vlog.log,
            ExportOptions(format="llama-factory-video", out=again, workers=workers),
            on_progress=stop_at_second,
        )
    assert not again.exists() and not list(tmp_path.glob(".stopped*"))
