"""Seeing the data: counts and length histograms of the log, as text and as a PNG picture.

Counts by prompt kind, colour, review status, model and source; question and answer length
histograms (in words); imported regions by class. One streamed pass over the turns. The
picture is drawn with Pillow (no plotting library): horizontal bars for counts, columns for
histograms.
"""

from __future__ import annotations

import math
import os
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, features

import overlays as ov
from data_gen.qalog.log import QALog
from data_gen.records import iso_date
from data_gen.safe_write import atomic_write

COUNTS: tuple[str, ...] = ("prompt kind", "colour", "review", "model", "source")


@dataclass
class Stats:
    """What the log holds (for the selected turns)."""

    turns: int = 0
    images: int = 0
    sessions: int = 0
    counts: dict[str, Counter[str]] = field(default_factory=lambda: {k: Counter() for k in COUNTS})
    question_words: Counter[int] = field(default_factory=Counter)
    answer_words: Counter[int] = field(default_factory=Counter)
    regions: int = 0
    region_labels: Counter[str] = field(default_factory=Counter)
    video_turns: int = 0  # of `turns`, those asked about a video frame
    videos: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "turns": self.turns,
            "images": self.images,
            "sessions": self.sessions,
            "video_turns": self.video_turns,
            "videos": self.videos,
            **{k.replace(" ", "_"): dict(v.most_common()) for k, v in self.counts.items()},
            "question_words": _summary(self.question_words),
            "answer_words": _summary(self.answer_words),
            "question_words_histogram": {str(k): v for k, v in sorted(self.question_words.items())},
            "answer_words_histogram": {str(k): v for k, v in sorted(self.answer_words.items())},
            "imported_regions": self.regions,
            "region_labels": dict(self.region_labels.most_common()),
        }

    def lines(self) -> list[str]:
        out = [f"{self.turns} turns on {self.images} images in {self.sessions} sessions"]
        if self.video_turns:
            out.append(f"  video: {self.video_turns} turns on frames of {self.videos} videos")
        for key, counter in self.counts.items():
            shown = ", ".join(f"{k}: {v}" for k, v in counter.most_common(12)) or "-"
            out.append(f"  {key}: {shown}")
        for name, hist in (("question", self.question_words), ("answer", self.answer_words)):
            s = _summary(hist)
            if s:
                out.append(
                    f"  {name} length (words): min {s['min']}, median {s['median']:g}, "
                    f"mean {s['mean']:.1f}, p95 {s['p95']}, max {s['max']}"
                )
        if self.regions:
            labels = ", ".join(f"{k}: {v}" for k, v in self.region_labels.most_common(12))
            out.append(f"  imported regions: {self.regions} ({labels or 'no class names'})")
        return out


def _summary(hist: Counter[int]) -> dict[str, Any]:
    total = sum(hist.values())
    if not total:
        return {}
    values = sorted(hist.elements())
    return {
        "count": total,
        "min": values[0],
        "median": statistics.median(values),
        "mean": sum(values) / total,
        "p95": values[min(total - 1, math.ceil(0.95 * total) - 1)],
        "max": values[-1],
    }


