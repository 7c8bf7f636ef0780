"""`vipstudio ask clip.mp4 QUESTION --at T --every S [--track] [--until U]`: the same question at
every sampled frame, ``batch_size`` frames per ``engine.batch`` call, one answer (or one
"no answer, and why") per frame, each turn logged with its video, frame index and time."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

import overlays as ov
from app.ask_video import FramePlan, Planned, When, WhenError, frame_label, log_frame_turn, plan
from app.batch import answer_each
from app.model_options import engine_from_options, settings_from
from data_gen.qalog.log import NewTurn, QALog, default_db_path
from overlays.video_io import VideoReader
from vip_model.engine import Answer, Engine, GenerationSettings
from vip_model.errors import InvalidRequest
from vip_model.prepare import AnswerRecord, Prepared, prepare_request


@dataclass
class OverTime:
    """One question asked over a span of a video (see the module's docstring)."""

    engine: Engine
    model: str
    log: QALog | None
    reader: VideoReader
    video: Path  # as the user gave it (answer records name it so)
    question: str
    settings: GenerationSettings
    template: str
    batch_size: int
    emit: Callable[[dict[str, Any]], None]  # one record (answer or error) per sampled frame
    answered: int = 0
    missing: int = 0
    _first_session: int | None = None

    def run(self, planned: Planned) -> None:
        """Ask at every frame of ``planned``; then store the regions' tracks in the log."""
        for chunk in _chunks(planned.frames, self.batch_size):
            self._ask(chunk)
        if self.log is not None and planned.tracks and self._first_session is not None:
            video_id = self.log.add_video(self.reader.info).id
            for region, track in enumerate(planned.tracks):
                self.log.save_track(video_id, region, track, session_id=self._first_session)

    def _ask(self, chunk: Sequence[FramePlan]) -> None:
        # Each frame's record, in frame order: an error now, or the request to answer.
        slots: list[dict[str, Any] | tuple[FramePlan, Any, Prepared]] = []
        for frame in chunk:
            if frame.prompts is None:
                slots.append(self._error(frame, frame.lost or "no prompts here", "TrackLost"))
                continue
            image = self.reader.frame(frame.index)
            try:
                prepared = prepare_request(
                    image,
                    self.question,
                    frame.prompts,
                    settings=self.settings,
                    template=self.template,
                )
            except Exception as exc:  # a tracked prompt off the frame: this frame only
                slots.append(self._error(frame, str(exc), type(exc).__name__))
                continue
            slots.append((frame, image, prepared))
        asked = [slot for slot in slots if isinstance(slot, tuple)]
        answers = iter(answer_each(self.engine, [p.request for _, _, p in asked]))
        for slot in slots:
            self.emit(slot if isinstance(slot, dict) else self._record(*slot, next(answers)))

    def _record(
        self, frame: FramePlan, image: Any, prepared: Prepared, answer: Answer | Exception
    ) -> dict[str, Any]:
        if isinstance(answer, Exception):
            kind = "InvalidRequest" if isinstance(answer, InvalidRequest) else "InternalError"
            return self._error(frame, str(answer), kind)
        turn_id = None
        if self.log is not None:
            turn = NewTurn.from_answer(
                0,
                prepared.request,
                answer,
                model=self.model,
                source="cli",
                question_refs=prepared.refs,
            )
            recorded = log_frame_turn(self.log, turn, self.reader, frame, image)
            turn_id = recorded.turn_id
            if self._first_session is None:
                self._first_session = recorded.session_id
        record = AnswerRecord.of(
            frame_label(self.video, frame.index),
            prepared.request,
            answer,
            model=self.model,
            turn_id=turn_id,
            video=str(self.video),
            frame=frame.index,
            t=frame.time,
        )
        self.answered += 1
        return record.to_dict()

    def _error(self, frame: FramePlan, message: str, kind: str) -> dict[str, Any]:
        self.missing += 1
        return {
            "image": frame_label(self.video, frame.index),
            "video": str(self.video),
            "frame": frame.index,
            "t": frame.time,
            "question": self.question,
            "error": message,
            "error_type": kind,
        }


def ask_over_time(
    reader: VideoReader,
    video: Path,
    question: str,
    prompts: Sequence[ov.Prompt],
    when: When,
    kw: dict[str, Any],
) -> None:
    """The `ask` command over time: plan (and track) before the model loads, then ask, print
    each frame's record as it is answered, and exit 3 when frames were left unanswered."""
    from app.cmd_ask import EXIT_PARTIAL

    try:
        planned = plan(reader, prompts, when)
    except WhenError as exc:
        raise click.UsageError(str(exc)) from None
    lost = next((f for f in planned.frames if f.lost), None)
    if lost is not None:  # said before the wait, and again on each frame concerned
        click.echo(f"{lost.lost}", err=True)
    settings = settings_from(kw, seed=kw["seed"] if kw["temperature"] > 0 else None)
    engine, model_name = engine_from_options(kw, max_batch_size=kw["batch_size"])
    log = None if kw["no_log"] else QALog.open(kw["db"] or default_db_path())
    show = json_line if kw["as_json"] else text_line
    try:
        run = OverTime(
            engine,
            model_name,
            log,
            reader,
            video,
            question,
            settings,
            kw["template"],
            kw["batch_size"],
            lambda record: click.echo(show(record)),
        )
        run.run(planned)
    finally:
        if log is not None:
            log.close()
        engine.close()
    click.echo(
        f"{video}: {run.answered} frame(s) answered, {run.missing} without an answer", err=True
    )
    if run.missing:
        sys.exit(EXIT_PARTIAL)


def json_line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False)


def text_line(record: dict[str, Any]) -> str:
    """A record as one line of text: the time, the frame, and the answer or what went wrong."""
    head = f"{record['t']:8.2f} s  frame {record['frame']:>6}  "
    if "error" in record:
        return head + f"[no answer: {record['error']}]"
    return head + " ".join(str(record["answer"]).split())


def _chunks(items: Sequence[FramePlan], size: int) -> Iterator[Sequence[FramePlan]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


__all__ = ["OverTime", "ask_over_time", "json_line", "text_line"]
