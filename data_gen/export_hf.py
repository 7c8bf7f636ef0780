"""``hf``: Parquet shards a Hugging Face ``datasets`` loader reads as they are (TRL's SFT trainer).

Columns: ``id``; ``messages`` with typed content (``[{"type": "image", "text": null},
{"type": "text", "text": …}]`` in the first user message, text parts after); ``images``, a list
of image structs ``{"bytes", "path"}`` holding the rendered image (the storage of the
``datasets.Image`` feature). The features are also stored in the Parquet metadata, so
``load_dataset("parquet", data_files=…)`` decodes ``images`` as PIL images, and a dataset card
(``README.md``) declares the splits, so ``load_dataset(OUT)`` finds them. Shards are named
``data/{split}-00000-of-00003.parquet`` with the splits ``train`` and ``validation``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq

from data_gen.base import ExportOptions, FormatWriter, Sample, SampleImage
from data_gen.output import fsync_path

HF_SPLITS = {"train": "train", "val": "validation"}
ROWS_PER_GROUP = 64  # image rows are large: small row groups keep readers' memory low
GROUP_BYTES = 64 << 20

_STRING = {"dtype": "string", "_type": "Value"}
FEATURES: dict[str, Any] = {
    "id": _STRING,
    "messages": [{"role": _STRING, "content": [{"type": _STRING, "text": _STRING}]}],
    "images": [{"_type": "Image"}],
}
CONTENT = pa.list_(pa.struct([("type", pa.string()), ("text", pa.string())]))
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", CONTENT)]))),
        ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))),
    ],
    metadata={b"huggingface": json.dumps({"info": {"features": FEATURES}}).encode()},
)


# Image bytes are already compressed (PNG/JPEG): compressing them again only costs time.
_TEXT_COLUMNS = (
    "id",
    "messages.list.element.role",
    "messages.list.element.content.list.element.type",
    "messages.list.element.content.list.element.text",
    "images.list.element.path",
)
COMPRESSION: dict[str, str] = {
    **dict.fromkeys(_TEXT_COLUMNS, "zstd"),
    "images.list.element.bytes": "none",
}
DICTIONARY = ["messages.list.element.role", "messages.list.element.content.list.element.type"]


def typed_messages(texts: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    """TRL's conversational form: the image slot first in the first user message."""
    messages: list[dict[str, Any]] = []
    for i, (question, answer) in enumerate(texts):
        content: list[dict[str, Any]] = [{"type": "text", "text": question}]
        if i == 0:
            content.insert(0, {"type": "image", "text": None})
        messages.append({"role": "user", "content": content})
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages


class _Split:
    """The shards of one split: rows buffered into row groups, a new shard past the size cap."""

    def __init__(self, folder: Path, split: str, shard_bytes: int) -> None:
        self.folder = folder
        self.split = split
        self.shard_bytes = shard_bytes
        self.paths: list[Path] = []
        self.rows: list[dict[str, Any]] = []
        self.buffered = 0
        self.in_shard = 0
        self.writer: pq.ParquetWriter | None = None

    def add(self, row: dict[str, Any], size: int) -> None:
        self.rows.append(row)
        self.buffered += size
        if len(self.rows) >= ROWS_PER_GROUP or self.buffered >= GROUP_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        if self.writer is None or self.in_shard >= self.shard_bytes:
            self._close_shard()
            path = self.folder / f"{self.split}-{len(self.paths):05d}.parquet"
            self.paths.append(path)
            self.writer = pq.ParquetWriter(
                path, SCHEMA, compression=COMPRESSION, use_dictionary=DICTIONARY
            )
            self.in_shard = 0
        self.writer.write_table(pa.Table.from_pylist(self.rows, schema=SCHEMA))
        self.in_shard += self.buffered
        self.rows, self.buffered = [], 0

    def _close_shard(self) -> None:
        if self.writer is not None:
            self.writer.close()
            fsync_path(self.paths[-1])
            self.writer = None

    def close(self) -> list[Path]:
        self.flush()
        self._close_shard()
        total = len(self.paths)
        final = []
        for i, path in enumerate(self.paths):
            target = path.with_name(f"{self.split}-{i:05d}-of-{total:05d}.parquet")
            path.rename(target)
            final.append(target)
        return final


def dataset_card(splits: list[str]) -> str:
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for split in splits:
        lines += [f"  - split: {split}", f"    path: data/{split}-*.parquet"]
    lines += [
        "---",
        "",
        "# ViP Studio export",
        "",
        "Visual-prompt Q&A exported from a ViP Studio log: `messages` (typed content) and "
        "`images` (the images with the prompts drawn in), for TRL's `SFTTrainer`.",
        "",
        "```python",
        "from datasets import load_dataset",
        'ds = load_dataset("parquet", data_files={'
        + ", ".join(f'"{s}": "data/{s}-*.parquet"' for s in splits)
        + "})",
        "```",
        "",
    ]
    return "\n".join(lines)


class HfWriter(FormatWriter):
    name: ClassVar[str] = "hf"
    embeds_images: ClassVar[bool] = True

    def __init__(self, root: Path, options: ExportOptions) -> None:
        super().__init__(root, options)
        self.folder = root / "data"
        self.folder.mkdir()
        self._splits: dict[str, _Split] = {}

    def write(self, sample: Sample, image: SampleImage) -> None:
        if image.data is None:
            raise ValueError("the hf format needs the image bytes")
        split = self._splits.get(sample.split)
        if split is None:
            name = HF_SPLITS[sample.split]
            split = self._splits[sample.split] = _Split(
                self.folder, name, self.options.shard_mb << 20
            )
        row = {
            "id": sample.id,
            "messages": typed_messages(sample.texts),
            "images": [{"bytes": image.data, "path": Path(image.path).name}],
        }
        split.add(row, len(image.data) + sum(len(q) + len(a) for q, a in sample.texts))
        self.counts[sample.split] += 1

    def close(self) -> list[str]:
        if "train" not in self._splits:
            self._splits["train"] = _Split(self.folder, "train", self.options.shard_mb << 20)
        files: list[str] = []
        names: list[str] = []
        for key in ("train", "val"):
            split = self._splits.get(key)
            if split is None:
                continue
            paths = split.close()
            if not paths:  # an empty split still gets one (empty) shard: loaders expect it
                empty = self.folder / f"{split.split}-00000-of-00001.parquet"
                pq.write_table(SCHEMA.empty_table(), empty)
                paths = [empty]
            files += [f"data/{p.name}" for p in paths]
            names.append(split.split)
        (self.root / "README.md").write_text(dataset_card(names), encoding="utf-8")
        return [*files, "README.md"]
