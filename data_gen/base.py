"""What every export format shares: its options, the samples it receives, the writer interface."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from data_gen.errors import InvalidSelection
from data_gen.images import IMAGE_MODES, RENDERED_FORMATS, ImageMode, RenderedFormat
from data_gen.output import JsonLinesWriter, JsonListWriter
from data_gen.records import SPLITS, Conversation, Selection
from data_gen.vip_trainer import NO_REGION, override_path
from overlays import Prompt

IMAGE_FORMATS: tuple[str, ...] = ("vip-llava", "llava-rendered", "llama-factory", "hf", "swift")
#: Formats of video turns (data_gen/export_video.py); the others export image turns.
VIDEO_FORMATS: tuple[str, ...] = ("videorefer", "llama-factory-video", "llava-video", "streaming")
FORMATS: tuple[str, ...] = IMAGE_FORMATS + VIDEO_FORMATS
#: Which trainer a llava-video export is read by (the marker and the `video` field differ).
LLAVA_FLAVORS: tuple[str, ...] = ("llama-vid", "video-chatgpt")
IMAGE_TOKEN = "<image>"


@dataclass(frozen=True)
class ExportOptions:
    """Everything an export needs besides the log. Invalid combinations fail early."""

    format: str
    out: Path
    selection: Selection = field(default_factory=Selection)
    val_fraction: float = 0.0
    seed: int = 0
    augment: int = 0
    images: ImageMode = "copy"
    overwrite: bool = False
    strict: bool = False
    workers: int = 0  # 0: every core
    progress: bool = False
    rendered_format: RenderedFormat = "auto"
    id_prefix: str | None = None  # None: vip-llava chooses per record, the others "vipstudio"
    shard_mb: int = 500
    # Video formats: clips at this rate and size, this much context around the asked frame.
    video_fps: float = 2.0
    video_size: int = 640  # longest side of a clip; 0 keeps the video's size
    context: float = 1.0  # seconds of clip before and after the asked frame
    llava_flavor: str = "llama-vid"
    only_changes: bool = False  # streaming: an answer only where it differs from the last

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise InvalidSelection(f"unknown format {self.format!r}: use {', '.join(FORMATS)}")
        if self.augment < 0:
            raise InvalidSelection("--augment must be 0 or more")
        if self.augment and self.format == "videorefer":
            raise InvalidSelection(
                "--augment does not apply to videorefer: it ships the raw video and the "
                "regions' masks, nothing is drawn; use llama-factory-video, llava-video or "
                "streaming"
            )
        if not (0 < self.video_fps <= 60):
            raise InvalidSelection("--video-fps must be more than 0 and at most 60")
        if self.video_size != 0 and not (16 <= self.video_size <= 4096):
            raise InvalidSelection("--video-size must be 0 (the video's size) or 16 to 4096")
        if not (0 <= self.context <= 60):
            raise InvalidSelection("--context must be 0 to 60 seconds")
        if self.llava_flavor not in LLAVA_FLAVORS:
            raise InvalidSelection(f"--llava-flavor: use {', '.join(LLAVA_FLAVORS)}")
        if self.augment and self.format == "vip-llava":
            raise InvalidSelection(
                "--augment does not apply to vip-llava: it ships raw images and boxes and the "
                "ViP-LLaVA trainer draws random prompts itself; use llava-rendered, "
                "llama-factory or hf"
            )
        if self.images not in IMAGE_MODES:
            raise InvalidSelection(f"--images {self.images!r}: use {', '.join(IMAGE_MODES)}")
        if self.rendered_format not in RENDERED_FORMATS:
            raise InvalidSelection(f"--rendered-format: use {', '.join(RENDERED_FORMATS)}")
        if self.id_prefix is not None and (not self.id_prefix or "/" in self.id_prefix):
            raise InvalidSelection("--id-prefix must be a non-empty name without '/'")
        if self.id_prefix is not None and self.format == "vip-llava":
            override_path(self.id_prefix)  # fails early on a prefix the trainer would misread
        if self.shard_mb < 1:
            raise InvalidSelection("--shard-mb must be at least 1")
        if self.workers < 0:
            raise InvalidSelection("--workers must be 0 (every core) or more")

    @property
    def name_prefix(self) -> str:
        """The prefix of record ids and dataset names when no format rule chooses one."""
        return self.id_prefix or NO_REGION


@dataclass(frozen=True)
class Sample:
    """One dataset record: a conversation as drawn (logged, or redrawn for augmentation)."""

    id: str
    conversation: Conversation
    prompts: tuple[Prompt, ...]
    texts: tuple[tuple[str, str], ...]  # (question, answer), phrases naming ``prompts``
    variant: int = 0
    id_prefix: str = ""  # the prefix of ``id`` (vip-llava: the trainer path it takes)

    @property
    def split(self) -> str:
        return self.conversation.split


@dataclass(frozen=True)
class SampleImage:
    """The sample's image as the dataset refers to it, and its bytes when the format embeds it."""

    path: str
    data: bytes | None = None


class FormatWriter:
    """Receives samples in order, writes files under ``root``; ``close`` lists them."""

    name: ClassVar[str]
    #: Images carry the prompts burned in (else: raw images, the trainer draws).
    rendered: ClassVar[bool] = True
    #: Image bytes go inside the dataset files (else: image files next to them).
    embeds_images: ClassVar[bool] = False

    def __init__(self, root: Path, options: ExportOptions) -> None:
        self.root = root
        self.options = options
        self.counts: dict[str, int] = dict.fromkeys(SPLITS, 0)
        #: What the consumer will do differently from what the records hold, for the summary.
        self.notes: Counter[str] = Counter()

    def id_prefix(self, conversation: Conversation) -> str:
        """The prefix of the ids of ``conversation``'s records.

        Raises :class:`~data_gen.errors.RecordRefused` when this format cannot carry it.
        """
        return self.options.name_prefix

    def write(self, sample: Sample, image: SampleImage) -> None:
        raise NotImplementedError

    def close(self) -> list[str]:
        raise NotImplementedError


class JsonSplitWriter(FormatWriter):
    """A JSON list per split (``train.json``, ``val.json``), written incrementally; with
    ``json_lines``, JSON Lines (``train.jsonl``)."""

    json_lines: ClassVar[bool] = False

    def __init__(self, root: Path, options: ExportOptions) -> None:
        super().__init__(root, options)
        self._files: dict[str, JsonListWriter | JsonLinesWriter] = {}

    def _open(self, split: str) -> JsonListWriter | JsonLinesWriter:
        if self.json_lines:
            return JsonLinesWriter(self.root / f"{split}.jsonl")
        return JsonListWriter(self.root / f"{split}.json")

    def record(self, sample: Sample, image: SampleImage) -> dict[str, object]:
        raise NotImplementedError

    def write(self, sample: Sample, image: SampleImage) -> None:
        writer = self._files.get(sample.split)
        if writer is None:
            writer = self._files[sample.split] = self._open(sample.split)
        writer.add(self.record(sample, image))
        self.counts[sample.split] += 1

    def close(self) -> list[str]:
        if "train" not in self._files:
            self._files["train"] = self._open("train")
        for writer in self._files.values():
            writer.close()
        return sorted(w.path.name for w in self._files.values())
