"""`vipstudio ask`: region questions from the command line — one, a chat, or a whole file."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

import overlays as ov
from app.ask_video import (
    TRACKERS,
    FramePlan,
    When,
    WhenError,
    frame_label,
    log_frame_turn,
    start_frame,
)
from app.batch_ray_cli import check_ray_flags, ray_options, run_ray_batch
from app.cli import CliError, reported
from app.cmd_log import db_option
from app.cmd_render import build_prompts, prompt_options
from app.model_options import (
    engine_from_options,
    generation_options,
    load_options,
    settings_from,
)
from data_gen.qalog.log import ImageFile, LogError, NewTurn, QALog, default_db_path
from overlays.video_io import VideoReader, is_video_path
from vip_model.engine import Answer, Engine, GenerationSettings
from vip_model.errors import ModelError
from vip_model.prepare import AnswerRecord, Prepared, prepare_request
from vip_model.templates import Turn

#: Exit code of a run that finished but wrote error records: a batch's bad lines, or the frames
#: after a lost track (asking over time).
EXIT_PARTIAL = 3
VIDEO_FLAGS = ("at", "frame", "track", "every", "until")


def video_options(fn: Any) -> Any:
    """``--at``/``--frame``/``--track``/``--every``/``--until``/``--tracker`` (videos only)."""
    options = [
        click.option(
            "--at", type=float, default=None, metavar="SECONDS", help="Video: ask at this time."
        ),
        click.option(
            "--frame",
            type=click.IntRange(min=0),
            default=None,
            metavar="N",
            help="Video: ask at this frame index (instead of --at).",
        ),
        click.option(
            "--every",
            type=float,
            default=None,
            metavar="SECONDS",
            help="Video: ask again every SECONDS from --at, to --until or the end.",
        ),
        click.option(
            "--until", type=float, default=None, metavar="SECONDS", help="Video: end of --every."
        ),
        click.option(
            "--track",
            is_flag=True,
            help="Video: follow the regions from --at with a tracker (with --every).",
        ),
        click.option(
            "--tracker",
            type=click.Choice(TRACKERS),
            default="auto",
            show_default=True,
            help="Video: the OpenCV tracker of --track.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.command()
@click.argument("image", type=click.Path(path_type=Path), required=False)
@click.argument("question", required=False)
@prompt_options
@video_options
@load_options
@generation_options
@click.option(
    "--server", default=None, metavar="URL", help="Ask our model server instead of loading a model."
)
@click.option(
    "--token", envvar="VIPSTUDIO_TOKEN", default=None, help="Server token ($VIPSTUDIO_TOKEN)."
)
@db_option
@click.option("--no-log", is_flag=True, help="Do not record the turn(s) in the log.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object instead of streaming text."
)
@click.option(
    "--batch",
    "batch_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A JSONL file of queries {id, image, question, prompts|bboxes}; answers go to --out.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="JSONL answers of --batch (with --ray: a folder of shards).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Queries (or video frames, with --every) generated together, in left-padded batches.",
)
@ray_options
def ask(image: Path | None, question: str | None, **kw: Any) -> None:
    """Ask ViP-LLaVA about marked regions of IMAGE (a photo, or a video's frame).

    \b
    One question (the answer streams; the turn is logged):
      vipstudio ask photo.jpg "What is in the red rectangle?" --bbox 180,20,420,230 --model ./tiny
    A chat on the same image and prompts (no QUESTION; a question per line, empty line ends):
      vipstudio ask photo.jpg --bbox 180,20,420,230 --server http://127.0.0.1:8000
    A video at one moment (--at SECONDS or --frame N):
      vipstudio ask clip.mp4 "What is <region0> doing?" --bbox 40,30,200,220 --at 12.5
    Over time: follow the region from --at, ask every 0.5 s until 20 s (one answer per frame):
      vipstudio ask clip.mp4 "What is <region0> doing?" --bbox 40,30,200,220 --at 12.5 \\
        --track --every 0.5 --until 20 --json
    A file of queries, resumable (a rerun skips answered ids):
      vipstudio ask --batch queries.jsonl --out answers.jsonl --model ./tiny --batch-size 8
    The same on a Ray cluster, one engine per actor, answers as shards in a folder:
      vipstudio ask --batch q.jsonl --out answers/ --ray --actors 4 --gpus-per-actor 1
    In questions, <region0> (or <bbox0>) becomes the referring phrase of the first prompt.
    Exit codes: 0 done, 1 failed, 2 bad command line, 3 done with error records (a batch's
    bad lines, or video frames left unanswered: a lost track says so on each such frame).
    """
    check_ray_flags(kw)
    if kw["batch_file"] is not None:
        if image is not None or question is not None:
            raise click.UsageError("--batch takes no IMAGE or QUESTION")
        if kw["out"] is None:
            raise click.UsageError("--batch needs --out FILE for the answers")
        given = [f"--{name}" for name in VIDEO_FLAGS if kw[name] not in (None, False)]
        if given:
            raise click.UsageError(
                f"{', '.join(given)} are for one video; in a --batch file each line says where "
                'to ask ("t", "every", "until", "track")'
            )
        if kw["use_ray"]:
            run_ray_batch(kw, EXIT_PARTIAL)
        else:
            _run_batch(kw)
        return
    if kw["use_ray"]:
        raise click.UsageError("--ray works with --batch FILE only")
    if image is None:
        raise click.UsageError("give IMAGE (and a QUESTION, or none for a chat), or --batch FILE")
    if question is not None and not question.strip():
        raise click.UsageError("the question is empty: ask something, or leave it out for a chat")
    when = _when(image, question, kw)
    with reported(ModelError, LogError), ExitStack() as stack:
        frame: tuple[VideoReader, FramePlan] | None = None
        if when is None:
            img = ov.load_image(image, max_pixels=kw["max_pixels"])
        else:
            reader = stack.enter_context(VideoReader(image, max_pixels=kw["max_pixels"]))
            first = _first_frame(reader, when)
            img = reader.frame(first.index)
            frame = (reader, first)
        prompts = build_prompts(
            img.size,
            kw["bboxes"],
            kw["shape"],
            kw["polygons"],
            kw["arrows"],
            kw["points"],
            kw["colors"],
            kw["alpha"],
            kw["width"],
            kw["seed"],
            kw["prompts_file"],
            kw["labels"],
        )
        if when is not None and when.every is not None:
            from app.ask_over_time import ask_over_time

            assert frame is not None and question is not None
            ask_over_time(frame[0], image, question, prompts, when, kw)
            return
        settings = settings_from(kw, seed=kw["seed"] if kw["temperature"] > 0 else None)
        engine, model_name = engine_from_options(kw)
        log = None if kw["no_log"] else QALog.open(kw["db"] or default_db_path())
        try:
            session = _Session(
                engine, model_name, log, image, img, prompts, settings, kw["template"], frame
            )
            if question is not None:
                session.turn(question, as_json=kw["as_json"])
            else:
                session.chat(as_json=kw["as_json"])
        finally:
            if log is not None:
                log.close()
            engine.close()


class _Session:
    """One image, its prompts, and the conversation so far."""

    def __init__(
        self,
        engine: Engine,
        model: str,
        log: QALog | None,
        path: Path,
        image: Any,
        prompts: list[ov.Prompt],
        settings: GenerationSettings,
        template: str,
        frame: tuple[VideoReader, FramePlan] | None = None,
    ) -> None:
        self.engine = engine
        self.model = model
        self.log = log
        self.path = path
        self.image = image
        self.prompts = prompts
        self.settings = settings
        self.template = template
        self.history: tuple[Turn, ...] = ()
        self.session_id: int | None = None
        self.frame = frame  # a video's frame: the reader, and which frame

    def turn(self, text: str, as_json: bool) -> None:
        prepared = prepare_request(
            self.image,
            text,
            self.prompts,
            history=self.history,
            settings=self.settings,
            template=self.template,
        )
        request = prepared.request
        streamed = self.engine.stream(request)
        with streamed:
            for delta in streamed:
                if not as_json:
                    click.echo(delta, nl=False)
                    sys.stdout.flush()
            answer = streamed.answer
        turn_id = self._log(prepared, answer)
        if as_json and self.frame is not None:
            frame = self.frame[1]
            record = AnswerRecord.of(
                frame_label(self.path, frame.index),
                request,
                answer,
                model=self.model,
                turn_id=turn_id,
                video=str(self.path),
                frame=frame.index,
                t=frame.time,
            )
            click.echo(json.dumps(record.to_dict(), ensure_ascii=False))
        elif as_json:
            record = AnswerRecord.of(
                str(self.path), request, answer, model=self.model, turn_id=turn_id
            )
            click.echo(json.dumps(record.to_dict(), ensure_ascii=False))
        else:
            click.echo()
            t = answer.timings
            shown = self.frame[1] if self.frame is not None else None
            where = "" if shown is None else f"frame {shown.index} at {shown.time:.2f} s, "
            click.echo(
                f"[{where}{answer.completion_tokens} tokens, first after {t.ttft_s:.2f} s, "
                f"{t.tokens_per_s:.1f} tokens/s{'' if turn_id is None else f', turn {turn_id}'}]",
                err=True,
            )
        if answer.text.strip() and answer.finish_reason != "cancelled":
            self.history = (*self.history, Turn(request.question, answer.text))

    def chat(self, as_json: bool) -> None:
        interactive = sys.stdin.isatty()
        if interactive:
            for p in self.prompts:
                click.echo(f"region: {ov.referring_phrase(p)}", err=True)
            click.echo("Ask about the image; an empty line or Ctrl-D ends.", err=True)
        while True:
            if interactive:
                click.echo("> ", nl=False, err=True)
            line = sys.stdin.readline()
            if not line or not line.strip() or line.strip() in ("exit", "quit"):
                return
            self.turn(line.strip(), as_json)

    def _log(self, prepared: Prepared, answer: Answer) -> int | None:
        if self.log is None:
            return None
        turn = NewTurn.from_answer(
            0,
            prepared.request,
            answer,
            model=self.model,
            source="cli",
            question_refs=prepared.refs,
        )
        if self.frame is not None:
            reader, at = self.frame
            recorded = log_frame_turn(
                self.log, turn, reader, at, self.image, session_id=self.session_id
            )
            self.session_id = recorded.session_id
            return recorded.turn_id
        image = None if self.session_id else ImageFile.read(self.path, size=self.image.size)
        recorded = self.log.record_turn(turn, session_id=self.session_id, image=image)
        self.session_id = recorded.session_id
        return recorded.turn_id


def _when(image: Path, question: str | None, kw: dict[str, Any]) -> When | None:
    """Where in the video to ask (None for a photo); refuses video flags that do not fit."""
    given = [f"--{name}" for name in VIDEO_FLAGS if kw[name] not in (None, False)]
    if not is_video_path(image):
        if given:
            raise click.UsageError(
                f"{', '.join(given)} are for videos, and {image.name} is not one "
                "(.mp4, .mov, .mkv, .avi, .webm, .m4v)"
            )
        return None
    when = When(
        at=kw["at"],
        frame=kw["frame"],
        track=kw["track"],
        every=kw["every"],
        until=kw["until"],
        tracker=kw["tracker"],
    )
    try:
        when.check()
    except WhenError as exc:
        raise click.UsageError(str(exc)) from None
    if when.every is not None and question is None:
        raise click.UsageError("asking over time (--every) needs a QUESTION: there is no chat")
    drawn = ("bboxes", "polygons", "arrows", "points", "prompts_file")
    if when.track and not any(kw[name] for name in drawn):
        raise click.UsageError("--track needs a region to follow: give --bbox (or a prompt)")
    return when


def _first_frame(reader: VideoReader, when: When) -> FramePlan:
    index = start_frame(reader, when)
    return FramePlan(index, reader.time_of(index), ())


def _run_batch(kw: dict[str, Any]) -> None:
    from tqdm import tqdm

    from app.batch import BatchFileError, BatchRunner, OutIsAnInput, check_files, count_lines

    queries: Path = kw["batch_file"]
    out: Path = kw["out"]
    db = None if kw["no_log"] else Path(kw["db"] or default_db_path())
    try:
        check_files(queries, out, db)
    except OutIsAnInput as exc:  # a wrong command line: exit 2
        raise click.UsageError(str(exc)) from None
    except BatchFileError as exc:
        raise CliError(str(exc)) from None
    with reported(ModelError, LogError, BatchFileError):
        settings = settings_from(kw)
        engine, model_name = engine_from_options(kw, max_batch_size=kw["batch_size"])
        log = None if db is None else QALog.open(db)
        bar = tqdm(
            total=count_lines(queries), unit="q", desc="asking", file=sys.stderr, disable=None
        )
        try:
            runner = BatchRunner(
                engine,
                model_name,
                log=log,
                batch_size=kw["batch_size"],
                template=kw["template"],
                settings=settings,
                max_pixels=kw["max_pixels"],
                progress=bar.update,
            )
            summary = runner.run(queries, out)
        finally:
            bar.close()
            if log is not None:
                log.close()
            engine.close()
    click.echo(f"{out}: {summary.text()}", err=True)
    if summary.errors:
        sys.exit(EXIT_PARTIAL)


def register(main: click.Group) -> None:
    main.add_command(ask)
