"""One engine spec and one factory: the CLI's options and the desktop app's settings describe
the same `EngineSpec`, and `build_engine` makes the local or the remote engine from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest

from app.gui.settings import Settings
from app.model_options import engine_from_options, spec_from_options
from vip_model.client import RemoteEngine
from vip_model.engine_spec import EngineSpec, build_engine
from vip_model.errors import InvalidRequest
from vip_model.hf import HFEngine
from vip_model.loading import DEFAULT_MODEL


def _flags(**changes: Any) -> dict[str, Any]:
    flags = dict(
        model=None,
        device="auto",
        dtype="auto",
        load_4bit=False,
        load_8bit=False,
        static_cache=False,
        server=None,
        token=None,
    )
    return {**flags, **changes}


def test_cli_options_and_gui_settings_describe_the_same_spec(tmp_path: Path) -> None:
    local = spec_from_options(_flags(model=str(tmp_path), device="cpu", load_8bit=True))
    assert local == Settings(model=str(tmp_path), device="cpu", quantization="8bit").engine_spec()
    assert local.quantization == "8bit" and local.name == str(tmp_path)
    remote = spec_from_options(_flags(server="http://127.0.0.1:9", token="s3cret"))
    gui = Settings(server_url="http://127.0.0.1:9", server_token="s3cret").engine_spec()
    assert remote == gui and remote.remote and remote.name == "http://127.0.0.1:9"
    assert spec_from_options(_flags()).model == DEFAULT_MODEL


def test_the_factory_builds_the_engine_the_spec_describes(tiny_model_dir: Path) -> None:
    spec = EngineSpec(model=str(tiny_model_dir), device="cpu", quantization="none")
    engine = build_engine(spec, lazy=True)
    try:
        assert isinstance(engine, HFEngine)
        assert (engine.options.model, engine.options.device) == (str(tiny_model_dir), "cpu")
        assert not engine.options.load_4bit and not engine.options.load_8bit
    finally:
        engine.close()
    remote, name = engine_from_options(
        _flags(server="http://127.0.0.1:9", token="t"), max_batch_size=3
    )
    try:
        assert isinstance(remote, RemoteEngine) and name == "http://127.0.0.1:9"
        assert (remote.url, remote.token, remote.max_parallel) == ("http://127.0.0.1:9", "t", 3)
    finally:
        remote.close()


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda: EngineSpec(quantization="2bit"), InvalidRequest, "quantization '2bit'"),
        (lambda: EngineSpec(device="tpu"), InvalidRequest, "device 'tpu'"),
        (
            lambda: EngineSpec(server_url="http://x", static_cache=True),
            InvalidRequest,
            "local model only",
        ),
        (
            lambda: spec_from_options(_flags(load_4bit=True, load_8bit=True)),
            InvalidRequest,
            "not both",
        ),
        (
            lambda: spec_from_options(_flags(server="http://x", model="m")),
            click.UsageError,
            "--model or --server",
        ),
        (
            lambda: spec_from_options(_flags(server="http://x", static_cache=True)),
            click.UsageError,
            "--compile",
        ),
    ],
)
def test_an_impossible_spec_is_refused_with_the_reason(make: Any, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        make()
