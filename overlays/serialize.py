"""The stable, versioned JSON form of visual prompts (used by the log, the server and exports).

Every prompt becomes a plain dict ``{"kind": ..., <geometry>, "style": {...}, "label": ...,
"region": ...}``; a list of prompts is wrapped as ``{"schema": SCHEMA, "prompts": [...]}``.
Round-trips are exact (floats are written with Python's shortest repr). Unknown keys, unknown
kinds and a newer schema are errors, never silently dropped.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from typing import Any

from overlays.errors import InvalidPrompt
from overlays.keys import expect_keys
from overlays.prompts import PROMPT_TYPES, Prompt, Region
from overlays.style import Style

SCHEMA = "vipstudio.prompts/1"
_COMMON = ("style", "label", "region")


def style_to_dict(style: Style) -> dict[str, Any]:
    color = style.color if isinstance(style.color, str) else list(style.color)
    return {"color": color, "alpha": style.alpha, "width": style.width}


def style_from_dict(data: Any) -> Style:
    expect_keys(data, {"color", "alpha", "width"}, "style", error=InvalidPrompt)
    color = data.get("color", "red")
    return Style(
        color=tuple(color) if isinstance(color, list) else color,
        alpha=data.get("alpha", 128),
        width=data.get("width", 3.0),
    )


def region_to_dict(region: Region) -> dict[str, Any]:
    polygons = [[list(p) for p in ring] for ring in region.polygons] if region.polygons else None
    return {"box": list(region.box), "polygons": polygons}


def region_from_dict(data: Any) -> Region:
    expect_keys(data, {"box", "polygons"}, "region", required={"box"}, error=InvalidPrompt)
    polygons = data.get("polygons")
    return Region(box=data["box"], polygons=_rings(polygons) if polygons else None)


def prompt_to_dict(prompt: Prompt) -> dict[str, Any]:
    """One prompt as a JSON-ready dict."""
    out: dict[str, Any] = {"kind": prompt.kind}
    for f in dataclasses.fields(prompt):
        if f.name in _COMMON:
            continue
        out[f.name] = _plain(getattr(prompt, f.name))
    out["style"] = style_to_dict(prompt.style)
    out["label"] = prompt.label
    out["region"] = region_to_dict(prompt.region) if prompt.region else None
    return out


def prompt_from_dict(data: Any) -> Prompt:
    """The inverse of :func:`prompt_to_dict`; raises :class:`InvalidPrompt` naming the problem."""
    if not isinstance(data, dict):
        raise InvalidPrompt(f"a prompt must be a JSON object, got {type(data).__name__}")
    kind = data.get("kind")
    if kind == "mask contour":
        kind = "contour"
    cls = PROMPT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidPrompt(f"unknown prompt kind {kind!r}: use one of {', '.join(PROMPT_TYPES)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    own = {name for name in fields if name not in _COMMON}
    required = {
        name
        for name, f in fields.items()
        if name in own
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    }
    allowed = own | set(_COMMON) | {"kind"}
    expect_keys(data, allowed, f"{kind} prompt", required=required, error=InvalidPrompt)
    kwargs: dict[str, Any] = {}
    for name in own:
        if name in data:
            kwargs[name] = _tupled(data[name]) if name != "head" else data[name]
    if data.get("style") is not None:
        kwargs["style"] = style_from_dict(data["style"])
    if data.get("label") is not None:
        kwargs["label"] = data["label"]
    if data.get("region") is not None:
        kwargs["region"] = region_from_dict(data["region"])
    return cls(**kwargs)


def dumps(prompts: Iterable[Prompt], indent: int | None = None) -> str:
    """Prompts as a JSON document with the schema version."""
    doc = {"schema": SCHEMA, "prompts": [prompt_to_dict(p) for p in prompts]}
    return json.dumps(doc, indent=indent, ensure_ascii=False)


def loads(text: str | bytes) -> list[Prompt]:
    """Parse :func:`dumps` output. A bare JSON list of prompt objects is accepted too."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidPrompt(
            f"prompts are not valid JSON ({exc.msg} at line {exc.lineno})"
        ) from None
    return from_document(doc)


def from_document(doc: Any) -> list[Prompt]:
    """Prompts from an already-parsed JSON document (see :func:`loads`)."""
    if isinstance(doc, list):
        items: Sequence[Any] = doc
    elif isinstance(doc, dict):
        schema = doc.get("schema")
        if schema != SCHEMA:
            raise InvalidPrompt(
                f"prompt schema {schema!r} is not supported: this version reads {SCHEMA!r}; "
                "upgrade vip-studio to read newer files"
            )
        expect_keys(
            doc, {"schema", "prompts"}, "prompt document", required={"prompts"}, error=InvalidPrompt
        )
        items = doc["prompts"]
        if not isinstance(items, list):
            raise InvalidPrompt("'prompts' must be a list")
    else:
        raise InvalidPrompt("a prompt document must be a JSON object or list")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(prompt_from_dict(item))
        except InvalidPrompt as exc:
            raise InvalidPrompt(f"prompt {i}: {exc}") from None
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _tupled(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tupled(v) for v in value)
    return value


def _rings(value: Any) -> Any:
    return _tupled(value)
