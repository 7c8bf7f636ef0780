"""The `ask --batch` line parser, fuzzed: whatever a line holds, it returns a query or raises
``BadQuery``; a query it returns is prepared (real image) or refused with a named error."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import overlays as ov
from app.batch import QUERY_KEYS, BadQuery, Query, parse_query, prepare
from overlays.serialize import PROMPT_TYPES
from vip_model.engine import GenerationSettings
from vip_model.errors import InvalidRequest

DEFAULTS = GenerationSettings()
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
numbers = st.floats(allow_nan=False) | st.integers(-(2**70), 2**70) | st.floats(-50, 200)
point = st.lists(numbers, min_size=2, max_size=2)
geometry = (
    json_values
    | point
    | st.lists(numbers, min_size=4, max_size=4)
    | st.lists(point, max_size=6)
    | st.lists(st.lists(point, max_size=6), max_size=3)
)
prompt_keys = sorted({f.name for c in PROMPT_TYPES.values() for f in dataclasses.fields(c)})
prompts = st.lists(
    st.fixed_dictionaries(
        {"kind": st.sampled_from([*PROMPT_TYPES, "mask contour"])},
        optional=dict.fromkeys(prompt_keys, geometry),
    ),
    max_size=3,
)
settings_objects = st.dictionaries(
    st.sampled_from([f.name for f in dataclasses.fields(GenerationSettings)] + ["other"]),
    json_values | numbers,
)


def known_keys(image: str) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the known keys: the required ones usually valid, every value arbitrary."""
    valid = {
        "id": st.text(min_size=1) | st.integers(),
        "image": st.just(image),
        "question": st.text(min_size=1) | st.just("What is <region0> and <bbox1>?"),
        "prompts": prompts,
        "bboxes": st.lists(st.lists(numbers, min_size=4, max_size=4), max_size=4),
        "shape": st.sampled_from([*ov.KINDS, "mask contour"]),
        "labels": st.lists(st.text(), max_size=4),
        "settings": settings_objects,
        "seed": st.integers(-5, 2**64),
        "video": st.just(image),
        "t": numbers,
        "frame": st.integers(-2, 2**64),
        "track": st.booleans(),
        "every": numbers,
        "until": numbers,
    }
    required = {k: valid[k] | json_values for k in ("id", "image", "question")}
    optional = {k: valid[k] | json_values for k in sorted(QUERY_KEYS - set(required))}
    return st.fixed_dictionaries(required, optional=optional)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("img") / "small.png"
    Image.new("RGB", (64, 48), "white").save(path)
    return str(path)


def parse_or_refuse(line: str) -> Query | None:
    """The property: a query (well-typed, valid text) or BadQuery; nothing else escapes."""
    try:
        query = parse_query(line, Path("/tmp"), DEFAULTS)
    except BadQuery as exc:
        assert exc.ident is None or encodes(exc.ident)
        return None
    assert isinstance(query.id, str) and encodes(query.id)
    assert encodes(str(query.image_path)) and query.question_text.strip()
    assert encodes(query.question_text)
    assert all(isinstance(x, str) and encodes(x) for x in query.labels)
    assert all(len(b) == 4 and all(isinstance(v, float) for v in b) for b in query.bboxes)
    assert isinstance(query.seed, int) and not isinstance(query.seed, bool)
    return query


def prepare_or_refuse(query: Query | None) -> None:
    if query is None:
        return
    with contextlib.suppress(BadQuery, ov.OverlayError, InvalidRequest):
        prepare(query, "llava_v1", 10**6)


def encodes(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@FUZZ
@given(value=json_values)
def test_any_json_value(value: Any) -> None:
    parse_or_refuse(json.dumps(value))


@FUZZ
@given(data=st.data())
def test_objects_with_the_known_keys_holding_any_json(data: st.DataObject, image: str) -> None:
    query = parse_or_refuse(json.dumps(data.draw(known_keys(image))))
    prepare_or_refuse(query)


@FUZZ
@given(line=st.text())  # surrogates included: st.text() draws them
def test_any_text_line(line: str) -> None:
    parse_or_refuse(line)


@FUZZ
@given(value=json_values)
def test_any_json_text_with_escaped_lone_surrogates(value: Any) -> None:
    # json.dumps escapes a lone surrogate as \udXXX, as another program's output would hold it
    parse_or_refuse(json.dumps({"id": "x", "image": "a.jpg", "question": "q", "labels": [value]}))


def test_known_hazards_are_refused_by_name() -> None:
    base = {"id": "q", "image": "a.jpg", "question": "q?"}
    hazards = {
        '{"id": "q", "image": "a.jpg", "question": "q?", "seed": "abc"}': "seed",
        json.dumps({**base, "labels": 5}): "labels",
        json.dumps({**base, "question": "\ud800"}): "not valid Unicode",
        "[" * 100_000 + "]" * 100_000: "nested too deeply",
        json.dumps({**base, "seed": 1}).replace("1}", "1" * 5000 + "}"): "not valid JSON",
        json.dumps({**base, "bboxes": [[0, 0, 1, 1]]}).replace("1]]", "Infinity]]"): "JSON",
    }
    for line, words in hazards.items():
        with pytest.raises(BadQuery, match=words):
            parse_query(line, Path("/tmp"), DEFAULTS)


def test_read_lines_bounds_each_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import app.batch_query
    from app.batch_query import read_lines

    monkeypatch.setattr(app.batch_query, "MAX_LINE_BYTES", 100)
    data = b'{"a": 1}\n\n' + b"x" * 1000 + b"\n" + b"\xc3\x28\n" + b"last"
    got = list(read_lines(io.BytesIO(data)))
    assert [n for n, _ in got] == [1, 3, 4, 5]
    assert got[0][1] == '{"a": 1}\n' and got[3][1] == "last"
    assert isinstance(got[1][1], BadQuery) and "longer than" in str(got[1][1])
    assert isinstance(got[2][1], BadQuery) and "not UTF-8" in str(got[2][1])
