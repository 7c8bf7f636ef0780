"""The versioned JSON form of prompts: exact round-trips, and clear errors for bad documents."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from overlay_strategies import MAKERS, labels, regions

import overlays as ov

FAST = settings(max_examples=50, deadline=None)
BIG = (100_000, 80_000)  # coordinates up to ~1e5 with full float precision


@st.composite
def full_prompts(draw: st.DrawFn, kind: str) -> ov.Prompt:
    """A prompt of ``kind`` with any style, and sometimes a label and a region."""
    import dataclasses

    prompt = draw(MAKERS[kind](BIG))
    return dataclasses.replace(prompt, label=draw(labels), region=draw(st.none() | regions(BIG)))


def test_schema_string() -> None:
    assert ov.SCHEMA == "vipstudio.prompts/1"
    doc = json.loads(ov.dumps([ov.Rectangle((1, 2, 3, 4))]))
    assert doc["schema"] == "vipstudio.prompts/1"
    assert set(doc) == {"schema", "prompts"}


def test_the_stable_form_of_a_default_rectangle() -> None:
    doc = json.loads(ov.dumps([ov.Rectangle((10, 20.5, 30, 40))]))
    assert doc["prompts"] == [
        {
            "kind": "rectangle",
            "box": [10.0, 20.5, 30.0, 40.0],
            "style": {"color": "red", "alpha": 128, "width": 3.0},
            "label": None,
            "region": None,
        }
    ]


def test_the_stable_form_of_every_kind() -> None:
    region = ov.Region((0, 0, 50, 50), polygons=(((0, 0), (50, 0), (25, 50)),))
    prompts: list[ov.Prompt] = [
        ov.Ellipse((1, 2, 3, 4)),
        ov.Point((5, 6), radius=9, aspect=0.5, style=ov.Style((1, 2, 3), 200, 1.5)),
        ov.Triangle(((0, 0), (4, 0), (0, 3)), label="dog"),
        ov.Arrow((0, 0), (10, 10), head=4, filled=False, bend=(6, 4), region=region),
        ov.Scribble(((0, 0), (1, 5), (2, 0), (3, 5)), bezier=True),
        ov.Mask((((0, 0), (4, 0), (0, 3)),)),
        ov.Contour((((0, 0), (4, 0), (0, 3)),)),
    ]
    docs = [json.loads(ov.dumps([p]))["prompts"][0] for p in prompts]
    assert docs[0]["box"] == [1.0, 2.0, 3.0, 4.0]
    assert {k: docs[1][k] for k in ("center", "radius", "aspect")} == {
        "center": [5.0, 6.0],
        "radius": 9.0,
        "aspect": 0.5,
    }
    assert docs[1]["style"] == {"color": [1, 2, 3], "alpha": 200, "width": 1.5}
    assert docs[2]["points"] == [[0.0, 0.0], [4.0, 0.0], [0.0, 3.0]] and docs[2]["label"] == "dog"
    assert {k: docs[3][k] for k in ("tail", "tip", "head", "filled", "bend")} == {
        "tail": [0.0, 0.0],
        "tip": [10.0, 10.0],
        "head": 4.0,
        "filled": False,
        "bend": [6.0, 4.0],
    }
    assert docs[3]["region"] == {
        "box": [0.0, 0.0, 50.0, 50.0],
        "polygons": [[[0.0, 0.0], [50.0, 0.0], [25.0, 50.0]]],
    }
    assert docs[4]["bezier"] is True and len(docs[4]["points"]) == 4
    assert docs[5]["polygons"] == [[[0.0, 0.0], [4.0, 0.0], [0.0, 3.0]]]
    assert docs[6]["kind"] == "contour" and docs[6]["style"]["width"] == 1.0
    assert [d["kind"] for d in docs] == [
        "ellipse",
        "point",
        "triangle",
        "arrow",
        "scribble",
        "mask",
        "contour",
    ]


@pytest.mark.parametrize("kind", ov.KINDS)
@FAST
@given(data=st.data())
def test_round_trip_is_exact_for_every_kind(kind: str, data: st.DataObject) -> None:
    prompt = data.draw(full_prompts(kind))
    # Through the dict form and real JSON text.
    as_dict = ov.prompt_to_dict(prompt)
    again = ov.prompt_from_dict(json.loads(json.dumps(as_dict)))
    assert again == prompt
    assert type(again) is type(prompt)
    # Through dumps/loads, and the text is stable.
    text = ov.dumps([prompt])
    assert ov.loads(text) == [prompt]
    assert ov.dumps(ov.loads(text)) == text
    assert ov.loads(text.encode("utf-8")) == [prompt]


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_round_trip_of_a_list_of_mixed_prompts(data: st.DataObject) -> None:
    kinds = data.draw(st.lists(st.sampled_from(ov.KINDS), max_size=6))
    prompts = [data.draw(full_prompts(k)) for k in kinds]
    assert ov.loads(ov.dumps(prompts, indent=2)) == prompts


@given(x=st.floats(allow_nan=False, allow_infinity=False), y=st.floats(-1e300, 1e300))
@settings(max_examples=100, deadline=None)
def test_any_finite_float_survives_exactly(x: float, y: float) -> None:
    point = ov.Point((x, y), radius=abs(y) or 1.0)
    assert ov.loads(ov.dumps([point])) == [point]


def test_a_file_written_and_read_back(tmp_path: Path) -> None:
    prompts = [
        ov.generate(k, ov.Region((10.1, 20.2, 200.3, 150.4)), (640, 480), rng=7) for k in ov.KINDS
    ]
    path = tmp_path / "prompts.json"
    path.write_text(ov.dumps(prompts, indent=2), encoding="utf-8")
    assert ov.loads(path.read_text(encoding="utf-8")) == prompts


def test_a_bare_list_and_the_long_contour_name_are_accepted() -> None:
    rect = ov.Rectangle((1, 2, 3, 4))
    assert ov.loads(json.dumps([ov.prompt_to_dict(rect)])) == [rect]
    data = ov.prompt_to_dict(ov.Contour((((0, 0), (4, 0), (0, 3)),)))
    data["kind"] = "mask contour"
    assert isinstance(ov.prompt_from_dict(data), ov.Contour)


def test_optional_fields_take_their_defaults() -> None:
    prompt = ov.prompt_from_dict({"kind": "point", "center": [3, 4]})
    assert prompt == ov.Point((3.0, 4.0))
    contour = ov.prompt_from_dict({"kind": "contour", "polygons": [[[0, 0], [4, 0], [0, 3]]]})
    assert contour.style.width == 1.0
    style_only_color = ov.prompt_from_dict(
        {"kind": "rectangle", "box": [0, 0, 1, 1], "style": {"color": "blue"}}
    )
    assert style_only_color.style == ov.Style("blue", 128, 3.0)


# --------------------------------------------------------------------------- errors


def _doc(*prompts: Any, schema: Any = ov.SCHEMA) -> str:
    return json.dumps({"schema": schema, "prompts": list(prompts)})


RECT = {"kind": "rectangle", "box": [0, 0, 10, 10]}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (_doc({**RECT, "colour": "red"}), ["unknown key", "colour", "allowed"]),
        (
            _doc({**RECT, "style": {"color": "red", "opacity": 3}}),
            ["style", "unknown key", "opacity"],
        ),
        (_doc({**RECT, "region": {"box": [0, 0, 1, 1], "mask": []}}), ["region", "unknown key"]),
        (
            _doc({"kind": "hexagon", "box": [0, 0, 1, 1]}),
            ["unknown prompt kind", "hexagon", "rectangle"],
        ),
        (_doc({"box": [0, 0, 1, 1]}), ["unknown prompt kind"]),
        (
            _doc(RECT, schema="vipstudio.prompts/2"),
            ["schema", "vipstudio.prompts/2", "not supported"],
        ),
        (_doc(RECT, schema=None), ["schema"]),
        (json.dumps({"prompts": [RECT]}), ["schema"]),
        (
            json.dumps({"schema": ov.SCHEMA, "prompts": [RECT], "extra": 1}),
            ["unknown key", "extra"],
        ),
        (json.dumps({"schema": ov.SCHEMA}), ["missing", "prompts"]),
        (json.dumps({"schema": ov.SCHEMA, "prompts": {"a": 1}}), ["must be a list"]),
        (_doc({"kind": "rectangle"}), ["missing", "box"]),
        (_doc({"kind": "arrow", "tail": [0, 0]}), ["missing", "tip"]),
        (_doc(RECT, {"kind": "rectangle", "box": [5, 5, 1, 1]}), ["prompt 1", "reversed"]),
        (_doc(RECT, "not an object"), ["prompt 1", "JSON object"]),
        ("{not json", ["not valid JSON", "line 1"]),
        ("", ["not valid JSON"]),
        ("42", ["JSON object or list"]),
        (_doc({**RECT, "style": {"alpha": 300}}), ["alpha", "0..255"]),
        (_doc({**RECT, "style": {"color": "pink"}}), ["unknown colour", "pink"]),
        (_doc({**RECT, "style": "red"}), ["style", "JSON object"]),
        (_doc({**RECT, "style": {"width": None}}), ["width", "positive"]),
        (_doc({**RECT, "style": {"width": "3"}}), ["width", "positive"]),
        (_doc({**RECT, "style": {"color": None}}), ["colour"]),
        (_doc({**RECT, "style": {"color": 7}}), ["colour"]),
        (_doc({**RECT, "region": {"box": [0, 0, 1, 1], "polygons": 5}}), ["region", "polygon"]),
        (_doc({**RECT, "region": {"box": [0, 0, 1, 1], "polygons": [5]}}), ["region polygon 0"]),
        (_doc({**RECT, "region": 5}), ["region", "JSON object"]),
        (_doc({"kind": "mask", "polygons": 5}), ["mask", "list of polygons"]),
        (_doc({"kind": "triangle", "points": None}), ["triangle", "three points"]),
        (_doc({"kind": "scribble", "points": 3}), ["scribble", "list of points"]),
        (_doc({"kind": "point", "center": None}), ["point", "pair x,y"]),
        (_doc({"kind": "arrow", "tail": [0, 0], "tip": [5, 5], "head": "big"}), ["head"]),
        (_doc({"kind": "arrow", "tail": [0, 0], "tip": [5, 5], "filled": 1}), ["filled"]),
    ],
)
def test_bad_documents_raise_invalid_prompt_naming_the_problem(text: str, words: list[str]) -> None:
    with pytest.raises(ov.InvalidPrompt) as info:
        ov.loads(text)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def mutated_prompt_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A valid prompt dict with one value (possibly nested) replaced by arbitrary JSON."""
    prompt = draw(full_prompts(draw(st.sampled_from(ov.KINDS))))
    data = json.loads(json.dumps(ov.prompt_to_dict(prompt)))
    node: Any = data
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and child and draw(st.booleans()):
            node = child
            continue
        node[key] = draw(json_values)
        return data


@settings(max_examples=100, deadline=None)
@given(data=mutated_prompt_dicts())
def test_any_malformed_prompt_raises_invalid_prompt_and_nothing_else(data: dict[str, Any]) -> None:
    """No TypeError or KeyError escapes: the CLI and the log rely on one exception type."""
    try:
        prompt = ov.prompt_from_dict(data)
    except ov.InvalidPrompt as exc:
        assert str(exc)
        return
    # Accepted: then it is a valid prompt and its own JSON form round-trips.
    assert ov.prompt_from_dict(ov.prompt_to_dict(prompt)) == prompt


@settings(max_examples=100, deadline=None)
@given(doc=json_values)
def test_any_json_document_loads_or_raises_invalid_prompt(doc: Any) -> None:
    with contextlib.suppress(ov.InvalidPrompt):
        ov.from_document(doc)
