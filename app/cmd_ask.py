"""`vipstudio ask`: region questions from the command line — one, a chat, or a whole file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

import overlays as ov
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
from vip_model.engine import Answer, Engine, GenerationSettings
from vip_model.errors import ModelError
from vip_model.prepare import AnswerRecord, Prepared, prepare_request
from vip_model.templates import Turn

#: Exit code of a batch that finished but wrote error records for some lines.
EXIT_PARTIAL = 3


@click.command()
@click.argument("image", type=click.Path(path_type=Path), required=False)
@click.argument("question", required=False)
@prompt_options
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
    help="Queries generated together (left-padded batches) with --batch.",
)
@ray_options
def ask(image: Path | None, question: str | None, **kw: Any) -> None:
    """Ask ViP-LLaVA about marked regions of IMAGE.

    \b
    One question (the answer streams; the turn is logged):
      vipstudio ask photo.jpg "What is in the red rectangle?" --bbox 180,20,420,230 --model ./tiny
    A chat on the same image and prompts (no QUESTION; a question per line, empty line ends):
      vipstudio ask photo.jpg --bbox 180,20,420,230 --server http://127.0.0.1:8000
    A file of queries, resumable (a rerun skips answered ids):
      vipstudio ask --batch queries.jsonl --out answers.jsonl --model ./tiny --batch-size 8
    The same on a Ray cluster, one engine per actor, answers as shards in a folder:
      vipstudio ask --batch q.jsonl --out answers/ --ray --actors 4 --gpus-per-actor 1
    In questions, <region0> (or <bbox0>) becomes the referring phrase of the first prompt.
    Exit codes: 0 done, 1 failed, 2 bad command line, 3 batch done with error records.
    """
    check_ray_flags(kw)
    if kw["batch_file"] is not None:
        if image is not None or question is not None:
            raise click.UsageError("--batch takes no IMAGE or QUESTION")
        if kw["out"] is None:
            raise click.UsageError("--batch needs --out FILE for the answers")
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
    with reported(ModelError, LogError):
        img = ov.load_image(image, max_pixels=kw["max_pixels"])
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
        settings = settings_from(kw, seed=kw["seed"] if kw["temperature"] > 0 else None)
        engine, model_name = engine_from_options(kw)
        log = None if kw["no_log"] else QALog.open(kw["db"] or default_db_path())
        try:
            session = _Session(
                engine, model_name, log, image, img, prompts, settings, kw["template"]
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
        if as_json:
            record = AnswerRecord.of(
                str(self.path), request, answer, model=self.model, turn_id=turn_id
            )
            click.echo(json.dumps(record.to_dict(), ensure_ascii=False))
        else:
            click.echo()
            t = answer.timings
            click.echo(
                f"[{answer.completion_tokens} tokens, first after {t.ttft_s:.2f} s, "
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
        image = None if self.session_id else ImageFile.read(self.path, size=self.image.size)
        recorded = self.log.record_turn(turn, session_id=self.session_id, image=image)
        self.session_id = recorded.session_id
        return recorded.turn_id


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