def collect_stats(
    log: QALog,
    *,
    review: Sequence[str] | None = None,
    model: str | None = None,
    source: str | None = None,
    tag: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Stats:
    """Statistics of the turns matching the filters (all turns by default, rejected included)."""
    stats = Stats()
    images: set[int] = set()
    sessions: set[int] = set()
    videos: set[int] = set()
    for turn in log.iter_turns(
        review=review or None,
        model=model,
        source=source,
        tag=tag,
        since=iso_date(since, "--since"),
        until=iso_date(until, "--until"),
    ):
        stats.turns += 1
        images.add(turn.image_id)
        sessions.add(turn.session_id)
        if turn.video_id is not None:
            stats.video_turns += 1
            videos.add(turn.video_id)
        stats.counts["review"][turn.review] += 1
        stats.counts["model"][turn.model] += 1
        stats.counts["source"][turn.source] += 1
        for prompt in turn.prompts:
            stats.counts["prompt kind"][prompt.kind] += 1
            stats.counts["colour"][prompt.style.color_name or "unnamed RGB"] += 1
        stats.question_words[len(turn.question.split())] += 1
        stats.answer_words[len(turn.final_answer.split())] += 1
    stats.images = len(images)
    stats.sessions = len(sessions)
    stats.videos = len(videos)
    for region in log.iter_regions():
        stats.regions += 1
        stats.region_labels[region.label or "(no class)"] += 1
    return stats


# --------------------------------------------------------------------------- the picture

_BG = (255, 255, 255)
_INK = (30, 30, 30)
_GRID = (225, 225, 225)
_BAR = (70, 110, 170)
_PANEL_W, _PANEL_H = 520, 330


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if features.check("freetype2"):
        return ImageFont.load_default(size=size)
    return ImageFont.load_default()


def _bar_colour(panel: str, name: str) -> tuple[int, int, int]:
    if panel == "colour" and name in ov.PALETTE:
        return ov.PALETTE[name]
    return _BAR


def _bars(
    draw: ImageDraw.ImageDraw, box: tuple[int, int], title: str, counts: Counter[str]
) -> None:
    x0, y0 = box
    font, small = _font(18), _font(13)
    draw.text((x0 + 10, y0 + 6), title, fill=_INK, font=font)
    items = counts.most_common(10)
    if not items:
        draw.text((x0 + 10, y0 + 40), "no data", fill=_INK, font=small)
        return
    top = max(v for _, v in items)
    label_w, row_h = 150, min(28, (_PANEL_H - 50) // len(items))
    width = _PANEL_W - label_w - 70
    for i, (name, value) in enumerate(items):
        y = y0 + 40 + i * row_h
        text = name if len(name) <= 20 else name[:19] + "…"
        draw.text((x0 + 10, y + 4), text, fill=_INK, font=small)
        length = max(1, round(width * value / top))
        bx = x0 + label_w
        draw.rectangle((bx, y + 3, bx + length, y + row_h - 3), fill=_bar_colour(title, name))
        draw.rectangle((bx, y + 3, bx + length, y + row_h - 3), outline=_INK)
        draw.text((bx + length + 6, y + 4), str(value), fill=_INK, font=small)


def _histogram(
    draw: ImageDraw.ImageDraw, box: tuple[int, int], title: str, hist: Counter[int]
) -> None:
    x0, y0 = box
    font, small = _font(18), _font(13)
    draw.text((x0 + 10, y0 + 6), title, fill=_INK, font=font)
    if not hist:
        draw.text((x0 + 10, y0 + 40), "no data", fill=_INK, font=small)
        return
    low, high = min(hist), max(hist)
    bins = min(24, high - low + 1)
    step = max(1, math.ceil((high - low + 1) / bins))
    counts = [0] * bins
    for value, n in hist.items():
        counts[min((value - low) // step, bins - 1)] += n
    top = max(counts)
    left, bottom = x0 + 50, y0 + _PANEL_H - 40
    width, height = _PANEL_W - 80, _PANEL_H - 90
    for tick in sorted({max(1, round(top * f)) for f in (0.25, 0.5, 0.75, 1.0)}):
        y = bottom - round(height * tick / top)
        draw.line((left, y, left + width, y), fill=_GRID)
        draw.text((x0 + 8, y - 8), str(tick), fill=_INK, font=small)
    col = width / bins
    for i, n in enumerate(counts):
        if n:
            h = max(1, round(height * n / top))
            xa, xb = left + round(i * col) + 1, left + round((i + 1) * col) - 1
            draw.rectangle((xa, bottom - h, max(xa, xb), bottom), fill=_BAR)
    draw.line((left, bottom, left + width, bottom), fill=_INK)
    draw.text((left, bottom + 6), f"{low}", fill=_INK, font=small)
    draw.text(
        (left + width - 60, bottom + 6), f"{low + bins * step - 1} words", fill=_INK, font=small
    )


def plot(stats: Stats, path: str | os.PathLike[str]) -> Path:
    """Draw the statistics as one PNG (written safely: temp file, then replace)."""
    panels = [*COUNTS, "question length", "answer length", "imported regions by class"]
    cols = 4
    rows = math.ceil(len(panels) / cols)
    image = Image.new("RGB", (cols * _PANEL_W, 60 + rows * _PANEL_H), _BG)
    draw = ImageDraw.Draw(image)
    title = f"ViP Studio log: {stats.turns} turns, {stats.images} images, {stats.sessions} sessions"
    draw.text((12, 14), title, fill=_INK, font=_font(24))
    for i, name in enumerate(panels):
        box = ((i % cols) * _PANEL_W, 60 + (i // cols) * _PANEL_H)
        draw.rectangle(
            (box[0] + 2, box[1] + 2, box[0] + _PANEL_W - 3, box[1] + _PANEL_H - 3), outline=_GRID
        )
        if name in stats.counts:
            _bars(draw, box, name, stats.counts[name])
        elif name == "question length":
            _histogram(draw, box, "question length (words)", stats.question_words)
        elif name == "answer length":
            _histogram(draw, box, "answer length (words)", stats.answer_words)
        else:
            _bars(draw, box, name, stats.region_labels)
    target = Path(path)
    with atomic_write(target, "wb", suffix=".png") as fh:
        image.save(fh, format="PNG")
    return target
