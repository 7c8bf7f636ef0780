"""`ask --batch --ray` for real: a local Ray (2 CPUs, one per session), the tiny model, real
shards and a real SQLite log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from app.batch import BatchRunner  # noqa: E402
from app.batch_ray import RayOptions, RayRunFailed, run_ray  # noqa: E402
from app.batch_ray_shards import ShardFolder, merge_into_log  # noqa: E402
from data_gen.qalog.log import QALog  # noqa: E402
from vip_model.engine import GenerationSettings  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[2] / "assets" / "samples"
VIPSTUDIO = str(Path(sys.executable).parent / "vipstudio")
SETTINGS = GenerationSettings(max_new_tokens=6)

# The engine factories below travel to the actors by value (the workers cannot import tests).
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """One local Ray for every test here (starting one costs seconds)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def tiny_engine(model_dir: str) -> tuple[Any, str]:
    from vip_model import HFEngine

    return HFEngine(model_dir), model_dir


class CrashOnce:
    """The tiny engine, except that the actor process dies the first time it meets a question
    holding "CRASH" (a marker file remembers, across the restart)."""

    def __init__(self, model_dir: str, marker: str) -> None:
        from vip_model import HFEngine

        self.engine = HFEngine(model_dir)
        self.marker = Path(marker)

    def batch(self, requests: list[Any]) -> list[Any]:
        if any("CRASH" in r.question for r in requests) and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os._exit(1)  # the whole actor, mid-batch: no clean-up, no exception
        return self.engine.batch(requests)


def crashing_engine(model_dir: str, marker: str) -> tuple[Any, str]:
    return CrashOnce(model_dir, marker), model_dir


def write_queries(path: Path, n: int, bad: bool = True, mark: int | None = None) -> list[str]:
    images = ["coffee.jpg", "chelsea.jpg", "rocket.jpg", "astronaut.jpg"]
    lines = [
        json.dumps(
            {
                "id": f"q{i}",
                "image": str(SAMPLES / images[i % 4]),
                "question": f"What is <region0>? ({i}{' CRASH' if i == mark else ''})",
                "bboxes": [[10, 10, 200, 150]],
            }
        )
        for i in range(n)
    ]
    if bad:
        lines += [
            lines[0],  # a duplicate id
            "{this is not json",
            json.dumps({"id": "no-question", "image": str(SAMPLES / "coffee.jpg")}),
            json.dumps(
                {
                    "id": "bad-box",
                    "image": str(SAMPLES / "coffee.jpg"),
                    "question": "q?",
                    "bboxes": [[9, 9, 1, 1]],
                }
            ),
        ]
    path.write_text("\n".join(lines) + "\n")
    return [f"q{i}" for i in range(n)]


