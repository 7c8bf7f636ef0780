"""From logged turns to conversations: selection, grouping, deduplication and the split.

Rules (issue 6): corrected answers replace model answers; rejected turns are left out; turns on
the same image and prompts in one session form one multi-turn conversation; exact duplicates are
dropped; the train/validation split is by image and reproducible from the seed; every region is
clipped to its image. Conversations are streamed: the log is read page by page, one session at a
time, and only small per-session state is held.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import overlays as ov
from data_gen.errors import ExportFailed, InvalidSelection
from data_gen.qalog.log import REVIEW_STATES, QALog, TurnRow
from overlays import Prompt, Region, RegionRef

#: The image placeholder of every export format; never part of a person's text (issue 9 §5).
IMAGE_MARKER = "<image>"

#: Exported by default: everything but rejected turns.
DEFAULT_REVIEW: tuple[str, ...] = ("unreviewed", "accepted", "edited")
#: Why an image format leaves a video turn out.
VIDEO_TURN = "video turn (export it with videorefer, llama-factory-video, llava-video or streaming)"
SPLITS: tuple[str, ...] = ("train", "val")


def iso_date(value: str | None, what: str = "date") -> str | None:
    """A date or time as the log stores it (UTC ISO); naive values are taken as UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidSelection(
            f"{what} {value!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+HH:MM]"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the log stores UTC
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Selection:
    """Which turns an export takes. Rejected turns are never exported."""

    review: tuple[str, ...] = DEFAULT_REVIEW
    model: str | None = None
    source: str | None = None
    tag: str | None = None
    since: str | None = None
    until: str | None = None

    def __post_init__(self) -> None:
        review = tuple(dict.fromkeys(self.review or DEFAULT_REVIEW))
        unknown = [r for r in review if r not in REVIEW_STATES]
        if unknown:
            raise InvalidSelection(
                f"unknown review status {', '.join(unknown)}: use {', '.join(DEFAULT_REVIEW)}"
            )
        if "rejected" in review:
            raise InvalidSelection(
                "rejected turns are never exported: select unreviewed, accepted or edited"
            )
        object.__setattr__(self, "review", review)
        object.__setattr__(self, "since", iso_date(self.since, "--since"))
        object.__setattr__(self, "until", iso_date(self.until, "--until"))
        if self.since and self.until and self.since >= self.until:
            raise InvalidSelection(f"--since {self.since} is not before --until {self.until}")

    def log_filters(self) -> dict[str, Any]:
        """Keyword filters for :meth:`QALog.iter_turns`, without the review status."""
        return {
            "model": self.model,
            "source": self.source,
            "tag": self.tag,
            "since": self.since,
            "until": self.until,
        }


@dataclass(frozen=True)
class Exchange:
    """One question and its final answer in a conversation."""

    turn_id: int
    question: str
    answer: str
    question_refs: tuple[RegionRef, ...]


@dataclass(frozen=True)
class Conversation:
    """Turns of one session on one image with the same prompts, in order."""

    key: str
    session_id: int
    image_id: int
    image_path: str
    image_sha256: str
    image_size: tuple[int, int]
    prompts: tuple[Prompt, ...]
    regions: tuple[Region, ...]  # prompt i marks regions[i], clipped to the image
    exchanges: tuple[Exchange, ...]
    split: str

    @property
    def first_turn(self) -> int:
        return self.exchanges[0].turn_id


@dataclass
class Tally:
    """What an export used and skipped, with a few examples per reason."""

    counts: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    max_examples: int = 5

    strict: bool = False

    def skip(self, reason: str, count: int = 1, example: str | None = None) -> None:
        """Count something left out by a rule (rejected, duplicate)."""
        self.skipped[reason] += count
        if example is not None:
            shown = self.examples.setdefault(reason, [])
            if len(shown) < self.max_examples and example not in shown:
                shown.append(example)

    def problem(self, reason: str, count: int = 1, example: str | None = None) -> None:
        """Count data that cannot be used (missing image, …); in strict mode, stop instead."""
        if self.strict:
            detail = f": {example}" if example else ""
            raise ExportFailed(
                f"{reason}{detail}. --strict stops at the first problem (nothing was written); "
                "fix the data or export without --strict to skip it"
            )
        self.skip(reason, count, example)


def choose_val_images(images: Mapping[int, str], fraction: float, seed: int) -> set[int]:
    """The image ids of the validation split: ``round(fraction × n)`` of them.

    Images are ranked by a hash of (seed, image content hash), so the choice depends only on the
    seed and the set of images, not on log order; with 2+ images and ``fraction > 0`` at least
    one image is in each split.
    """
    if not 0 <= fraction < 1:
        raise InvalidSelection(f"--val-fraction {fraction:g} must be in [0, 1)")
    n = len(images)
    if fraction == 0 or n < 2:
        return set()
    k = min(max(round(fraction * n), 1), n - 1)
    ranked = sorted(
        images, key=lambda i: hashlib.sha256(f"{seed}:{images[i]}".encode()).hexdigest()
    )
    return set(ranked[:k])


def iter_conversations(
    log: QALog,
    selection: Selection,
    *,
    val_fraction: float = 0.0,
    seed: int = 0,
    tally: Tally | None = None,
    on_selected: Callable[[int], None] | None = None,
) -> Iterator[Conversation]:
    """The selected turns as conversations, session by session, deduplicated and split.

    ``on_selected`` is called with the number of selected turns once the first pass over the
    log is done (a progress bar's total).
    """
    tally = tally if tally is not None else Tally()
    sessions: set[int] = set()
    images: dict[int, str] = {}
    selected = 0
    for turn in log.iter_turns(**selection.log_filters()):
        if turn.video_id is not None:
            # Its image row is a frame of a video ("<video>#frame=i"), no file to place.
            tally.skip(VIDEO_TURN, example=f"turn {turn.id}")
        elif turn.review == "rejected":
            tally.skip("rejected turn", example=f"turn {turn.id}")
        elif turn.review not in selection.review:
            tally.counts["turns not selected (review status)"] += 1
        else:
            sessions.add(turn.session_id)
            images[turn.image_id] = turn.image_sha256
            selected += 1
    tally.counts["turns selected"] = selected
    if on_selected is not None:
        on_selected(selected)
    val_images = choose_val_images(images, val_fraction, seed)
    del images
    seen: set[bytes] = set()
    for session_id in sorted(sessions):
        turns = log.iter_turns(
            session_id=session_id, review=selection.review, **selection.log_filters()
        )
        for conversation in _session_conversations(list(turns), val_images, tally):
            if first_time(
                seen,
                _digest(conversation),
                tally,
                turns=len(conversation.exchanges),
                where=f"session {conversation.session_id}, turn {conversation.first_turn}",
            ):
                yield conversation


def first_time(seen: set[bytes], digest: bytes, tally: Tally, *, turns: int, where: str) -> bool:
    """Whether a conversation (image or video) with ``digest`` is new; counts it in ``tally``
    either way (a duplicate is skipped with ``where`` as its example)."""
    if digest in seen:
        tally.skip("duplicate conversation", example=where)
        tally.counts["turns in duplicate conversations"] += turns
        return False
    seen.add(digest)
    tally.counts["conversations"] += 1
    tally.counts["turns"] += turns
    return True


def _session_conversations(
    turns: list[TurnRow], val_images: set[int], tally: Tally
) -> Iterator[Conversation]:
    groups: dict[str, list[TurnRow]] = {}
    for turn in sorted(turns, key=lambda t: t.idx):
        groups.setdefault(ov.dumps(turn.prompts), []).append(turn)
    for group in groups.values():
        first = group[0]
        size = (first.image_width, first.image_height)
        try:
            regions = tuple(ov.fit_region(p.marked_region(), size) for p in first.prompts)
        except ov.PromptOutsideImage as exc:
            tally.problem("prompt outside its image", len(group), f"turn {first.id}: {exc}")
            continue
        exchanges: list[Exchange] = []
        pairs: set[tuple[str, str]] = set()
        for turn in group:
            answer = turn.final_answer
            if not answer.strip():
                tally.skip("empty answer", example=f"turn {turn.id}")
                continue
            if IMAGE_MARKER in turn.question or IMAGE_MARKER in answer:
                # Trainers split the text at every <image>: one image would get two positions.
                tally.skip("'<image>' typed in the text", example=f"turn {turn.id}")
                continue
            if (turn.question, answer) in pairs:
                tally.skip("duplicate turn", example=f"turn {turn.id}")
                continue
            pairs.add((turn.question, answer))
            exchanges.append(Exchange(turn.id, turn.question, answer, tuple(turn.question_refs)))
        if not exchanges:
            continue
        yield Conversation(
            key=f"{first.session_id}-{exchanges[0].turn_id}",
            session_id=first.session_id,
            image_id=first.image_id,
            image_path=first.image_path,
            image_sha256=first.image_sha256,
            image_size=size,
            prompts=tuple(first.prompts),
            regions=regions,
            exchanges=tuple(exchanges),
            split="val" if first.image_id in val_images else "train",
        )


def _digest(conversation: Conversation) -> bytes:
    body = json.dumps(
        [
            conversation.image_sha256,
            ov.dumps(conversation.prompts),
            [(e.question, e.answer) for e in conversation.exchanges],
        ],
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode()).digest()
