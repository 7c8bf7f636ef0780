"""`vipstudio eval` on a generated ViP-Bench folder and on a real export, with the tiny model.

The ViP-Bench data cannot be shipped: :func:`make_vip_bench` writes a small set in the same
layout (meta-data keyed ``v1_<id>``, ``bbox``/``human`` splits, ``source_image`` with labelme
files). The judge is our own server with the tiny model: its grades are gibberish, so the tests
check that whatever it returns is parsed or recorded as unparsed, never a crash.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

import overlays as ov
from app.cli import main
from data_gen.evaluate import EvalError, keyword_score, load_vip_bench, parse_grade, token_f1
from data_gen.evaluate.scoring import exact_match, normalize

#: (question with <obj>, answer, capabilities, the region's box) of each generated question.
QUESTIONS = [
    ("What is the number written in the sign <obj>?", "0.75<OR>3/4", ["ocr", "math"]),
    ("Which animals are in the area <obj>?", "cat<AND>dog", ["rec"]),
    ("What colour is the object <obj>?", "red", ["rec", "know"]),
]
BOXES = [(10, 8, 50, 40), (40, 20, 90, 60), (5, 30, 60, 62)]


def make_vip_bench(root: Path) -> Path:
    """A three-question ViP-Bench in the benchmark's layout."""
    meta = {}
    (root / "source_image").mkdir(parents=True)
    lines: dict[str, list[str]] = {"bbox": [], "human": []}
    for split in lines:
        (root / split / "images").mkdir(parents=True)
    for qid, ((question, answer, caps), box) in enumerate(zip(QUESTIONS, BOXES, strict=True)):
        plain = Image.new("RGB", (96, 72), (40 * qid, 120, 200))
        plain.save(root / "source_image" / f"v1_{qid}.png")
        x1, y1, x2, y2 = box
        shape = {"label": "obj", "shape_type": "rectangle", "points": [[x1, y1], [x2, y2]]}
        if qid == 2:
            shape = {
                "label": "obj",
                "shape_type": "polygon",
                "points": [[x1, y1], [x2, y1], [x2, y2], [x1, y2 - 5]],
            }
        labelme = {
            "shapes": [shape],
            "imagePath": f"v1_{qid}.png",
            "imageWidth": 96,
            "imageHeight": 72,
        }
        (root / "source_image" / f"v1_{qid}.json").write_text(json.dumps(labelme))
        meta[f"v1_{qid}"] = {
            "image_source": f"v1_{qid}.png",
            "image": f"v1_{qid}_0.png",
            "question": question,
            "answer": answer,
            "capability": caps,
        }
        for split, color in (("bbox", "yellow"), ("human", "red")):
            drawn = ov.render(plain, [ov.Rectangle(box, style=ov.Style(color=color))])
            drawn.save(root / split / "images" / f"v1_{qid}_0.png")
            text = question.replace("<obj>", f"within the {color} rectangle")
            record = {
                "question_id": qid,
                "image": f"v1_{qid}_0.png",
                "text": text,
                "category": "rec",
            }
            lines[split].append(json.dumps(record))
    (root / "vip-bench-meta-data.json").write_text(json.dumps(meta))
    for split, rows in lines.items():
        (root / split / "questions.jsonl").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    return make_vip_bench(tmp_path / "ViP-Bench")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def common(model: Path, out: Path) -> list[str]:
    return ["--model", str(model), "--out", str(out), "--max-new-tokens", "3"]


# ---------------------------------------------------------------------------------- scoring


def test_keyword_rule_follows_and_or_like_the_grading_prompt() -> None:
    assert keyword_score("x = -1 or x = -5", "-1<AND>-5") == 1.0
    assert keyword_score("x = -1", "-1<AND>-5") == 0.5  # the prompt's own example: 0.5
    assert keyword_score("x = -15", "-1<AND>-5") == 0.0  # whole words: -1 is not in -15
    assert keyword_score("It is 3/4.", "0.75<OR>x=0.75<OR>3/4") == 1.0
    assert keyword_score("A Cat and a DOG", "cat<AND>dog") == 1.0
    assert keyword_score("a category", "cat") == 0.0
    assert keyword_score("anything", "") == 0.0


def test_exact_match_and_token_f1() -> None:
    assert exact_match("The cup.", "the cup") == 1.0
    assert exact_match("a cup of tea", "the cup") == 0.0
    assert token_f1("a cup of coffee", "the cup of tea") == pytest.approx(2 / 3)
    assert token_f1("", "") == 1.0 and token_f1("cup", "") == 0.0