def test_answers_equal_the_local_runner_and_merge_into_the_log_once(
    ray_address: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from vip_model import HFEngine

    queries = tmp_path / "q.jsonl"
    ids = write_queries(queries, 5)
    with HFEngine(str(tiny_model_dir)) as engine:
        local = BatchRunner(engine, str(tiny_model_dir), log=None, batch_size=2, settings=SETTINGS)
        local.run(queries, tmp_path / "local.jsonl")
    expected = [json.loads(line) for line in (tmp_path / "local.jsonl").read_text().splitlines()]

    out, db = tmp_path / "shards", tmp_path / "log.sqlite"
    factory = partial(tiny_engine, str(tiny_model_dir))
    options = RayOptions(actors=2, batch_size=2, shard_size=3)
    with QALog.open(db) as log:
        summary = run_ray(queries, out, factory, options=options, log=log, settings=SETTINGS)
    assert (summary.answered, summary.errors, summary.merged) == (5, 4, 5)

    folder = ShardFolder(out)
    answers = {r["id"]: r for r in folder.answers()}
    assert sorted(answers) == ids
    for record in expected:
        if "answer" in record:  # greedy: the very same text, question and prompts
            got = answers[record["id"]]
            for key in ("answer", "question", "prompts", "completion_tokens", "image"):
                assert got[key] == record[key], (record["id"], key)
    errors = {r["id"]: r["error_type"] for r in folder.errors()}
    local_errors = {r["id"]: r["error_type"] for r in expected if "error" in r}
    assert errors == local_errors and set(errors) == {"q0", "line-7", "no-question", "bad-box"}
    # Both formats hold the same answers.
    import pyarrow.parquet as pq

    table = pq.read_table(sorted(out.glob("part-*.parquet")))
    assert sorted(table.column("id").to_pylist()) == ids

    with QALog.open(db) as log:
        turns = log.turns()
        assert sorted(t.answer for t in turns) == sorted(a["answer"] for a in answers.values())
        assert {t.source for t in turns} == {"batch"}
        assert merge_into_log(folder, log) == 0  # idempotent by request id
        assert log.count() == 5
        # A rerun skips what the shards hold and retries only the error records.
        again = run_ray(queries, out, factory, options=options, log=log, settings=SETTINGS)
        assert (again.answered, again.skipped, again.errors, again.merged) == (0, 6, 3, 0)
        assert log.count() == 5


def test_an_actor_killed_mid_run_is_restarted_and_the_run_finishes(
    ray_address: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    queries, marker = tmp_path / "q.jsonl", tmp_path / "crashed"
    ids = write_queries(queries, 6, bad=False, mark=3)
    factory = partial(crashing_engine, str(tiny_model_dir), str(marker))
    options = RayOptions(actors=1, batch_size=2, shard_size=2)
    summary = run_ray(
        queries, tmp_path / "out", factory, options=options, log=None, settings=SETTINGS
    )
    assert marker.exists(), "the actor did die"
    assert summary.answered == 6 and summary.errors == 0
    got = [r["id"] for r in ShardFolder(tmp_path / "out").answers()]
    assert sorted(got) == ids  # each once


def test_a_killed_driver_resumes_without_losing_or_repeating(
    ray_address: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    queries, out = tmp_path / "q.jsonl", tmp_path / "out"
    ids = write_queries(queries, 24, bad=False)
    args = [
        VIPSTUDIO,
        "ask",
        "--batch",
        str(queries),
        "--out",
        str(out),
        "--ray",
        "--model",
        str(tiny_model_dir),
        "--max-new-tokens",
        "6",
        "--batch-size",
        "1",
        "--shard-size",
        "1",
        "--no-log",
    ]
    env = {**os.environ, "RAY_ADDRESS": ray_address, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and len(list(out.glob("part-*.jsonl"))) < 2:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = {r["id"] for r in ShardFolder(out).answers()}
    assert 0 < len(first) < 24, "the kill must land mid-run"

    factory = partial(tiny_engine, str(tiny_model_dir))
    options = RayOptions(actors=1, batch_size=4, shard_size=8)
    summary = run_ray(queries, out, factory, options=options, log=None, settings=SETTINGS)
    assert summary.skipped == len(first) and summary.answered == 24 - len(first)
    got = [r["id"] for r in ShardFolder(out).answers()]
    assert sorted(got) == sorted(ids)  # nothing lost, nothing twice
    assert not list(out.glob(".tmp-*"))


def test_parquet_queries(ray_address: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {
            "id": "p0",
            "image": str(SAMPLES / "coffee.jpg"),
            "question": "What is <region0>?",
            "bboxes": [[10.0, 10.0, 200.0, 150.0]],
        },
        {"id": "p1", "image": str(SAMPLES / "rocket.jpg"), "question": None, "bboxes": None},
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "q.parquet")
    factory = partial(tiny_engine, str(tiny_model_dir))
    summary = run_ray(
        tmp_path / "q.parquet",
        tmp_path / "out",
        factory,
        options=RayOptions(actors=1, batch_size=2),
        log=None,
        settings=SETTINGS,
    )
    assert (summary.answered, summary.errors) == (1, 1)
    (error,) = ShardFolder(tmp_path / "out").errors()
    assert error["id"] == "p1" and "question" in error["error"]


def no_model(model_dir: str) -> tuple[Any, str]:
    from vip_model.errors import ModelError

    raise ModelError(f"{model_dir}: no model here")


def test_a_model_that_cannot_load_is_one_clear_error(ray_address: str, tmp_path: Path) -> None:
    queries = tmp_path / "q.jsonl"
    write_queries(queries, 2, bad=False)
    with pytest.raises(RayRunFailed) as err:
        run_ray(
            queries,
            tmp_path / "out",
            partial(no_model, "/nowhere"),
            options=RayOptions(actors=1),
            log=None,
        )
    assert "ModelError: /nowhere: no model here" in str(err.value)
    assert "rerun to finish" in str(err.value)
