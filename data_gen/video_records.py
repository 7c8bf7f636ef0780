"""From the log's video turns to :class:`~data_gen.video_samples.VideoSample` s.

The image export's rules, applied to video (issue 15 §5): corrected answers replace the
model's, rejected turns are left out, turns of one session with the same prompts form one
conversation (the log keeps a session on one frame), exact duplicates are dropped, and the
train/validation split is by VIDEO (no video in two splits), reproducible from the seed.
Timelines (``streaming``) join the conversations on one video that ask the same question.

A region's stored track is the one whose prompt at the asked frame is the logged prompt (same
kind, boxes overlapping by IoU ≥ 0.5), preferring the track of the turn's own session: the
log keeps tracks per video, session and region index, and the association by agreement keeps a
track of another region or another object from being drawn.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import overlays as ov
from data_gen.qalog.log import QALog, TrackRow, TurnRow
from data_gen.records import Selection, Tally, choose_val_images, first_time
from data_gen.video_samples import VideoRef, VideoSample, VideoTurn, has_marker
from overlays import Prompt
from overlays.tracks import Track

#: IoU of a stored track's box and the logged prompt's box at the asked frame to take the track.
TRACK_IOU = 0.5


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_track(
    prompt: Prompt, frame: int, session_id: int, region: int, rows: list[TrackRow]
) -> Track | None:
    """The stored track that agrees with ``prompt`` at ``frame`` (see the module doc)."""
    best: tuple[tuple[int, float], Track] | None = None
    for row in rows:
        try:
            track = row.track()
            found = track.prompt_at(frame)
        except (ValueError, KeyError, TypeError, ov.OverlayError):
            continue  # a damaged stored track is ignored, never fatal
        if found is None or found[0].kind != prompt.kind:
            continue
        iou = _iou(found[0].bounds, prompt.bounds)
        if iou < TRACK_IOU:
            continue
        rank = (int(row.session_id == session_id and row.region_index == region), iou)
        if best is None or rank > best[0]:
            best = (rank, track)
    return best[1] if best is not None else None


class _Videos:
    """Videos and their stored tracks, read once per export."""

    def __init__(self, log: QALog) -> None:
        self.log = log
        self._refs: dict[int, VideoRef] = {}
        self._tracks: dict[int, list[TrackRow]] = {}

    def ref(self, video_id: int) -> VideoRef:
        if video_id not in self._refs:
            row = self.log.video(video_id)
            self._refs[video_id] = VideoRef(
                video_id,
                row.path,
                row.sha256,
                row.width,
                row.height,
                row.fps,
                row.frame_count,
                row.duration,
            )
        return self._refs[video_id]

    def tracks(self, video_id: int) -> list[TrackRow]:
        if video_id not in self._tracks:
            self._tracks[video_id] = self.log.tracks(video_id)
        return self._tracks[video_id]


def iter_video_samples(
    log: QALog,
    selection: Selection,
    *,
    val_fraction: float = 0.0,
    seed: int = 0,
    tally: Tally | None = None,
    on_selected: Callable[[int], None] | None = None,
) -> Iterator[VideoSample]:
    """The selected video turns as conversations (one frame each), session by session,
    deduplicated and split by video."""
    tally = tally if tally is not None else Tally()
    sessions: set[int] = set()
    videos: set[int] = set()
    selected = 0
    for turn in log.iter_turns(**selection.log_filters()):
        if turn.video_id is None:
            tally.counts["image turns (not in a video format)"] += 1
        elif turn.review == "rejected":
            tally.skip("rejected turn", example=f"turn {turn.id}")
        elif turn.review not in selection.review:
            tally.counts["turns not selected (review status)"] += 1
        else:
            sessions.add(turn.session_id)
            videos.add(turn.video_id)
            selected += 1
    tally.counts["turns selected"] = selected
    if on_selected is not None:
        on_selected(selected)
    known = _Videos(log)
    # Split by the video's content hash, so the choice does not depend on log order.
    val_videos = choose_val_images(
        {vid: known.ref(vid).sha256 for vid in videos}, val_fraction, seed
    )
    seen: set[bytes] = set()
    for session_id in sorted(sessions):
        turns = log.iter_turns(
            session_id=session_id, review=selection.review, **selection.log_filters()
        )
        for sample in _session_samples(list(turns), known, val_videos, tally):
            where = f"session {session_id}, turn {sample.first_turn}"
            if first_time(seen, _digest(sample), tally, turns=len(sample.turns), where=where):
                yield sample


def _session_samples(
    turns: list[TurnRow], known: _Videos, val_videos: set[int], tally: Tally
) -> Iterator[VideoSample]:
    groups: dict[str, list[TurnRow]] = {}
    for turn in sorted(turns, key=lambda t: t.idx):
        if turn.video_id is None or turn.frame_index is None:
            continue
        groups.setdefault(ov.dumps(turn.prompts), []).append(turn)
    for group in groups.values():
        first = group[0]
        assert first.video_id is not None and first.frame_index is not None
        video = known.ref(first.video_id)
        try:
            for p in first.prompts:
                ov.fit_region(p.marked_region(), video.size)
        except ov.PromptOutsideImage as exc:
            tally.problem("prompt outside its frame", len(group), f"turn {first.id}: {exc}")
            continue
        kept: list[VideoTurn] = []
        pairs: set[tuple[str, str]] = set()
        for turn in group:
            answer = turn.final_answer
            marker = has_marker(turn.question) or has_marker(answer)
            if not answer.strip():
                tally.skip("empty answer", example=f"turn {turn.id}")
            elif marker is not None:
                # Trainers split the text at every marker: the video would get two positions.
                tally.skip(f"'{marker}' typed in the text", example=f"turn {turn.id}")
            elif (turn.question, answer) in pairs:
                tally.skip("duplicate turn", example=f"turn {turn.id}")
            else:
                pairs.add((turn.question, answer))
                kept.append(_video_turn(turn, answer))
        if not kept:
            continue
        rows = known.tracks(video.id)
        tracks = tuple(
            match_track(p, kept[0].frame, first.session_id, i, rows)
            for i, p in enumerate(kept[0].prompts)
        )
        yield VideoSample(
            key=f"{first.session_id}-{kept[0].turn_id}",
            video=video,
            turns=tuple(kept),
            tracks=tracks,
            split="val" if video.id in val_videos else "train",
        )


def _video_turn(turn: TurnRow, answer: str) -> VideoTurn:
    assert turn.frame_index is not None
    return VideoTurn(
        turn_id=turn.id,
        session_id=turn.session_id,
        frame=turn.frame_index,
        time=float(turn.frame_time or 0.0),
        question=turn.question,
        answer=answer,
        question_refs=tuple(turn.question_refs),
        prompts=tuple(turn.prompts),
        review=turn.review,
    )


def _digest(sample: VideoSample) -> bytes:
    body: list[Any] = [
        sample.video.sha256,
        [t.frame for t in sample.turns],
        ov.dumps(sample.prompts),
        [(t.question, t.answer) for t in sample.turns],
    ]
    return hashlib.sha256(json.dumps(body, ensure_ascii=False).encode()).digest()


def timelines(samples: Iterator[VideoSample]) -> list[VideoSample]:
    """Conversations on one video that ask the same first question with the same kinds of
    marks, joined in time order ("ask over time" runs): one sample each."""
    groups: dict[tuple[int, str, tuple[str, ...], str], list[VideoSample]] = {}
    for sample in samples:
        kinds = tuple(p.kind for p in sample.prompts)
        key = (sample.video.id, sample.turns[0].question, kinds, sample.split)
        groups.setdefault(key, []).append(sample)
    out: list[VideoSample] = []
    for group in groups.values():
        group.sort(key=lambda s: (s.turns[0].frame, s.first_turn))
        turns = tuple(t for s in group for t in s.turns)
        # The tracks that agree at the first asked frame (a clip starts there); a region
        # without one is drawn from the prompts logged at each asked frame.
        tracks = group[0].tracks
        out.append(
            VideoSample(
                key=group[0].key,
                video=group[0].video,
                turns=turns,
                tracks=tracks,
                split=group[0].split,
            )
        )
    out.sort(key=lambda s: s.first_turn)
    return out
