"""`export`: the Q&A log → a dataset folder in one trainer's format, safely and in a stream.

Conversations come from :func:`data_gen.records.iter_conversations` (selection, grouping,
dedup, split); each becomes a sample, plus K redrawn ones with ``augment``; images are checked
in full and placed (originals) or rendered (prompts burned in) in worker processes, in order
and with a bounded number in flight; the format writer appends each record to its files.
Everything is built in a hidden folder next to ``out`` and moved there only when complete
(:func:`staged_dir`).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

import overlays as ov
from data_gen.augment import redrawn_prompts, redrawn_texts
from data_gen.base import VIDEO_FORMATS, ExportOptions, FormatWriter, Sample, SampleImage
from data_gen.errors import ExportFailed, RecordRefused
from data_gen.export_hf import HfWriter
from data_gen.export_llama_factory import LlamaFactoryWriter
from data_gen.export_llava import LlavaRenderedWriter
from data_gen.export_swift import SwiftWriter
from data_gen.export_vip import VipLlavaWriter
from data_gen.images import (
    Job,
    PlaceJob,
    RenderJob,
    RenderResult,
    concrete_format,
    render_batch,
)
from data_gen.images import rendered_name as _rendered_name
from data_gen.output import staged_dir, write_json
from data_gen.parallel import default_workers, ordered_map
from data_gen.qalog.log import QALog
from data_gen.records import Conversation, Tally, iter_conversations
from data_gen.vip_trainer import describe

WRITERS: dict[str, type[FormatWriter]] = {
    w.name: w
    for w in (VipLlavaWriter, LlavaRenderedWriter, LlamaFactoryWriter, HfWriter, SwiftWriter)
}


@dataclass
class ExportSummary:
    """What an export wrote and what it left out, and why (also saved as ``summary.json``)."""

    format: str
    out: str
    records: dict[str, int]
    conversations: int
    turns: int
    augmented: int
    images: dict[str, int]
    skipped: dict[str, int]
    examples: dict[str, list[str]]
    counts: dict[str, int]
    files: list[str]
    seconds: float
    options: dict[str, Any] = field(default_factory=dict)
    #: Records per id prefix (vip-llava: per path through the ViP-LLaVA trainer).
    id_paths: dict[str, int] = field(default_factory=dict)
    #: What the consumer will do differently from what the records hold (writer notes).
    notes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The summary as short lines for a terminal."""
        splits = ", ".join(f"{k} {v}" for k, v in self.records.items() if v or k == "train")
        media = "videos" if self.format in VIDEO_FORMATS else "images"
        images = ", ".join(f"{how} {n}" for how, n in sorted(self.images.items())) or "none"
        out = [
            f"{self.format} → {self.out}: {sum(self.records.values())} records ({splits}) from "
            f"{self.turns} turns in {self.conversations} conversations, in {self.seconds:.1f} s",
            f"  {media}: {images}",
        ]
        if self.augmented:
            out.append(f"  augmented samples: {self.augmented}")
        if self.format == "vip-llava":
            for prefix, count in sorted(self.id_paths.items()):
                out.append(f"  ids {prefix}-…: {count} records ({describe(prefix)})")
        for note, count in sorted(self.notes.items()):
            out.append(f"  note: {count} × {note}")
        for reason, count in sorted(self.skipped.items(), key=lambda kv: -kv[1]):
            shown = self.examples.get(reason, [])
            example = f" (e.g. {shown[0]})" if shown else ""
            out.append(f"  left out: {count} × {reason}{example}")
        not_selected = self.counts.get("turns not selected (review status)", 0)
        if not_selected:
            out.append(f"  not selected by --review: {not_selected} turns")
        return out


