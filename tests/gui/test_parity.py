"""Parity of the four front doors (issue 10 §3): the same image, prompts, question and seed go
through `vipstudio ask`, `vipstudio ask --batch` (both console scripts), the desktop app (a
real window offscreen) and the model server (real uvicorn on 127.0.0.1, asked by
`vipstudio ask --server`), all with the tiny model. Every door must send the model the same
input (pixels and token ids), log the same row and export the same record.

The model input is read back from each door's log row through the engine's own public
preparation (``HFEngine.pixel_values``/``input_ids``, what ``generate`` consumes), and tied to
what the model read at the time by the ``prompt_tokens`` each door recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from gui_helpers import adopt, drag, open_and_wait
from PySide6.QtCore import Qt

import overlays as ov
from app.gui.settings import Generation
from data_gen.base import ExportOptions
from data_gen.export import export
from data_gen.qalog.log import QALog, TurnRow
from vip_model.engine import GenerationSettings, Request
from vip_model.server import ServerConfig, ServerThread, create_app

VIPSTUDIO = str(Path(sys.executable).parent / "vipstudio")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
QUESTION = "What is <region0>?"
PHRASE = "the object within the red rectangle"
TOKENS = 6
#: What may differ between doors: how fast, what was cached, the model's name, the row id.
PER_DOOR = {"timings", "cached_tokens", "model", "turn_id"}


def _run(*args: str) -> str:
    done = subprocess.run(
        [VIPSTUDIO, *args], capture_output=True, text=True, env=ENV, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _only_turn(db: Path) -> TurnRow:
    with QALog.open(db, mode="ro") as log:
        (row,) = log.turns()
    return row


def _model_input(engine: Any, row: TurnRow) -> tuple[torch.Tensor, list[int]]:
    request = Request(
        image=ov.load_image(row.image_path),
        question=row.question,
        prompts=tuple(row.prompts),
        settings=GenerationSettings.from_dict(row.settings),
        template=row.template,
    )
    return engine.pixel_values(request), engine.input_ids(request)


def _exported(db: Path, out: Path) -> list[Any]:
    with QALog.open(db, mode="ro") as log:
        export(log, ExportOptions(format="llava-rendered", out=out, workers=1))
    records = []
    for path in sorted(out.rglob("*.json*")):
        if path.name == "summary.json":
            continue
        text = path.read_text()
        records += (
            [json.loads(x) for x in text.splitlines()]
            if path.suffix == ".jsonl"
            else [*json.loads(text)]
        )
    for record in records:  # the rendered image by content: each export has its own folder
        record["image"] = (out / record["image"]).read_bytes()
    return records


def _logged(row: TurnRow) -> tuple[Any, ...]:
    return (
        row.question,
        ov.dumps(row.prompts),
        row.question_refs,
        row.answer,
        row.template,
        row.settings,
        row.prompt_tokens,
        row.answer_tokens,
        row.finish_reason,
        row.image_sha256,
    )


@pytest.mark.slow
def test_ask_batch_desktop_app_and_server_agree(
    qtbot: Any,
    window: Any,
    samples: Path,
    tiny_engine: Any,
    tiny_model_dir: Path,
    tmp_path: Path,
) -> None:
    image = samples / "coffee.jpg"
    model = ["--model", str(tiny_model_dir), "--device", "cpu"]
    tokens = ["--max-new-tokens", str(TOKENS)]

    # The desktop app: a rectangle dragged on the canvas, the question typed and asked.
    open_and_wait(qtbot, window, image)
    adopt(window, tiny_engine, tiny_model_dir)
    window.settings = window.settings.with_changes(generation=Generation(max_new_tokens=TOKENS))
    drag(qtbot, window.canvas, [(120, 80), (260, 240)])
    prompts = list(window.studio.doc.prompts)
    assert [p.kind for p in prompts] == ["rectangle"]
    window.chat.question.setPlainText(QUESTION)
    with qtbot.waitSignal(window.asker.answered, timeout=120_000):
        qtbot.mouseClick(window.chat.ask_btn, Qt.MouseButton.LeftButton)
    dbs = {"gui": Path(window.writer.path)}
    prompts_file = tmp_path / "prompts.json"
    prompts_file.write_text(ov.dumps(prompts))
    asked = [str(image), QUESTION, "--prompts", str(prompts_file), "--seed", "0", *tokens]

    # `ask` and `ask --batch`, the console scripts.
    dbs["ask"] = tmp_path / "ask.sqlite"
    one = _run("ask", *asked, *model, "--json", "--db", str(dbs["ask"]))
    queries, answers = tmp_path / "queries.jsonl", tmp_path / "answers.jsonl"
    line = {
        "id": "q1",
        "image": str(image),
        "question": QUESTION,
        "seed": 0,
        "prompts": json.loads(ov.dumps(prompts)),
    }
    queries.write_text(json.dumps(line) + "\n")
    dbs["batch"] = tmp_path / "batch.sqlite"
    batch = ["--batch", str(queries), "--out", str(answers), "--db", str(dbs["batch"])]
    _run("ask", *batch, *model, *tokens)

    # The server, asked over HTTP by the client engine (`ask --server`).
    dbs["server"] = tmp_path / "server.sqlite"
    config = ServerConfig(model_name="tiny", max_new_tokens=64)
    with ServerThread(create_app(tiny_engine, config)) as url:
        remote = _run("ask", *asked, "--server", url, "--json", "--db", str(dbs["server"]))

    # One answer record: the batch line is the `ask --json` object plus its id.
    record = json.loads(one)
    (batch_line,) = (json.loads(x) for x in answers.read_text().splitlines())
    assert list(batch_line) == ["id", *record]
    same = {k: v for k, v in record.items() if k not in PER_DOOR}
    assert {k: v for k, v in batch_line.items() if k not in PER_DOOR} == {"id": "q1", **same}
    assert {k: v for k, v in json.loads(remote).items() if k not in PER_DOOR} == same
    assert record["question"] == f"What is {PHRASE}?"

    # The same log row, and from it the same model input: what each door sent.
    rows = {door: _only_turn(db) for door, db in dbs.items()}
    logged = {door: _logged(row) for door, row in rows.items()}
    assert logged["ask"] == logged["gui"] == logged["batch"] == logged["server"], logged
    gui = rows["gui"]
    assert (gui.question, gui.answer) == (record["question"], record["answer"])
    ref = gui.question_refs[0]
    assert gui.question[ref.start : ref.end] == PHRASE
    assert ov.dumps(gui.prompts) == ov.dumps(prompts)
    assert [rows[d].source for d in ("gui", "ask", "batch", "server")] == [
        "gui",
        "cli",
        "batch",
        "cli",
    ]
    inputs = {door: _model_input(tiny_engine, row) for door, row in rows.items()}
    pixels, ids = inputs["gui"]
    assert len(ids) == gui.prompt_tokens  # the input the model read when it answered
    for door, (other_pixels, other_ids) in inputs.items():
        assert torch.equal(other_pixels, pixels), f"{door}: other pixels"
        assert other_ids == ids, f"{door}: other token ids"

    # The same export record (the rendered image compared by its bytes).
    exported = {door: _exported(db, tmp_path / f"export-{door}") for door, db in dbs.items()}
    assert exported["gui"] and all(e == exported["gui"] for e in exported.values())
