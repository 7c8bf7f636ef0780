"""The static KV cache option (``--compile``): the same greedy answers as the default path."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

import overlays as ov
from app.cli import main
from vip_model import GenerationSettings, Request
from vip_model.hf import HFEngine

Noise = Callable[..., Image.Image]
SETTINGS = GenerationSettings(max_new_tokens=8)


@pytest.fixture(scope="module")
def static_engine(tiny_model_dir: Path) -> Iterator[HFEngine]:
    with HFEngine(str(tiny_model_dir), static_cache=True) as e:
        yield e


def _requests(noise: Noise) -> list[Request]:
    box = (ov.Rectangle((4, 4, 40, 30)),)
    first = Request(noise(64, 48, seed=5), "What is it?", prompts=box, settings=SETTINGS)
    return [
        first,
        first.follow_up("A thing.", "And the colour?"),
        Request(noise(50, 70, seed=6), "Describe </s> it.", settings=SETTINGS),
    ]


def test_static_cache_answers_equal_the_default_path(
    static_engine: HFEngine, fresh_engine: HFEngine, noise: Noise
) -> None:
    requests = _requests(noise)
    for request in requests:
        expected = fresh_engine.ask(request)
        got = static_engine.ask(request)
        assert (got.text, got.completion_tokens) == (expected.text, expected.completion_tokens)
        assert "".join(static_engine.stream(request)) == expected.text
    assert [a.text for a in static_engine.batch(requests)] == [
        a.text for a in fresh_engine.batch(requests)
    ]
    assert static_engine.prefix_cache.entries == 0  # a static cache is not carried over
    assert static_engine._generation_config(SETTINGS, ()).cache_implementation == "static"


def test_the_cli_flag_reaches_the_engine(tiny_model_dir: Path, tmp_path: Path) -> None:
    image = tmp_path / "n.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(image)
    args = ["ask", str(image), "What?", "--bbox", "2,2,30,20", "--no-log", "--json"]
    args += ["--model", str(tiny_model_dir), "--max-new-tokens", "4"]
    plain = CliRunner().invoke(main, args)
    compiled = CliRunner().invoke(main, [*args, "--compile"])
    assert plain.exit_code == compiled.exit_code == 0, compiled.output
    assert json.loads(compiled.output)["answer"] == json.loads(plain.output)["answer"]
    remote = CliRunner().invoke(
        main, ["ask", str(image), "Q?", "--bbox", "2,2,30,20", "--server", "http://x", "--compile"]
    )
    assert remote.exit_code == 2 and "--compile" in remote.output