def test_the_grading_prompt_is_the_benchmarks_and_can_be_trimmed() -> None:
    from data_gen.evaluate.judge import EXAMPLES, GRADING_PROMPT, grading_prompt, grading_text

    assert grading_prompt() == GRADING_PROMPT and len(EXAMPLES) == 7
    text = grading_text("What is x?", "-1<AND>-5", "x = 3")
    assert text == GRADING_PROMPT + "\nWhat is x? | -1 <AND> -5 | x = 3 | "
    short = grading_prompt(5)
    assert "meme" not in short and short.endswith("x = -1 or x = -5 | 1.0\n")


def test_grades_parse_as_the_evaluator_reads_them() -> None:
    assert parse_grade("0.7") == 0.7
    assert parse_grade(" 1.0 because") == 1.0
    assert parse_grade("1.5") is None and parse_grade("nan") is None
    assert parse_grade("") is None and parse_grade("zero") is None


def test_the_layout_is_read_with_answers_capabilities_and_regions(bench: Path) -> None:
    items = load_vip_bench(bench)
    assert [i.id for i in items] == [f"{s}/v1_{q}" for s in ("bbox", "human") for q in range(3)]
    first = items[0]
    assert first.capabilities == ("ocr", "math") and first.answer == "0.75<OR>3/4"
    assert first.question == "What is the number written in the sign within the yellow rectangle?"
    assert first.drawn and first.sweepable
    assert first.sweep_question == "What is the number written in the sign <region0>?"
    assert items[2].regions[0].polygons is not None  # the labelme polygon kept


def test_the_sweep_asks_each_benchmark_question_once_across_splits(bench: Path) -> None:
    from data_gen.evaluate import queries

    asked = [q for q, _ in queries(load_vip_bench(bench), ["color"])]
    swept = [q for q in asked if q.axis]
    assert len(asked) == 6 + len(swept) and len(swept) == 3 * 5  # base + 4 other colours
    assert {q.item.split for q in swept} == {"bbox"}


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: (b / "vip-bench-meta-data.json").unlink(), "vip-bench-meta-data.json: not"),
        (lambda b: (b / "bbox" / "questions.jsonl").write_text("{oops\n"), "line 1: not valid"),
        (
            lambda b: (b / "human" / "questions.jsonl").write_text(
                '{"question_id": 99, "image": "x.png", "text": "?"}\n'
            ),
            "no answer for v1_99",
        ),
    ],
)
def test_a_damaged_benchmark_is_one_clear_line(
    bench: Path, tmp_path: Path, damage: object, message: str
) -> None:
    damage(bench)  # type: ignore[operator]
    code, _, err = run(
        "eval", "--bench", "vip-bench", str(bench), "--model", "x", "--out", str(tmp_path / "o")
    )
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1


def test_the_command_line_is_checked(bench: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "o")
    code, _, err = run("eval", "--bench", "vip-bench", str(bench), "--out", out)
    assert code == 2 and "--model or --server" in err
    code, _, err = run("eval", "--model", "m", "--out", out)
    assert code == 2 and "--bench vip-bench DIR or --export DIR" in err
    code, _, err = run(
        "eval", "--bench", "vip-bench", str(bench), "--model", "m", "--out", out, "--sweep", "hue"
    )
    assert code == 2 and "unknown sweep axis 'hue'" in err


