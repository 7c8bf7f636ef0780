"""`export` of video turns: the log → a video dataset folder, safely, with clips made in parallel.

Samples come from :func:`data_gen.video_records.iter_video_samples` (selection, grouping,
dedup, split by video; timelines for ``streaming``); each gets a clip plan (frames around the
asked moment, each region's prompt on each frame), plus K redrawn variants with ``augment``;
clips are decoded, drawn and encoded in worker processes (:mod:`data_gen.export_video_clips`),
in order and with a bounded number in flight; the format writer appends each record. The same
staging, marker, summary and ``--overwrite`` rules as image exports (:mod:`data_gen.output`).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import overlays as ov
from data_gen.base import ExportOptions
from data_gen.errors import RecordRefused
from data_gen.export import ExportSummary, Progress, cannot_write, options_dict, protected_paths
from data_gen.export_video_clips import (
    ClipJob,
    MediaResult,
    PlaceVideoJob,
    VideoJob,
    close_readers,
    media_batch,
)
from data_gen.export_video_formats import VIDEO_WRITERS, VideoItem, VideoWriter
from data_gen.images import safe_stem
from data_gen.output import staged_dir, write_json
from data_gen.parallel import default_workers, ordered_map
from data_gen.qalog.log import QALog
from data_gen.records import Tally
from data_gen.video_records import iter_video_samples, timelines
from data_gen.video_samples import ClipPlan, VideoSample, clip_plan, redraw_frames, texts_of


def encoder_threads(workers: int) -> int:
    """x264 threads per clip: the cores shared out among the worker processes (0: x264's own
    choice, for one worker: it encodes on several threads itself)."""
    return 0 if workers <= 1 else max(1, default_workers() // workers)


def clip_stem(sample: VideoSample, plan: ClipPlan, max_side: int) -> str:
    """A clip's file stem: the video's name and a digest of everything drawn in it."""
    body = "\n".join(
        [
            sample.video.sha256,
            ",".join(map(str, plan.frames)),
            *(ov.dumps(p) for p in plan.prompts),
            f"{plan.fps:g}",
            str(max_side),
        ]
    )
    digest = hashlib.sha256(body.encode()).hexdigest()[:16]
    return f"{safe_stem(sample.video.path).replace('.', '_')}-{digest}"


class _VideoPipeline:
    """Samples → items (with variants) → clip or place jobs → the media each record names."""

    def __init__(
        self, root: Path, options: ExportOptions, writer: VideoWriter, tally: Tally, workers: int
    ):
        self.root = root
        self.workers = workers
        self.options = options
        self.writer = writer
        self.tally = tally
        self.outcomes: dict[str, MediaResult] = {}  # by clip name or video sha256
        self.keys: dict[str, str] = {}  # item id → its key in outcomes
        self._submitted: set[str] = set()  # clip names and original videos' sha256
        self.media: Counter[str] = Counter()
        self.augmented = 0
        self.conversations = 0
        self.turns = 0

    def items(self, samples: Iterator[VideoSample]) -> Iterator[VideoItem]:
        options = self.options
        prefix = options.name_prefix
        for sample in samples:
            try:
                self.writer.check(sample)
            except RecordRefused as exc:
                self.tally.problem(exc.reason, len(sample.turns), exc.detail or sample.key)
                continue
            plan: ClipPlan | None = None
            if self.writer.burned:
                context = 0.0 if self.writer.timelines else options.context
                plan = clip_plan(sample, fps=options.video_fps, before=context, after=context)
                if plan is None:
                    self.tally.problem(
                        "region not tracked at the asked frame",
                        len(sample.turns),
                        f"session turn {sample.first_turn}",
                    )
                    continue
                if plan.held:
                    self.writer.notes[
                        "clip frames where a region is drawn where it was last known (not "
                        "drawn or tracked there)"
                    ] += plan.held
            item_id = f"{prefix}-{sample.key}"
            yield VideoItem(item_id, sample, texts_of(sample), plan)
            if plan is None or not sample.prompts:
                continue
            for variant in range(1, options.augment + 1):
                redrawn = redraw_frames(sample, plan, variant, options.seed)
                if redrawn is None:
                    self.tally.problem(
                        "augmented sample: the new mark does not fit the region on every frame",
                        1,
                        f"{item_id} variant {variant}",
                    )
                    continue
                new_plan, texts = redrawn
                yield VideoItem(f"{item_id}-aug{variant}", sample, texts, new_plan, variant)

    def job_of(self, item: VideoItem) -> VideoJob | None:
        video = item.sample.video
        if item.plan is None:  # the original video, placed once
            key = video.sha256
            self.keys[item.id] = key
            if key in self._submitted:
                return None
            self._submitted.add(key)
            suffix = Path(video.path).suffix.lower() or ".mp4"
            return PlaceVideoJob(
                source=video.path,
                sha256=video.sha256,
                root=str(self.root),
                subdir="videos",
                mode=self.options.images,
                name=f"videos/{safe_stem(video.path)}-{video.sha256[:12]}{suffix}",
            )
        plan = item.plan
        name = self.writer.clip_name(clip_stem(item.sample, plan, self.options.video_size))
        self.keys[item.id] = name
        if name in self._submitted:
            return None  # the same frames and drawing elsewhere: encoded once
        self._submitted.add(name)
        sets: list[str] = []
        which: list[int] = []
        for prompts in plan.prompts:
            text = ov.dumps(prompts)
            if not sets or sets[-1] != text:
                sets.append(text)
            which.append(len(sets) - 1)
        return ClipJob(
            source=video.path,
            sha256=video.sha256,
            frames=plan.frames,
            prompts=tuple(sets),
            which=tuple(which),
            fps=plan.fps,
            max_side=self.options.video_size,
            dest=str(self.root / name),
            name=name,
            threads=encoder_threads(self.workers),
        )

    def resolve(self, item: VideoItem, result: MediaResult | None) -> str | None:
        key = self.keys.pop(item.id)
        if result is not None:  # the first item with this media (results come in order)
            self.outcomes[key] = result
            if result.error is None:
                self.media["clips" if result.how == "clip" else f"videos {result.how}"] += 1
                if result.frames:
                    self.media["clip frames"] += result.frames
        done = self.outcomes[key]
        if done.error is not None:
            reason, detail = done.error
            if item.variant:
                self.tally.problem(f"augmented sample: {reason}", 1, detail)
            else:
                self.tally.problem(reason, len(item.sample.turns), detail)
            return None
        assert done.path is not None
        return done.path


def export_video(
    log: QALog,
    options: ExportOptions,
    on_progress: Callable[[int, int | None], object] | None = None,
) -> ExportSummary:
    """Write the video dataset described by ``options``; returns the summary.

    Raises :class:`~data_gen.errors.OutputExists`, :class:`~data_gen.errors.OutputRefused` and
    :class:`~data_gen.errors.ExportFailed` (``strict`` and a problem, or a full disk): then
    nothing is left at ``out``.
    """
    started = time.perf_counter()
    tally = Tally(strict=options.strict)
    writer_type = VIDEO_WRITERS[options.format]
    workers = options.workers or default_workers()
    progress = Progress(options, on_progress)  # the desktop app's export dialog, as for images
    try:
        with staged_dir(options.out, options.overwrite, protected_paths(log, options)) as root:
            writer = writer_type(root, options)
            pipeline = _VideoPipeline(root, options, writer, tally, workers)
            samples: Iterator[VideoSample] = iter_video_samples(
                log,
                options.selection,
                val_fraction=options.val_fraction,
                seed=options.seed,
                tally=tally,
                on_selected=progress.selected,
            )
            if writer.timelines:
                samples = iter(timelines(samples))
            # A clip is seconds of decoding and encoding: one per task keeps every core busy.
            stream = ordered_map(
                pipeline.items(samples),
                pipeline.job_of,
                media_batch,
                workers=workers,
                chunk=1 if workers > 1 else 4,
            )
            # Closed before the staging folder is removed: the workers stop writing into it first.
            with contextlib.closing(stream):
                for item, result in stream:
                    media = pipeline.resolve(item, result)
                    if item.variant == 0:
                        progress.advance(len(item.sample.turns))
                    if media is None:
                        continue
                    if item.variant:
                        pipeline.augmented += 1
                    else:
                        pipeline.conversations += 1
                        pipeline.turns += len(item.sample.turns)
                    writer.write(item, media)
            progress.finish()
            files = writer.close()
            summary = ExportSummary(
                format=options.format,
                out=str(Path(options.out).absolute()),
                records=dict(writer.counts),
                conversations=pipeline.conversations,
                turns=pipeline.turns,
                augmented=pipeline.augmented,
                images=dict(pipeline.media),
                skipped=dict(tally.skipped),
                examples=tally.examples,
                counts=dict(tally.counts),
                files=[*files, "summary.json"],
                seconds=round(time.perf_counter() - started, 3),
                options=options_dict(options),
                notes=dict(writer.notes),
            )
            write_json(root / "summary.json", summary.to_dict())
    except OSError as exc:  # a full disk, a folder that cannot be written: nothing left at --out
        raise cannot_write(exc, options) from None
    finally:
        progress.close()
        close_readers()
    return summary
