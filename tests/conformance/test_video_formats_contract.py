"""The video exports loaded back the way each trainer reads them (video_loaders_mirror.py), field
by field: real clips made with PyAV, a real log of video turns, a real export."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_gen"))
from test_llama_factory_contract import FILEEXT2TYPE, get_dataset
from video_loaders_mirror import (
    IMAGE_TOKEN,
    VIDEO_TOKEN,
    decode_all,
    lf_regularize_video,
    lf_validate_messages,
    llamavid_getitem,
    stream_getitem,
    videochatgpt_features,
    videorefer_getitem,
    videorefer_regions,
)
from vx_fixtures import WALK_FRAMES, VideoLog, populate_videos, walk_box

from data_gen.base import ExportOptions
from data_gen.export import export
from data_gen.qalog.log import QALog

datasets = pytest.importorskip("datasets")
pytest.importorskip("pycocotools")
# pycocotools' decode under numpy 2 (its own code, not ours).
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture
def vlog(tmp_path: Path) -> Iterator[VideoLog]:
    with QALog.open(tmp_path / "log.sqlite") as log:
        yield populate_videos(log, tmp_path / "clips")


def _export(vlog: VideoLog, out: Path, fmt: str, **kw: Any) -> list[dict[str, Any]]:
    export(vlog.log, ExportOptions(format=fmt, out=out, workers=1, **kw))
    records = []
    for split in ("train", "val"):
        if (out / f"{split}.json").exists():
            records += json.loads((out / f"{split}.json").read_text())
    return records


def _red(frame: np.ndarray) -> np.ndarray:
    r, g, b = (frame[..., i].astype(int) for i in range(3))
    return (r > 100) & (r - g > 60) & (r - b > 60)  # a half-transparent red mark, not yellow


def test_videorefer_records_load_with_masks_at_the_asked_frames(
    vlog: VideoLog, tmp_path: Path
) -> None:
    out = tmp_path / "vr"
    records = _export(vlog, out, "videorefer")
    assert len(records) == 6
    by_question = {r["conversations"][0]["value"]: r for r in records}
    walk = by_question["<video>\nWhat is the square <region> doing?"]
    item = videorefer_getitem(walk, data_folder=out)
    # The asked frame (5) is decoded, and each <region> has its object's mask there.
    assert item["frame_idx"] == [5]
    assert videorefer_regions(item["conversations"]) == len(walk["annotation"]) == 2
    assert item["masks"].shape == (2, 64, 96) and item["ann_indices"] == [[0], [0]]
    x1, y1, x2, y2 = walk_box(5)
    ys, xs = np.nonzero(item["masks"][0])
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x1, y1, x2, y2)
    # The raw video is shipped: no mark drawn (the model pools the mask's features).
    assert not _red(item["frames"][0]).any()
    # The corrected answer, and no mark named in a text whose frames carry none.
    assert walk["conversations"][3]["value"] == "Yes, it is yellow."
    assert walk["conversations"][2]["value"] == "Is <region> yellow?"
    two = by_question["<video>\nIs <region> above <region>?"]
    got = videorefer_getitem(two, data_folder=out)
    assert got["masks"].shape == (2, 64, 96) and got["frame_idx"] == [3]
    assert got["masks"][0].sum() == 30 * 30  # the rectangle, then the ellipse (in mention order)
    assert two["conversations"][1]["value"] == "Yes, the object is higher."
    for record in records:  # every record loads; frame keys are frames of the video
        videorefer_getitem(record, data_folder=out)
        for obj in record.get("annotation", []):
            assert all(0 <= int(k) < WALK_FRAMES for k in obj)


def test_llama_factory_video_loads_with_its_column_mapping(vlog: VideoLog, tmp_path: Path) -> None:
    out = tmp_path / "lfv"
    export(
        vlog.log,
        ExportOptions(format="llama-factory-video", out=out, workers=1, val_fraction=0.5, seed=1),
    )
    names = json.loads((out / "dataset_info.json").read_text())
    assert sorted(names) == ["vipstudio_train", "vipstudio_val"]
    total = 0
    for name in names:
        attr = get_dataset(out, name)
        assert attr.formatting == "sharegpt" and attr.columns["videos"] == "videos"
        local = out / attr.file_name
        assert FILEEXT2TYPE[local.suffix[1:]] == "json"
        for row in datasets.load_dataset("json", data_files=str(local), split="train"):
            messages = row[attr.columns["messages"]]
            roles = [m[attr.role_tag] for m in messages]
            assert roles == [attr.user_tag, attr.assistant_tag] * (len(roles) // 2)
            contents = [m[attr.content_tag] for m in messages]
            videos = row[attr.columns["videos"]]
            lf_validate_messages(contents, videos)
            assert contents[0].startswith(VIDEO_TOKEN)
            for video in videos:  # _find_medias: under media_dir = dataset_dir
                assert (out / video).is_file()
                frames, _indices, duration = lf_regularize_video(out / video)
                assert len(frames) >= 2 and len(frames) % 2 == 0 and duration > 0
                assert all(f.shape == frames[0].shape for f in frames)
            total += 1
    assert total == 6


def test_llama_factory_clip_draws_the_tracked_region_on_every_frame(
    vlog: VideoLog, tmp_path: Path
) -> None:
    out = tmp_path / "lfv"
    export(
        vlog.log,
        ExportOptions(format="llama-factory-video", out=out, workers=1, context=1.0, video_fps=10),
    )
    rows = json.loads((out / "train.json").read_text())
    row = next(r for r in rows if r["messages"][1]["content"] == "It moves right.")
    frames = decode_all(out / row["videos"][0])
    # Asked at frame 5 (0.5 s), 1 s either side at 10 fps, cut at the start: frames 0–15.
    assert len(frames) == 16
    centres = []
    for frame in frames:
        _ys, xs = np.nonzero(_red(frame))
        assert xs.size, "every frame shows the region's mark"
        centres.append(float(xs.mean()))
    # It follows the square (3 px per frame: 45 px over the clip), within the blur of a 1 px
    # outline in a 96×64 H.264 clip.
    expected = [(walk_box(i)[0] + walk_box(i)[2]) / 2 for i in range(len(frames))]
    assert np.abs(np.array(centres) - expected).max() < 5, centres
    assert centres[-1] - centres[0] == pytest.approx(45, abs=4)


def test_llava_video_llama_vid_reads_the_clip_with_image_marker(
    vlog: VideoLog, tmp_path: Path
) -> None:
    out = tmp_path / "lv"
    records = _export(vlog, out, "llava-video")
    assert len(records) == 6
    for record in records:
        human = [t["value"] for t in record["conversations"] if t["from"] == "human"]
        assert sum(v.count(IMAGE_TOKEN) for v in human) == 1 and human[0].startswith("<image>\n")
        assert not any(VIDEO_TOKEN in v for v in human)
        item = llamavid_getitem(record, video_folder=out)
        assert item["video"].shape[0] >= 1
        assert item["conversations"][0]["value"].startswith("<image>\n")


def test_llava_video_chatgpt_names_the_features_its_script_writes(
    vlog: VideoLog, tmp_path: Path
) -> None:
    out = tmp_path / "vc"
    records = _export(vlog, out, "llava-video", llava_flavor="video-chatgpt")
    features = videochatgpt_features(out / "videos")
    assert len(features) == len(list((out / "videos").iterdir()))  # stems are unique
    for record in records:
        assert record["video"] in features
        first = record["conversations"][0]
        assert first["from"] == "human" and first["value"].startswith("<video>\n")
        assert sum(t["value"].count(VIDEO_TOKEN) for t in record["conversations"]) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert any("save_spatio_temporal_clip_features" in note for note in summary["notes"])


def test_streaming_timeline_loads_like_videollm_online(vlog: VideoLog, tmp_path: Path) -> None:
    out = tmp_path / "st"
    records = _export(vlog, out, "streaming", video_fps=2)
    run = next(r for r in records if "going" in r["conversation"][1]["content"])
    conversation, frames = stream_getitem(run, out)
    # Asked at 0, 0.5, 1 and 1.5 s: at 2 fps one frame each, the answers where they were given.
    assert run["load_ranges"][run["video"]] == [0, 4] and len(frames) == 4
    answers = [(m["fps_time"], m["content"]) for m in conversation if m["role"] == "assistant"]
    assert answers == [(t / 10, a) for t, a in vlog.timeline]
    assert run["source"]["frames"] == [f for f, _ in vlog.timeline]
    for frame in frames:  # the region's mark is drawn on every streamed frame
        assert _red(frame).any()
    for record in records:
        stream_getitem(record, out)
    # --only-changes: the repeated "It moves right." is left to the stream.
    changes = _export(vlog, tmp_path / "st2", "streaming", only_changes=True)
    run2 = next(r for r in changes if "going" in r["conversation"][1]["content"])
    said = [m["content"] for m in run2["conversation"] if m["role"] == "assistant"]
    assert said == ["It starts.", "It moves right.", "It nears the edge."]
    conversation, frames = stream_getitem(run2, tmp_path / "st2")
    assert len(frames) == 4


def test_streaming_augmented_timelines_load_too(vlog: VideoLog, tmp_path: Path) -> None:
    out = tmp_path / "aug"
    records = _export(vlog, out, "streaming", augment=1)
    assert len(records) == 6  # three timelines, each redrawn once
    for record in records:
        _conversation, frames = stream_getitem(record, out)
        assert len(frames) == record["load_ranges"][record["video"]][1]
    variant = next(r for r in records if r["id"].endswith("-aug1") and "going" in str(r))
    asked = variant["conversation"][1]["content"]
    assert "ellipse" not in asked  # the question names the new mark, drawn on every frame
    base = next(r for r in records if r["id"] == variant["id"].removesuffix("-aug1"))
    assert variant["video"] != base["video"]
    assert variant["source"]["frames"] == base["source"]["frames"]