def test_an_unusable_out_or_judge_is_one_clear_line(
    bench: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("notes")
    code, _, err = run("eval", "--bench", "vip-bench", str(bench), *common(tiny_model_dir, taken))
    assert code == 2 and "is a file" in err
    inside = taken / "run"
    code, _, err = run("eval", "--bench", "vip-bench", str(bench), *common(tiny_model_dir, inside))
    assert code == 1 and "cannot write the evaluation there" in err
    assert len(err.strip().splitlines()) == 1 and taken.read_text() == "notes"
    code, _, err = run(
        "eval",
        "--bench",
        "vip-bench",
        str(bench),
        *common(tiny_model_dir, tmp_path / "o"),
        "--judge",
        "http://127.0.0.1:9",
        "--judge-model",
        "m",
    )
    assert code == 1 and "cannot be reached" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------- runs


def test_vip_bench_scored_per_capability_and_split_then_resumed(
    bench: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    code, stdout, err = run(
        "eval", "--bench", "vip-bench", str(bench), *common(tiny_model_dir, out)
    )
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["metric"] == "keyword" and report["approximate"] is True
    scores = report["scores"]
    assert set(scores) == {"rec", "ocr", "math", "know", "split:bbox", "split:human", "total"}
    model = str(tiny_model_dir)
    assert scores["rec"][model]["n"] == 4 and scores["total"][model]["n"] == 6
    assert all(0 <= s[model]["score"] <= 100 for s in scores.values())
    assert "keyword rule (approximate)" in stdout and "human (split)" in stdout
    with Image.open(out / "report.png") as png:
        assert png.format == "PNG" and png.width > 0
    answers = out / next(p.name for p in out.glob("answers-*.jsonl"))
    before = answers.read_bytes()
    assert len(before.splitlines()) == 6
    code, _, err = run("eval", "--bench", "vip-bench", str(bench), *common(tiny_model_dir, out))
    assert code == 0 and "0 answered" in err and "6 already done" in err
    assert answers.read_bytes() == before
    # A run killed half way: only what is missing is asked again.
    answers.write_bytes(b"".join(before.splitlines(keepends=True)[:4]))
    code, _, err = run("eval", "--bench", "vip-bench", str(bench), *common(tiny_model_dir, out))
    assert code == 0 and "2 answered" in err and "4 already done" in err
    assert json.loads((out / "report.json").read_text())["scores"]["total"][model]["n"] == 6


def test_an_unanswerable_item_scores_zero_and_exits_3(
    bench: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    (bench / "bbox" / "images" / "v1_1_0.png").unlink()
    out = tmp_path / "partial"
    args = ["--split", "bbox", "--limit", "2", *common(tiny_model_dir, out)]
    code, stdout, err = run("eval", "--bench", "vip-bench", str(bench), *args, "--json")
    assert code == 3 and "1 error(s)" in err
    report = json.loads(stdout)
    assert report == json.loads((out / "report.json").read_text())
    assert report["errors"] == {str(tiny_model_dir): 1}
    (failed,) = [i for i in report["items"] if "error" in i]
    assert failed["item"] == "bbox/v1_1" and failed["answer"] is None and failed["scores"] == {}
    assert report["scores"]["total"][str(tiny_model_dir)]["n"] == 2


def test_the_sweep_redraws_the_region_and_reports_the_movement(
    bench: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sweep"
    code, stdout, err = run(
        "eval",
        "--bench",
        "vip-bench",
        str(bench),
        "--split",
        "bbox",
        "--limit",
        "1",
        "--sweep",
        "color,width,shape",
        *common(tiny_model_dir, out),
    )
    assert code == 0, err
    lines = [json.loads(x) for x in (out / "queries.jsonl").read_text().splitlines()]
    arrow = next(x for x in lines if x["id"] == "bbox/v1_0#shape=arrow")
    assert (
        arrow["question"] == "What is the number written in the sign pointed to by the red arrow?"
    )
    assert (
        arrow["image"].endswith("source_image/v1_0.png") and arrow["prompts"][0]["kind"] == "arrow"
    )
    blue = next(x for x in lines if x["id"] == "bbox/v1_0#color=blue")
    assert blue["question"] == "What is the number written in the sign within the blue rectangle?"
    sweep = json.loads((out / "report.json").read_text())["sweep"][str(tiny_model_dir)]
    assert set(sweep) == {"base", "color", "width", "shape"}
    assert set(sweep["width"]) == {"1", "6", "12"} and sweep["color"]["blue"]["n"] == 1
    cell = sweep["shape"]["ellipse"]
    assert 0 <= cell["changed"] <= 100 and -100 <= cell["delta"] <= 100
    assert "fragility sweep" in stdout and "changed %" in stdout


def test_two_models_side_by_side(bench: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    from vip_model.tiny import make_tiny_model

    other = make_tiny_model(tmp_path / "other", "tiny", seed=1).path
    out = tmp_path / "ab"
    code, stdout, err = run(
        "eval",
        "--bench",
        "vip-bench",
        str(bench),
        "--split",
        "human",
        "--limit",
        "2",
        "--model",
        str(other),
        *common(tiny_model_dir, out),
    )
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["models"] == [str(other), str(tiny_model_dir)]
    assert len(list(out.glob("answers-*.jsonl"))) == 2
    items = {(r["model"], r["item"]): normalize(r["answer"]) for r in report["items"]}
    differ = {d["id"] for d in report["differences"]}
    for item in ("human/v1_0", "human/v1_1"):
        differs = items[(str(other), item)] != items[(str(tiny_model_dir), item)]
        assert differs == (item in differ)
    assert f"{len(differ)} item(s) answered differently" in stdout


@pytest.fixture
def judge_url(tiny_model_dir: Path) -> Iterator[str]:
    from vip_model.hf import HFEngine
    from vip_model.server import ServerConfig, ServerThread, create_app

    config = ServerConfig(model_name="judge", token="tok")
    with HFEngine(str(tiny_model_dir)) as engine, ServerThread(create_app(engine, config)) as url:
        yield url


def test_our_server_answers_and_judges_and_unparsable_grades_are_recorded(
    bench: Path, tiny_model_dir: Path, tmp_path: Path, judge_url: str
) -> None:
    out = tmp_path / "judged"
    args = [
        "eval",
        "--bench",
        "vip-bench",
        str(bench),
        "--split",
        "bbox",
        "--limit",
        "1",
        "--server",
        judge_url,
        "--token",
        "tok",
        "--out",
        str(out),
        "--max-new-tokens",
        "3",
        "--judge",
        judge_url,
        "--judge-token",
        "tok",
    ]
    code, _, err = run(*args[:-1], "wrong")  # checked before any answer is generated
    assert code == 1 and "refused the key (HTTP 401)" in err and not out.exists()
    code, _, err = run(*args)  # text only: our server needs an image
    assert code == 1 and "refused the request (HTTP 4" in err and "image" in err
    assert len(err.strip().splitlines()) == 1
    code, stdout, err = run(*args, "--judge-image")  # the whole prompt: over the tiny context
    assert code == 1 and "exceeds the model's 1024" in err
    args += ["--judge-image", "--judge-examples", "5"]
    code, stdout, err = run(*args)
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["metric"] == "judge" and "score: judge" in stdout
    for item in report["items"]:
        judged = item["judge"]
        assert isinstance(judged["raw"], str) and 1 <= judged["tries"] <= 5
        assert 0.0 <= item["scores"]["judge"] <= 1.0
        assert judged["parsed"] == (parse_grade(judged["raw"]) is not None)
    unparsed = sum(not i["judge"]["parsed"] for i in report["items"])
    assert report["models"] == [judge_url] and report["unparsed_grades"] == {judge_url: unparsed}
    grades = out / next(p.name for p in out.glob("grades-*.jsonl"))
    before = grades.read_bytes()
    code, _, err = run(*args)  # graded answers are not graded again
    assert code == 0 and grades.read_bytes() == before


def _log_two_turns(db: Path) -> None:
    from data_gen.qalog.log import NewTurn, QALog

    samples = Path(__file__).resolve().parents[2] / "assets" / "samples"
    with QALog.open(db) as log:
        for name, box, answer in (
            ("coffee", (180, 20, 420, 230), "A cup of coffee."),
            ("chelsea", (100, 50, 700, 350), "A cat."),
        ):
            image = log.add_image(samples / f"{name}.jpg")
            session = log.start_session(image.id, source="gui")
            prompts = [ov.Rectangle(box, label="thing")]
            question, refs = ov.compose_question("What is <region0>?", prompts)
            turn = NewTurn(
                session_id=session,
                prompts=prompts,
                question=question,
                question_refs=refs,
                answer=answer,
                model="m",
                template="llava_v1",
            )
            log.add_turn(turn)


def test_an_hf_export_is_read_with_its_drawn_images(tmp_path: Path) -> None:
    from data_gen.base import ExportOptions
    from data_gen.evaluate import load_export
    from data_gen.export import export
    from data_gen.qalog.log import QALog

    _log_two_turns(tmp_path / "log.sqlite")
    with QALog.open(tmp_path / "log.sqlite") as log:
        export(log, ExportOptions("hf", tmp_path / "hf", val_fraction=0.5, workers=1))
    (item,) = load_export(tmp_path / "hf", tmp_path / "cache")
    assert item.split == "validation" and item.drawn and not item.sweepable
    assert item.question == "What is the thing within the red rectangle?"
    assert item.answer in ("A cup of coffee.", "A cat.")
    assert item.image.parent == tmp_path / "cache"  # the rendered image, written out once
    with Image.open(item.image) as image:
        assert image.width > 0
    with QALog.open(tmp_path / "log.sqlite") as log:
        export(log, ExportOptions("hf", tmp_path / "hf0", workers=1))
    with pytest.raises(EvalError, match="no validation split"):
        load_export(tmp_path / "hf0", tmp_path / "cache")


def test_an_export_validation_split_is_scored_and_swept(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from data_gen.base import ExportOptions
    from data_gen.export import export
    from data_gen.qalog.log import QALog

    _log_two_turns(tmp_path / "log.sqlite")
    with QALog.open(tmp_path / "log.sqlite") as log:
        export(log, ExportOptions("vip-llava", tmp_path / "vip", val_fraction=0.5, workers=1))
    out = tmp_path / "val"
    code, _, err = run(
        "eval",
        "--export",
        str(tmp_path / "vip"),
        "--sweep",
        "color",
        *common(tiny_model_dir, out),
    )
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["metric"] == "f1" and report["scores"]["total"][str(tiny_model_dir)]["n"] == 1
    (base,) = [i for i in report["items"] if "sweep" not in i]
    assert base["reference"] in ("A cup of coffee.", "A cat.")
    assert set(base["scores"]) == {"f1", "exact"}
    assert base["question"] == "What is the thing within the red rectangle?"
    assert set(json.loads((out / "report.json").read_text())["sweep"][str(tiny_model_dir)]) == {
        "base",
        "color",
    }
