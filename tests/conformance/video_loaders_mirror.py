"""How the video trainers read a dataset, rewritten from their sources (docs/VIDEO_FACTS.md §4).

None of these trainers can be installed beside us (decord is unmaintained and has no wheel for
this Python; each pins its own torch/transformers), so their reading rules are restated here,
step by step, with PyAV standing in for decord (both index a video's frames in display order)
and pycocotools' own ``frPyObjects``/``merge``/``decode`` for VideoRefer's masks:

- VideoRefer@cbd4207 ``videorefer/train.py`` ``LazySupervisedDataset.__getitem__`` (video branch,
  masks), ``preprocess_multimodal``; ``videorefer/mm_utils.py`` ``annToMask``;
- LLaMA-Factory@ff6d4d1 ``mm_plugin.py`` ``_validate_messages``, ``_get_video_sample_indices``,
  ``_regularize_videos`` (Qwen2-VL: an even frame count);
- LLaMA-VID@b3d3ae2 ``llamavid/train/train.py`` ``__getitem__`` (video file branch),
  ``preprocess_multimodal``;
- Video-ChatGPT@659e04b ``scripts/save_spatio_temporal_clip_features.py`` (feature names),
  ``video_chatgpt/train/train.py`` (``<video_folder>/<video>`` pickles, ``<video>``);
- VideoLLM-online@e2c78ec ``data/stream.py`` ``max_frames_clip``/``__getitem__``,
  ``models/tokenization_live.py`` ``chat_template_transition``/``get_learn_ranges``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import av
import numpy as np

VIDEO_TOKEN = "<video>"
IMAGE_TOKEN = "<image>"
REGION_TOKEN = "<region>"


def decode_all(path: str | Path) -> list[np.ndarray]:
    """Every frame of the first video stream, in display order (decord's indexing)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [f.to_ndarray(format="rgb24") for f in container.decode(stream)]


def get_batch(path: str | Path, indices: list[int]) -> np.ndarray:
    """decord ``VideoReader(path).get_batch(indices)``: raises on an index past the end."""
    frames = decode_all(path)
    for i in indices:
        if not 0 <= i < len(frames):
            raise IndexError(f"frame {i} of {path}: the video has {len(frames)}")
    return np.stack([frames[i] for i in indices])


def move_marker_front(conversations: list[dict[str, str]], token: str) -> list[dict[str, str]]:
    """``preprocess_multimodal`` of VideoRefer and LLaMA-VID: a sentence holding the marker gets
    it once at its front, followed by a newline."""
    out = []
    for sentence in conversations:
        value = sentence["value"]
        if token in value:
            value = (token + "\n" + value.replace(token, "").strip()).strip()
        out.append({**sentence, "value": value})
    return out


# -- VideoRefer ---------------------------------------------------------------------------------


def ann_to_mask(segmentation: Any, h: int | None, w: int | None) -> np.ndarray:
    """``annToMask``: polygons (merged), uncompressed RLE, or compressed RLE."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, h, w))
    elif isinstance(segmentation["counts"], list):
        rle = mask_utils.frPyObjects(segmentation, h, w)
    else:
        rle = segmentation
    return np.asarray(mask_utils.decode(rle))


def videorefer_getitem(record: dict[str, Any], data_folder: Path) -> dict[str, Any]:
    """The video branch of VideoRefer's ``__getitem__``: frames of the annotated frame indices,
    one mask per (object, frame), ``ann_indices``, the conversation as tokenised."""
    assert "video" in record and "image" not in record
    video_file = os.path.join(data_folder, record["video"])
    ann_indices: list[list[int]] = []
    if "annotation" in record:
        keys: set[str] = set()
        for ann in record["annotation"]:
            keys.update(ann.keys())
        all_frames = list(keys)
        for ann in record["annotation"]:
            ann_indices.append([all_frames.index(k) for k in ann])
        frame_idx = [int(f) for f in all_frames]
    else:
        frame_idx = [0]
        ann_indices.append([0])
    frames = get_batch(video_file, frame_idx)
    conversations = move_marker_front(record["conversations"], VIDEO_TOKEN)
    masks = []
    if "annotation" in record:
        h, w = (record["height"], record["width"]) if "height" in record else (None, None)
        for anns in record["annotation"]:
            for key in anns:
                segmentation = anns[key]["segmentation"]
                if segmentation is None:
                    masks.append(np.zeros(frames.shape[1:3]))
                else:
                    masks.append(ann_to_mask(segmentation, h, w))
    return {
        "frames": frames,
        "frame_idx": frame_idx,
        "masks": np.array(masks),
        "ann_indices": ann_indices,
        "conversations": conversations,
    }


def videorefer_regions(conversations: list[dict[str, str]]) -> int:
    """``<region>`` tokens in the text: each takes the next object's mask features."""
    return sum(s["value"].count(REGION_TOKEN) for s in conversations)


# -- LLaMA-Factory ------------------------------------------------------------------------------


def lf_validate_messages(messages: list[str], videos: list[Any]) -> None:
    """``_validate_messages`` for videos (and no stray images)."""
    if sum(m.count(VIDEO_TOKEN) for m in messages) != len(videos):
        raise ValueError("The number of videos does not match the number of <video> tokens")
    if sum(m.count(IMAGE_TOKEN) for m in messages) != 0:
        raise ValueError("The number of images does not match the number of <image> tokens")


def lf_regularize_video(
    path: str | Path, video_fps: float = 2.0, video_maxlen: int = 128
) -> tuple[list[np.ndarray], list[int], float]:
    """``_get_video_sample_indices`` + ``_regularize_videos`` (Qwen2-VL): the frames kept,
    their indices, the duration it reads."""
    with av.open(str(path), "r") as container:
        stream = next(s for s in container.streams if s.type == "video")
        total = stream.frames
        if total == 0:
            indices = np.linspace(0, video_maxlen - 1, video_maxlen).astype(np.int32)
        else:
            assert stream.duration is not None, "no stream duration: LLaMA-Factory fails here"
            seconds = float(stream.duration * stream.time_base)
            count = min(total, video_maxlen, max(1, math.floor(seconds * video_fps)))
            indices = np.linspace(0, total - 1, count).astype(np.int32)
        container.seek(0)
        frames = [
            f.to_ndarray(format="rgb24")
            for i, f in enumerate(container.decode(stream))
            if i in indices
        ]
        duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
    if len(frames) % 2:
        frames.append(frames[-1])
    return frames, [int(i) for i in indices], duration


# -- LLaMA-VID / Video-ChatGPT ------------------------------------------------------------------


def llamavid_getitem(
    record: dict[str, Any], video_folder: Path, video_fps: int = 1
) -> dict[str, Any]:
    """The non-pickle video branch of LLaMA-VID's ``__getitem__``."""
    video_file = os.path.join(video_folder, record["video"])
    assert video_file.split(".")[-1] != "pkl"
    if not os.path.exists(video_file):
        raise FileNotFoundError(video_file)
    with av.open(video_file) as container:
        avg_fps = float(container.streams.video[0].average_rate)
    frames = decode_all(video_file)
    sample_fps = round(avg_fps / video_fps)
    frame_idx = list(range(0, len(frames), sample_fps))  # step 0 would raise here
    video = get_batch(video_file, frame_idx)
    return {
        "video": video,
        "conversations": move_marker_front(record["conversations"], IMAGE_TOKEN),
    }


def videochatgpt_features(video_dir: Path) -> set[str]:
    """The pickles ``save_spatio_temporal_clip_features.py`` writes for a folder of videos."""
    return {f"{name.split('.')[0]}.pkl" for name in os.listdir(video_dir)}


# -- VideoLLM-online ----------------------------------------------------------------------------

#: ``chat_template_transition``'s keys: the role pairs the learn-range walk knows.
TRANSITIONS = {
    (None, "system"),
    ("system", "user"),
    ("system", "stream"),
    ("user", "assistant"),
    ("user", "stream"),
    ("user", "user"),
    ("assistant", "user"),
    ("assistant", "stream"),
    ("stream", "user"),
    ("stream", "assistant"),
}


def max_frames_clip(
    conversation: list[dict[str, Any]], load_ranges: dict[str, range], max_num_frames: int
) -> tuple[list[dict[str, Any]], dict[str, range]]:
    cum = 0
    for i, message in enumerate(conversation):
        if message["role"] == "stream":
            if cum + message["num_frames"] > max_num_frames:
                conversation = conversation[:i]
                load_ranges = {p: range(r.start, r.start + cum) for p, r in load_ranges.items()}
                break
            cum += message["num_frames"]
    return conversation, load_ranges


def stream_getitem(
    record: dict[str, Any], root: Path, max_num_frames: int = 7200
) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """``StreamMixIn.__getitem__`` with the clip's decoded frames standing in for the
    per-frame embeddings (``torch.load(path)[range]``); then the learn-range walk's checks."""
    load_ranges = {path: range(*span) for path, span in record["load_ranges"].items()}
    conversation, load_ranges = max_frames_clip(record["conversation"], load_ranges, max_num_frames)
    frames: list[np.ndarray] = []
    for path, ranger in load_ranges.items():
        decoded = decode_all(root / path)
        if ranger.stop > len(decoded):  # a tensor indexed past its end raises
            raise IndexError(f"{path}: range {ranger} past its {len(decoded)} frames")
        frames.extend(decoded[i] for i in ranger)
    streamed = sum(m["num_frames"] for m in conversation if m["role"] == "stream")
    if streamed != len(frames):
        raise ValueError(f"stream turns hold {streamed} frames, load_ranges {len(frames)}")
    last: str | None = "system"
    for message in conversation:
        role = message["role"]
        if (last, role) not in TRANSITIONS:
            raise KeyError(f"get_learn_ranges has no transition {last!r} → {role!r}")
        if role == "stream":
            assert message["num_frames"] > 0
            learn = message.get("learn", False)
            assert isinstance(learn, bool) or 0 <= learn <= message["num_frames"]
        else:
            assert isinstance(message["content"], str)
        last = role
    return conversation, frames
