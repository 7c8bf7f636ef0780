"""`ask --batch --ray` throughput: 1 and 2 actors on a local Ray vs the local runner, same run.

The Ray figures include what a real run pays once (actors starting and loading the model, the
driver writing shards and merging them into the log) but not starting Ray itself, which a
cluster has done already. On a 2-core machine two actors compete for the same cores, so the
figure to read here is the overhead of Ray at 1 actor; the scaling shows on a cluster.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import ray
from bench_ask import write_queries

from app.batch import BatchRunner
from app.batch_ray import RayOptions, run_ray
from data_gen.qalog.log import QALog
from vip_model.engine import GenerationSettings
from vip_model.hf import HFEngine
from vip_model.tiny import make_tiny_model

N, BATCH = 64, 8
SETTINGS = GenerationSettings(max_new_tokens=16)


def tiny_engine(model: str) -> tuple[Any, str]:
    return HFEngine(model, max_batch_size=BATCH), model


def local_rate(model: Path, tmp: Path) -> float:
    queries = tmp / "q-local.jsonl"
    write_queries(queries, N)
    started = time.perf_counter()  # the model load counts, as it does for the actors
    with HFEngine(str(model), max_batch_size=BATCH) as engine, QALog.open(tmp / "l.sqlite") as log:
        runner = BatchRunner(engine, str(model), log=log, batch_size=BATCH, settings=SETTINGS)
        summary = runner.run(queries, tmp / "a-local.jsonl")
    assert summary.answered == N, summary.text()
    return N / (time.perf_counter() - started)


def ray_rate(model: Path, tmp: Path, actors: int) -> float:
    queries = tmp / f"q-ray{actors}.jsonl"
    write_queries(queries, N)
    with QALog.open(tmp / f"r{actors}.sqlite") as log:
        summary = run_ray(
            queries,
            tmp / f"out-{actors}",
            partial(tiny_engine, str(model)),
            options=RayOptions(actors=actors, batch_size=BATCH, shard_size=N),
            log=log,
            settings=SETTINGS,
        )
    assert summary.answered == N and summary.merged == N, summary.text()
    return summary.rate


def main() -> int:
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        model = make_tiny_model(tmp / "tiny", "tiny", seed=0).path
        assert model is not None
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        try:
            local = local_rate(model, tmp)
            one = ray_rate(model, tmp, 1)
            two = ray_rate(model, tmp, 2)
        finally:
            ray.shutdown()
    print(
        f"ask --batch, tiny ({N} queries, batch {BATCH}, 16 tokens, model load included): "
        f"local {local:6.2f} q/s | ray 1 actor {one:6.2f} q/s ({one / local:.2f}x) | "
        f"ray 2 actors {two:6.2f} q/s ({two / local:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
