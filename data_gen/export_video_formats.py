"""The four video formats' records (docs/VIDEO_FACTS.md §4: each as its own loader reads it).

- ``videorefer``: the raw video (placed like vip-llava's images), LLaVA-shaped conversations
  with ``<video>\\n`` first and one ``<region>`` per mention of a region, and per mention an
  ``annotation`` object: the region's polygons at the asked frame (a box as its four corners),
  keyed by the frame index in the video, with ``height``/``width`` (polygons need them).
- ``llama-factory-video``: sharegpt ``messages`` + ``videos`` (one burned-in clip), ``<video>``
  once at the start of the first user message, and the ``dataset_info.json`` entries.
- ``llava-video``: ``id``, ``video``, ``conversations`` on a burned-in clip. LLaMA-VID (default)
  reads the mp4 and expects ``<image>``; Video-ChatGPT reads ``<id>.pkl`` CLIP features made
  from the clips by its own script and expects ``<video>``.
- ``streaming``: VideoLLM-online's ``conversation`` (stream / user / assistant turns on the
  clip's frame grid) + ``load_ranges`` over a clip resampled to the frame rate.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import overlays as ov
from data_gen.base import ExportOptions
from data_gen.errors import RecordRefused
from data_gen.export_llama_factory import dataset_info
from data_gen.output import JsonListWriter, write_json
from data_gen.records import SPLITS
from data_gen.refs import answer_refs, to_region_tokens, without_marks
from data_gen.video_samples import ClipPlan, VideoSample
from overlays import Prompt, flat_from_points

VIDEO_TOKEN = "<video>"
IMAGE_TOKEN = "<image>"
REGION_TOKEN = "<region>"


@dataclass(frozen=True)
class VideoItem:
    """One record to write: a sample as logged (variant 0) or redrawn, with its clip plan."""

    id: str
    sample: VideoSample
    texts: tuple[tuple[str, str], ...]  # (question, answer) per turn, naming the drawn marks
    plan: ClipPlan | None  # None: the raw video (videorefer)
    variant: int = 0

    @property
    def split(self) -> str:
        return self.sample.split


class VideoWriter:
    """Receives items in order, writes one JSON list per split; ``close`` lists the files."""

    name: ClassVar[str]
    #: Clips with the prompts drawn (else the original video, placed).
    burned: ClassVar[bool] = True
    #: Samples are "ask over time" timelines (else conversations at one frame).
    timelines: ClassVar[bool] = False

    def __init__(self, root: Path, options: ExportOptions) -> None:
        self.root = root
        self.options = options
        self.counts: dict[str, int] = dict.fromkeys(SPLITS, 0)
        self.notes: Counter[str] = Counter()
        self._files: dict[str, JsonListWriter] = {}

    def check(self, sample: VideoSample) -> None:
        """Raise :class:`RecordRefused` when this format cannot carry ``sample``."""

    def clip_name(self, stem: str) -> str:
        """Where a clip goes inside the dataset."""
        return f"videos/{stem}.mp4"

    def record(self, item: VideoItem, media: str) -> dict[str, Any]:
        raise NotImplementedError

    def write(self, item: VideoItem, media: str) -> None:
        out = self._files.get(item.split)
        if out is None:
            out = self._files[item.split] = JsonListWriter(self.root / f"{item.split}.json")
        out.add(self.record(item, media))
        self.counts[item.split] += 1

    def close(self) -> list[str]:
        if "train" not in self._files:
            self._files["train"] = JsonListWriter(self.root / "train.json")
        for out in self._files.values():
            out.close()
        return sorted(w.path.name for w in self._files.values())


def segmentation(prompt: Prompt, size: tuple[int, int]) -> list[list[float]]:
    """The region a prompt marks as COCO polygons (a box: its four corners), in the frame."""
    region = ov.fit_region(prompt.marked_region(), size)
    if region.polygons:
        return [flat_from_points(ring) for ring in region.polygons]
    x1, y1, x2, y2 = region.box
    return [[x1, y1, x2, y1, x2, y2, x1, y2]]


class VideoReferWriter(VideoWriter):
    name: ClassVar[str] = "videorefer"
    burned: ClassVar[bool] = False

    def record(self, item: VideoItem, media: str) -> dict[str, Any]:
        sample = item.sample
        prompts = sample.prompts
        size = sample.video.size
        turns: list[dict[str, str]] = []
        annotation: list[dict[str, dict[str, Any]]] = []
        for i, turn in enumerate(sample.turns):
            question, regions = to_region_tokens(turn.question, turn.question_refs, prompts)
            answer = without_marks(turn.answer, answer_refs(turn.answer, prompts), prompts)
            for r in regions:  # one object per <region>, in order, at the asked frame
                segm = segmentation(turn.prompts[r], size)
                annotation.append({str(turn.frame): {"segmentation": segm}})
            turns.append(
                {"from": "human", "value": f"{VIDEO_TOKEN}\n{question}" if i == 0 else question}
            )
            turns.append({"from": "gpt", "value": answer})
        record: dict[str, Any] = {"id": item.id, "video": media, "conversations": turns}
        if annotation:
            record.update(annotation=annotation, height=size[1], width=size[0])
        elif prompts:
            self.notes["regions never named in the question: exported without masks"] += 1
        return record


class LlamaFactoryVideoWriter(VideoWriter):
    name: ClassVar[str] = "llama-factory-video"

    def record(self, item: VideoItem, media: str) -> dict[str, Any]:
        messages: list[dict[str, str]] = []
        for i, (question, answer) in enumerate(item.texts):
            messages.append(
                {"role": "user", "content": f"{VIDEO_TOKEN}{question}" if i == 0 else question}
            )
            messages.append({"role": "assistant", "content": answer})
        return {"messages": messages, "videos": [media]}

    def close(self) -> list[str]:
        files = super().close()
        info = dataset_info(self.options.name_prefix, files)
        for entry in info.values():
            entry["columns"] = {"messages": "messages", "videos": "videos"}
        write_json(self.root / "dataset_info.json", info)
        return [*files, "dataset_info.json"]


class LlavaVideoWriter(VideoWriter):
    name: ClassVar[str] = "llava-video"

    @property
    def chatgpt(self) -> bool:
        return self.options.llava_flavor == "video-chatgpt"

    def clip_name(self, stem: str) -> str:
        # Video-ChatGPT's features script names a video's pickle by its name up to the first
        # dot: stems are dot-free (and unique: they end in a content digest).
        return f"videos/{stem.replace('.', '_')}.mp4"

    def record(self, item: VideoItem, media: str) -> dict[str, Any]:
        marker = VIDEO_TOKEN if self.chatgpt else IMAGE_TOKEN
        turns: list[dict[str, str]] = []
        for i, (question, answer) in enumerate(item.texts):
            turns.append(
                {"from": "human", "value": f"{marker}\n{question}" if i == 0 else question}
            )
            turns.append({"from": "gpt", "value": answer})
        video = f"{Path(media).stem}.pkl" if self.chatgpt else media
        return {"id": item.id, "video": video, "conversations": turns}

    def close(self) -> list[str]:
        if self.chatgpt and any(self.counts.values()):
            self.notes[
                "video-chatgpt: make the features with its save_spatio_temporal_clip_features.py "
                "--video_dir_path <out>/videos, then train with --video_folder on that folder"
            ] += 1
        return super().close()


def _ceil_grid(t: float, fps: float) -> float:
    return math.ceil(t * fps - 1e-6) / fps


class StreamingWriter(VideoWriter):
    """VideoLLM-online: the question at the first asked frame, each answer at the first grid
    frame at or after its time (``ceil_time_by_fps``), the frames between as stream turns."""

    name: ClassVar[str] = "streaming"
    timelines: ClassVar[bool] = True

    def record(self, item: VideoItem, media: str) -> dict[str, Any]:
        assert item.plan is not None
        plan, sample = item.plan, item.sample
        fps = plan.fps
        t0 = sample.turns[0].time
        # The asked frame, seen before the question: nothing to learn there (livechat.py's
        # `learn: waiting_frames - 1`).
        conversation: list[dict[str, Any]] = [{"role": "stream", "num_frames": 1, "learn": 0}]
        shown = 0.0  # fps time of the last frame streamed
        said: str | None = None
        asked = False
        for turn, (question, answer) in zip(sample.turns, item.texts, strict=True):
            at = _ceil_grid(turn.time - t0, fps)
            if round(at * fps) >= len(plan.frames):
                self.notes["answers past the end of the tracked clip: left out"] += 1
                continue
            # The timeline's question once, at its start; follow-ups each time they were asked.
            new_question = question != item.texts[0][0] or not asked
            if not new_question and self.options.only_changes and answer == said:
                # Its frames are streamed with the next answer's (no two stream turns in a row:
                # the learn-range walk has no stream → stream transition).
                self.notes["repeated answers left to the stream (--only-changes)"] += 1
                continue
            if at > shown:
                frames = round((at - shown) * fps)
                conversation.append({"role": "stream", "num_frames": frames, "learn": True})
                shown = at
            rel = turn.time - t0
            if new_question:
                asked = True
                conversation.append(
                    {"role": "user", "content": question, "time": rel, "fps_time": at}
                )
            elif conversation[-1]["role"] == "assistant":
                # Two answers on one frame of the grid: the later one stands (livechat.py).
                conversation[-1].update(content=answer, time=rel)
                self.notes["answers on one frame of the clip's grid: the later one kept"] += 1
                said = answer
                continue
            conversation.append(
                {"role": "assistant", "content": answer, "time": rel, "fps_time": at, "learn": True}
            )
            said = answer
        stop = round(shown * fps) + 1
        return {
            "id": item.id,
            "video": media,
            "frame_fps": fps,
            "conversation": conversation,
            "load_ranges": {media: [0, stop]},
            "source": {
                "video": sample.video.path,
                "start": t0,
                "frames": list(plan.frames[:stop]),
            },
        }

    def check(self, sample: VideoSample) -> None:
        if not sample.turns[0].question.strip():
            raise RecordRefused("empty question", sample.key)


VIDEO_WRITERS: dict[str, type[VideoWriter]] = {
    w.name: w
    for w in (VideoReferWriter, LlamaFactoryVideoWriter, LlavaVideoWriter, StreamingWriter)
}