class _Pipeline:
    """Samples → (render job | place job | nothing) → the image each record refers to."""

    def __init__(self, root: Path, options: ExportOptions, writer: FormatWriter, tally: Tally):
        self.options = options
        self.writer = writer
        self.tally = tally
        self.root = root
        self.originals: dict[str, RenderResult] = {}  # by sha256: placed, or why not
        self.last_original: tuple[str, bytes | None] = ("", None)
        self.render_dir = root / (".render" if writer.embeds_images else "images")
        self.render_dir.mkdir(exist_ok=True)
        self.submitted: set[str] = set()  # rendered names and original sha256s
        self._last = ""
        self.failed: dict[str, tuple[str, str]] = {}
        self.names: dict[str, str] = {}
        self.images: Counter[str] = Counter()
        self.placed: set[str] = set()
        self.augmented = 0
        self.id_paths: Counter[str] = Counter()
        self.conversations = 0
        self.turns = 0

    def samples(self, conversations: Iterator[Conversation]) -> Iterator[Sample]:
        for conv in conversations:
            try:
                prefix = self.writer.id_prefix(conv)
            except RecordRefused as exc:
                self.tally.problem(exc.reason, len(conv.exchanges), exc.detail or conv.key)
                continue
            sample_id = f"{prefix}-{conv.key}"
            texts = tuple((e.question, e.answer) for e in conv.exchanges)
            yield Sample(sample_id, conv, conv.prompts, texts, id_prefix=prefix)
            if not conv.prompts:
                continue
            for variant in range(1, self.options.augment + 1):
                prompts = redrawn_prompts(conv, variant, self.options.seed)
                texts = redrawn_texts(conv, prompts)
                yield Sample(f"{sample_id}-aug{variant}", conv, prompts, texts, variant, prefix)

    def _rendered(self, sample: Sample) -> bool:
        return self.writer.rendered and bool(sample.prompts)

    def job_of(self, sample: Sample) -> Job | None:
        conv = sample.conversation
        if not self._rendered(sample):
            # Each original is checked (decoded in full) once, in a worker. Formats that embed
            # the bytes get them again unless the previous sample had the same image: holding
            # every image's bytes would grow with the dataset.
            sha = conv.image_sha256
            if sha in self.submitted and not (self.writer.embeds_images and sha != self._last):
                return None
            self.submitted.add(sha)
            self._last = sha
            return PlaceJob(
                source=conv.image_path,
                size=conv.image_size,
                sha256=sha,
                root=str(self.root),
                subdir="images",
                mode=self.options.images,
                want_bytes=self.writer.embeds_images,
            )
        prompts_json = ov.dumps(sample.prompts)
        fmt = concrete_format(conv.image_path, self.options.rendered_format)
        name = _rendered_name(conv.image_path, conv.image_sha256, prompts_json, fmt)
        self.names[sample.id] = name
        if name in self.submitted:
            return None  # the same image and prompts elsewhere: rendered once
        self.submitted.add(name)
        return RenderJob(
            source=conv.image_path,
            size=conv.image_size,
            sha256=conv.image_sha256,
            prompts_json=prompts_json,
            dest=str(self.render_dir / name),
            fmt=fmt,
            want_bytes=self.writer.embeds_images,
        )

    def resolve(self, sample: Sample, result: RenderResult | None) -> SampleImage | None:
        conv = sample.conversation
        if not self._rendered(sample):
            sha = conv.image_sha256
            if result is not None:  # the first sample of this image (results come in order)
                self.originals[sha] = RenderResult(result.error, None, result.placed)
                self.last_original = (sha, result.data)
            done = self.originals[sha]
            if done.error is not None:
                self._fail(sample, *done.error)
                return None
            assert done.placed is not None
            self._count(sha, done.placed.how)
            if self.writer.embeds_images:
                assert self.last_original[0] == sha  # see job_of
                return SampleImage(done.placed.path, self.last_original[1])
            return SampleImage(done.placed.path)
        name = self.names.pop(sample.id)
        if result is not None:
            if result.error is not None:
                self.failed[name] = result.error
            else:
                self.images["rendered"] += 1
        if name in self.failed:
            reason, detail = self.failed[name]
            self._fail(sample, reason, detail)
            return None
        rendered = result.data if result is not None else None
        if rendered is None and self.writer.embeds_images:
            rendered = (self.render_dir / name).read_bytes()
        return SampleImage(f"images/{name}", rendered)

    def _count(self, sha256: str, how: str) -> None:
        if sha256 not in self.placed:  # each original image once
            self.placed.add(sha256)
            self.images[how] += 1

    def _fail(self, sample: Sample, reason: str, detail: str) -> None:
        if sample.variant:
            self.tally.problem(f"augmented sample: {reason}", 1, detail)
        else:
            self.tally.problem(reason, len(sample.conversation.exchanges), detail)

    def finish(self) -> None:
        if self.writer.embeds_images:
            for path in self.render_dir.iterdir():
                path.unlink()
            self.render_dir.rmdir()
        elif not any(self.render_dir.iterdir()):
            self.render_dir.rmdir()


