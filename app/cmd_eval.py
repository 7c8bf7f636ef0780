"""`vipstudio eval`: measure models on ViP-Bench or on the validation split of our exports."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from app.cli import reported
from app.model_options import generation_options, settings_from, spec_from_options
from data_gen.errors import DataGenError
from vip_model.engine_spec import build_engine
from vip_model.errors import ModelError
from vip_model.loading import DEVICES, DTYPES

#: Exit code when some queries could not be answered (error records; scored 0).
EXIT_PARTIAL = 3


@click.command("eval")
@click.option(
    "--bench",
    type=(click.Choice(["vip-bench"]), click.Path(path_type=Path, file_okay=False)),
    default=None,
    metavar="vip-bench DIR",
    help="A benchmark folder: `--bench vip-bench DIR` (DIR holds vip-bench-meta-data.json, "
    "bbox/ and human/).",
)
@click.option(
    "--export",
    "export_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="A `vipstudio export` folder (vip-llava or hf): its validation split is scored.",
)
@click.option(
    "--split",
    "splits",
    type=click.Choice(["bbox", "human"]),
    multiple=True,
    help="ViP-Bench split(s) to ask (repeatable; default both).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder for queries, answers (resumable), grades, report.json and report.png.",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="HUB_ID|FOLDER",
    help="A model to evaluate (repeatable: two or more are compared item by item).",
)
@click.option(
    "--server",
    "servers",
    multiple=True,
    metavar="URL",
    help="Evaluate the model of our server at URL (repeatable, with or beside --model).",
)
@click.option(
    "--token", envvar="VIPSTUDIO_TOKEN", default=None, help="Server token ($VIPSTUDIO_TOKEN)."
)
@click.option(
    "--device",
    type=click.Choice(DEVICES),
    default="auto",
    show_default=True,
    help="Where the models run: auto tries cuda, then mps, then cpu.",
)
@click.option(
    "--dtype",
    type=click.Choice(DTYPES),
    default="auto",
    show_default=True,
    help="auto: float16 on GPU, float32 on CPU.",
)
@click.option("--load-4bit", is_flag=True, help="4-bit NF4 weights (bitsandbytes).")
@click.option("--load-8bit", is_flag=True, help="8-bit weights (bitsandbytes).")
@generation_options
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Queries generated together.",
)
@click.option(
    "--judge",
    default=None,
    metavar="URL",
    help="Grade with an OpenAI-compatible model at URL using ViP-Bench's GPT grading prompt "
    "(0.0-1.0); without it, scores are offline (ViP-Bench: the approximate keyword rule; "
    "exports: token F1 and exact match).",
)
@click.option("--judge-model", default=None, help="The judge's model id (default: its first).")
@click.option(
    "--judge-token",
    envvar="VIPSTUDIO_JUDGE_TOKEN",
    default=None,
    help="The judge's API key ($VIPSTUDIO_JUDGE_TOKEN).",
)
@click.option(
    "--judge-image",
    is_flag=True,
    help="Send the question's image to the judge too (a multimodal judge, e.g. our server).",
)
@click.option(
    "--judge-examples",
    type=click.IntRange(min=0),
    default=None,
    help="Keep only the first N of the grading prompt's 7 worked examples (a judge with a short "
    "context; default: the benchmark's prompt as is).",
)
@click.option(
    "--sweep",
    default=None,
    metavar="AXES",
    help="Fragility sweep: redraw each prompt along these axes (color,width,shape) and report "
    "how answers and scores move.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="Ask only the first N items."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of tables.")
def eval_(**kw: Any) -> None:
    """Measure models on region questions: ViP-Bench, or the validation split of an export.

    \b
    ViP-Bench, offline score (keyword rule; approximate):
      vipstudio eval --bench vip-bench ./ViP-Bench --model ./my-vip-llava --out runs/vb
    Graded by a judge (ViP-Bench's GPT prompt), two models compared:
      vipstudio eval --bench vip-bench ./ViP-Bench --model A --model B --out runs/ab \\
        --judge http://127.0.0.1:9000/v1 --judge-model gpt-4o
    Our export's validation split, with a fragility sweep:
      vipstudio eval --export ./dataset --model ./tiny --out runs/val --sweep color,width,shape
    A rerun with the same --out resumes: answers already given are not asked again.
    Exit codes: 0 done, 1 failed, 2 bad command line, 3 done but some queries failed.
    """
    from data_gen.evaluate import load_export, load_vip_bench, parse_axes, plot
    from data_gen.evaluate.sweep import SweepError

    if (kw["bench"] is None) == (kw["export_dir"] is None):
        raise click.UsageError("give --bench vip-bench DIR or --export DIR (one of them)")
    if not kw["models"] and not kw["servers"]:
        raise click.UsageError("give at least one --model or --server to evaluate")
    if kw["splits"] and kw["bench"] is None:
        raise click.UsageError("--split applies to --bench vip-bench")
    try:
        axes = parse_axes(kw["sweep"]) if kw["sweep"] else ()
    except SweepError as exc:
        raise click.BadParameter(str(exc), param_hint="--sweep") from None
    out: Path = kw["out"]
    with reported(DataGenError, ModelError):
        if kw["bench"] is not None:
            source = "vip-bench"
            items = load_vip_bench(kw["bench"][1], kw["splits"] or ("bbox", "human"))
        else:
            source = "export"
            items = load_export(kw["export_dir"], out / "images")
        if kw["limit"]:
            items = items[: kw["limit"]]
        report, summaries = _run(kw, source, items, axes, out)
        report.write_json(out / "report.json")
        plot(report, out / "report.png")
    if kw["as_json"]:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
    else:
        click.echo(report.text())
    for name, summary in summaries.items():
        click.echo(f"{name}: {summary.text()}", err=True)
    click.echo(f"report: {out / 'report.json'}, {out / 'report.png'}", err=True)
    if any(s.errors for s in summaries.values()):
        sys.exit(EXIT_PARTIAL)


def _run(kw: dict[str, Any], source: str, items: Any, axes: Any, out: Path) -> Any:
    from tqdm import tqdm

    from app.batch import BatchFileError
    from app.evaluate import ModelRun, evaluate
    from data_gen.evaluate import Judge, JudgeError

    def local(name: str) -> ModelRun:
        spec = spec_from_options({**kw, "model": name, "server": None}, kw["batch_size"])
        return ModelRun(name, lambda: build_engine(spec))

    def remote(url: str) -> ModelRun:
        spec = spec_from_options({**kw, "model": None, "server": url}, kw["batch_size"])
        return ModelRun(url, lambda: build_engine(spec))

    models = [local(m) for m in kw["models"]] + [remote(u) for u in kw["servers"]]
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise click.UsageError("a model is given twice: each --model/--server once")
    with reported(JudgeError, BatchFileError, ModelError):
        judge = None
        if kw["judge"]:
            judge = Judge(
                kw["judge"],
                kw["judge_model"],
                token=kw["judge_token"],
                image=kw["judge_image"],
                examples=kw["judge_examples"],
            )
        bar = tqdm(unit="q", desc="evaluating", file=sys.stderr, disable=None)
        try:
            return evaluate(
                source,
                items,
                models,
                out,
                axes=axes,
                judge=judge,
                batch_size=kw["batch_size"],
                template=kw["template"],
                settings=settings_from(kw),
                progress=bar.update,
            )
        finally:
            bar.close()
            if judge is not None:
                judge.close()


def register(main: click.Group) -> None:
    main.add_command(eval_)
