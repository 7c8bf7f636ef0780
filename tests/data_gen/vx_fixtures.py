"""Helpers of the video export tests: tiny real clips (PyAV, via write_video) and a real log of
video turns written through the log's own API, the way `ask clip.mp4 --at/--every` writes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import overlays as ov
from data_gen.qalog.log import NewTurn, QALog
from data_gen.qalog.log_video import frame_image
from overlays.tracks import Track
from overlays.video_io import VideoInfo, VideoReader, write_video

SAMPLES = Path(__file__).resolve().parents[2] / "assets" / "samples"
W, H = 96, 64
WALK_FRAMES, WALK_FPS = 20, 10.0  # 2 s
SIDE = 24


def walk_box(i: int) -> tuple[float, float, float, float]:
    """Where the square of ``walk.mp4`` is in frame ``i``: 3 px to the right per frame."""
    x = 8 + 3 * i
    return (x, 20, x + SIDE, 20 + SIDE)


def square_frame(box: tuple[float, float, float, float], shade: int = 40) -> np.ndarray:
    frame = np.full((H, W, 3), shade, np.uint8)
    x1, y1, x2, y2 = (round(v) for v in box)
    frame[y1:y2, x1:x2] = (250, 220, 30)  # a yellow square: no red anywhere
    return frame


def walk_clip(path: Path) -> Path:
    write_video(path, (square_frame(walk_box(i)) for i in range(WALK_FRAMES)), WALK_FPS)
    return path


def still_clip(path: Path, frames: int = 12, fps: float = 8.0) -> Path:
    box = (50.0, 10.0, 80.0, 40.0)
    write_video(path, (square_frame(box, 60 + i) for i in range(frames)), fps)
    return path


def ask_frame(
    log: QALog,
    reader: VideoReader,
    frame: int,
    prompts: list[ov.Prompt],
    question: str,
    answer: str,
    *,
    session: int | None = None,
    **kw: object,
) -> tuple[int, int]:
    """Log a question about ``frame`` (a new conversation, or a follow-up in ``session``)
    as the CLI does: placeholders composed, the frame as the turn's image. (session, turn)."""
    text, refs = ov.compose_question(question, prompts)
    turn = NewTurn(
        session_id=session or 0,
        prompts=prompts,
        question=text,
        question_refs=refs,
        answer=answer,
        model="tiny",
        template="llava_v1",
        source=str(kw.pop("source", "cli")),
        **kw,  # type: ignore[arg-type]
    )
    info = reader.info
    recorded = log.record_turn(
        turn,
        session_id=session,
        image=None if session is not None else frame_image(info, frame, reader.frame(frame)),
        video=info,
        frame_index=frame,
        frame_time=reader.time_of(frame),
    )
    return recorded.session_id, recorded.turn_id


@dataclass
class VideoLog:
    """A log of video turns and what went into it."""

    log: QALog
    walk: VideoInfo
    still: VideoInfo
    turns: dict[str, int] = field(default_factory=dict)
    sessions: dict[str, int] = field(default_factory=dict)
    #: The asked-over-time frames of walk.mp4 and their answers.
    timeline: list[tuple[int, str]] = field(default_factory=list)


def populate_videos(log: QALog, folder: Path) -> VideoLog:
    """walk.mp4: one conversation at frame 5 (a follow-up edited), a rejected turn, an "ask
    over time" run with a stored track; still.mp4: two regions in one question; a photo turn."""
    folder.mkdir(parents=True, exist_ok=True)
    walk = walk_clip(folder / "walk.mp4")
    still = still_clip(folder / "still.mp4")
    with VideoReader(walk) as wr, VideoReader(still) as sr:
        v = VideoLog(log, wr.info, sr.info)
        box5 = [ov.Rectangle(walk_box(5), label="square")]
        sid, v.turns["at5"] = ask_frame(log, wr, 5, box5, "What is <region0> doing?", "Moving.")
        v.sessions["at5"] = sid
        _, v.turns["follow"] = ask_frame(
            log, wr, 5, box5, "Is the red rectangle yellow?", "No.", session=sid
        )
        log.review(v.turns["follow"], "edited", "Yes, it is yellow.")
        _, v.turns["rejected"] = ask_frame(
            log, wr, 8, [ov.Rectangle(walk_box(8))], "What is <region0>?", "A banana."
        )
        log.review(v.turns["rejected"], "rejected")
        # Ask over time: the tracked square every 0.5 s from 0 s (frames 0, 5, 10, 15).
        keys = {i: ov.Ellipse(walk_box(i)) for i in (0, 19)}
        track = Track(keyframes=keys)
        answers = ["It starts.", "It moves right.", "It moves right.", "It nears the edge."]
        first_session = None
        for frame, answer in zip((0, 5, 10, 15), answers, strict=True):
            prompt = track.prompt_at(frame)
            assert prompt is not None
            s, t = ask_frame(
                log, wr, frame, [prompt[0]], "Where is <region0> going?", answer, source="batch"
            )
            first_session = first_session or s
            v.turns[f"run{frame}"] = t
            v.timeline.append((frame, answer))
        log.save_track(log.video_by_path(walk).id, 0, track, session_id=first_session)  # type: ignore[union-attr]
        two = [ov.Rectangle((50, 10, 80, 40)), ov.Ellipse((10, 30, 40, 60))]
        sid, v.turns["still"] = ask_frame(
            log, sr, 3, two, "Is <region0> above <region1>?", "Yes, the red rectangle is higher."
        )
        v.sessions["still"] = sid
    photo = log.add_image(SAMPLES / "coffee.jpg")
    session = log.start_session(photo.id, source="cli")
    text, refs = ov.compose_question("What is <region0>?", [ov.Rectangle((180, 20, 420, 230))])
    log.add_turn(
        NewTurn(
            session_id=session,
            prompts=[ov.Rectangle((180, 20, 420, 230))],
            question=text,
            question_refs=refs,
            answer="A cup.",
            model="tiny",
            template="llava_v1",
        )
    )
    return v