class Progress:
    """The terminal bar and the desktop app's ``on_progress(turns done, turns selected)``, fed
    the same counts (image and video exports alike)."""

    def __init__(
        self, options: ExportOptions, on_progress: Callable[[int, int | None], object] | None
    ) -> None:
        self.bar = tqdm(
            unit="turn",
            desc=f"export {options.format}",
            disable=not options.progress,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        self.on_progress = on_progress
        self.total: int | None = None
        self.done = 0

    def selected(self, total: int) -> None:
        self.bar.total = total
        self.bar.refresh()
        self.total = total
        if self.on_progress is not None:
            self.on_progress(0, total)

    def advance(self, turns: int) -> None:
        self.bar.update(turns)
        self.done += turns
        if self.on_progress is not None:
            self.on_progress(self.done, self.total)

    def finish(self) -> None:
        """Ends full: turns dropped along the way (duplicates) count as done."""
        if self.on_progress is not None and self.total is not None:
            self.on_progress(self.total, self.total)

    def close(self) -> None:
        self.bar.close()


def protected_paths(log: QALog, options: ExportOptions) -> list[str]:
    """What ``--overwrite`` must never delete: the log and every file it refers to."""
    if not Path(options.out).exists():
        return []
    return [str(Path(log.path).resolve()), *log.source_paths()]


def cannot_write(exc: OSError, options: ExportOptions) -> ExportFailed:
    """The one message of an export that could not be written (nothing is left at ``out``)."""
    where = exc.filename or options.out
    return ExportFailed(
        f"cannot write the export ({exc.strerror or exc}: {where}); nothing was left at "
        f"{options.out}: free some space or choose another --out"
    )


def export(
    log: QALog,
    options: ExportOptions,
    on_progress: Callable[[int, int | None], object] | None = None,
) -> ExportSummary:
    """Write the dataset described by ``options``; returns the summary.

    Raises :class:`~data_gen.errors.OutputExists` (``out`` exists without ``overwrite``) and
    :class:`~data_gen.errors.ExportFailed` (``strict`` and a problem): then nothing is written.
    ``on_progress(turns done, turns selected)`` is called as the export goes (the desktop app's
    progress bar); an exception it raises stops the export, and nothing is left at ``out``.
    """
    if options.format in VIDEO_FORMATS:
        from data_gen.export_video import export_video  # imports PyAV only for video

        return export_video(log, options, on_progress)
    started = time.perf_counter()
    tally = Tally(strict=options.strict)
    writer_type = WRITERS[options.format]
    workers = options.workers or default_workers()  # originals are decoded in full too
    progress = Progress(options, on_progress)
    try:
        with staged_dir(options.out, options.overwrite, protected_paths(log, options)) as root:
            writer = writer_type(root, options)
            pipeline = _Pipeline(root, options, writer, tally)
            conversations = iter_conversations(
                log,
                options.selection,
                val_fraction=options.val_fraction,
                seed=options.seed,
                tally=tally,
                on_selected=progress.selected,
            )
            stream = ordered_map(
                pipeline.samples(conversations),
                pipeline.job_of,
                render_batch,
                workers=workers,
                chunk=4 if workers > 1 else 16,
            )
            # Closed before the staging folder is removed: the workers stop writing into it first.
            with contextlib.closing(stream):
                for sample, result in stream:
                    image = pipeline.resolve(sample, result)
                    if sample.variant == 0:
                        progress.advance(len(sample.conversation.exchanges))
                    if image is None:
                        continue
                    if sample.variant:
                        pipeline.augmented += 1
                    else:
                        pipeline.conversations += 1
                        pipeline.turns += len(sample.conversation.exchanges)
                    writer.write(sample, image)
                    pipeline.id_paths[sample.id_prefix] += 1
            progress.finish()
            files = writer.close()
            pipeline.finish()
            summary = ExportSummary(
                format=options.format,
                out=str(Path(options.out).absolute()),
                records=dict(writer.counts),
                conversations=pipeline.conversations,
                turns=pipeline.turns,
                augmented=pipeline.augmented,
                images=dict(pipeline.images),
                skipped=dict(tally.skipped),
                examples=tally.examples,
                counts=dict(tally.counts),
                files=[*files, "summary.json"],
                seconds=round(time.perf_counter() - started, 3),
                options=options_dict(options),
                id_paths=dict(pipeline.id_paths),
                notes=dict(writer.notes),
            )
            write_json(root / "summary.json", summary.to_dict())
    except OSError as exc:  # a full disk, a folder that cannot be written: nothing left at --out
        raise cannot_write(exc, options) from None
    finally:
        progress.close()
    return summary


def options_dict(options: ExportOptions) -> dict[str, Any]:
    data = asdict(options)
    data["out"] = str(options.out)
    data["selection"] = asdict(options.selection)
    return data
