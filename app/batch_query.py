"""One line of an ``ask --batch`` file to a :class:`Query`, whatever the line holds.

This is the batch's only contact with untrusted text. :func:`parse_query` returns a query whose
every field is checked (types, ranges, valid Unicode, bounded size and nesting) or raises
:class:`BadQuery` naming the problem and, when it can be read, the line's id; no JSON value
reaches a traceback. :func:`read_lines` reads a file with a bound on each line's length, so a
runaway line costs an error record, not the machine's memory.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import overlays as ov
from app.ask_video import When, WhenError
from vip_model.engine import GenerationSettings
from vip_model.errors import InvalidRequest

#: The keys of a line about a video's frame (or frames, over time) instead of an image.
VIDEO_KEYS = {"video", "t", "frame", "track", "every", "until"}
QUERY_KEYS = {
    "id",
    "image",
    "question",
    "prompts",
    "bboxes",
    "shape",
    "labels",
    "settings",
    "seed",
    *VIDEO_KEYS,
}
# What a line's keys are called in messages about them (When's fields by their keys).
_LINE_NAMES = {
    "at": '"t"',
    "frame": '"frame"',
    "track": '"track"',
    "every": '"every"',
    "until": '"until"',
    "tracker": '"tracker"',
}

#: Longest line read (bytes): a prompt document with many detailed polygons fits easily.
MAX_LINE_BYTES = 16 * 2**20
#: Deepest JSON nesting accepted; a query needs 5 levels (prompts → prompt → polygon → point).
MAX_DEPTH = 16
MAX_ID_CHARS = 1000
#: Boxes (and labels) per query.
MAX_BOXES = 1000
MAX_SEED = 2**63 - 1


class BadQuery(Exception):
    """A query line that cannot be answered; becomes an error record.

    ``ident`` is the line's id when it could be read (the record then carries it), else None.
    """

    def __init__(self, message: str, ident: str | None = None) -> None:
        super().__init__(message)
        self.ident = ident


@dataclass
class Query:
    id: str
    image_path: Path
    question_text: str
    prompts: list[ov.Prompt] | None  # None: made from bboxes once the image size is known
    bboxes: list[list[float]]
    shape: str
    labels: list[str]
    settings: GenerationSettings
    seed: int
    #: A line about a video (``image_path`` is then the video): where to ask, else None.
    when: When | None = None


def read_lines(fh: BinaryIO) -> Iterator[tuple[int, str | BadQuery]]:
    """``(line number, text)`` of each non-blank line of a binary file, or ``(number, BadQuery)``
    for a line that is too long or not UTF-8. Never holds more than one bounded line."""
    number = 0
    while True:
        raw = fh.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (rest := fh.readline(2**20)) and not rest.endswith(b"\n"):
                pass  # skip the rest of the runaway line without keeping it
            yield number, BadQuery(f"the line is longer than {MAX_LINE_BYTES / 2**20:g} MB")
            continue
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # a byte-order mark, as some Windows editors write
        if not raw.strip():
            continue
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield (
                number,
                BadQuery(
                    f"not UTF-8 text (byte {raw[exc.start]:#04x} at byte {exc.start + 1}): "
                    "save the file as UTF-8"
                ),
            )


def count_lines(path: Path) -> int:
    """Non-blank lines of ``path`` (for a progress bar)."""
    with path.open("rb") as fh:
        return sum(1 for _ in read_lines(fh))


def parse_query(line: str, base_dir: Path, defaults: GenerationSettings) -> Query:
    """One JSONL line to a :class:`Query`; raises :class:`BadQuery` naming the problem."""
    data = _load(line)
    ident = _ident(data)
    try:
        if not _shallow(data):
            raise BadQuery(f"the JSON is nested too deeply (over {MAX_DEPTH} levels)")
        _check_text(data)
        return _query(data, ident, base_dir, defaults)
    except BadQuery as exc:
        raise BadQuery(str(exc), ident) from None


def _load(line: str) -> dict[str, Any]:
    try:
        data = json.loads(line, parse_constant=_no_constant)
    except RecursionError:
        raise BadQuery(f"the JSON is nested too deeply (over {MAX_DEPTH} levels)") from None
    except ValueError as exc:  # JSONDecodeError, NaN, and integers of over 4300 digits
        if isinstance(exc, json.JSONDecodeError):
            reason = f"{exc.msg} at column {exc.colno}"
        elif "digits" in str(exc):
            reason = "a number of over 4300 digits"
        else:
            reason = str(exc)
        raise BadQuery(f"not valid JSON ({reason})") from None
    if not isinstance(data, dict):
        raise BadQuery(f"a query must be a JSON object, got {_kind(data)}")
    return data


def _check_text(data: dict[str, Any]) -> None:
    # A lone surrogate (JSON "\ud800") cannot be written as UTF-8: not to a path, the tokenizer,
    # the log or the answers file. Refuse it here, naming the field.
    for key, value in data.items():
        if not _valid_text(key):
            raise BadQuery(f"a field name {_INVALID_TEXT}")
        if not _all_text_valid(value):
            raise BadQuery(f"field {_short(key)!r} {_INVALID_TEXT}")


def _ident(data: dict[str, Any]) -> str | None:
    """The line's id if it is a usable one, else None (the caller reports the problem)."""
    value = data.get("id")
    if (
        isinstance(value, str)
        and value.strip()
        and len(value) <= MAX_ID_CHARS
        and _valid_text(value)
    ):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _query(
    data: dict[str, Any], ident: str | None, base_dir: Path, defaults: GenerationSettings
) -> Query:
    unknown = set(data) - QUERY_KEYS
    if unknown:
        names = ", ".join(repr(_short(k)) for k in sorted(unknown)[:5])
        raise BadQuery(f"unknown field(s) {names}; allowed: {', '.join(sorted(QUERY_KEYS))}")
    video = "video" in data
    if video and "image" in data:
        raise BadQuery('give "image" (a photo) or "video" (a clip, with "t"), not both')
    for key in ("id", "video" if video else "image", "question"):
        if key not in data:
            raise BadQuery(f"missing field {key!r}")
    if ident is None:
        raise BadQuery(
            f"id must be a non-empty string (at most {MAX_ID_CHARS} characters) or an integer, "
            f"got {_kind(data['id'])}"
        )
    question = data["question"]
    if not isinstance(question, str) or not question.strip():
        raise BadQuery(
            "the question is empty" if isinstance(question, str) else "question must be text"
        )
    field = "video" if video else "image"
    image = data[field]
    if not isinstance(image, str) or not image:
        raise BadQuery(f"{field} must be a file path, got {_kind(image)}")
    if "\0" in image:
        raise BadQuery(f"the {field} path holds a NUL character")
    prompts = None
    if data.get("prompts") is not None:
        try:
            prompts = ov.from_document(data["prompts"])
        except ov.InvalidPrompt as exc:
            raise BadQuery(str(exc)) from None
    path = Path(image)
    return Query(
        id=ident,
        image_path=path if path.is_absolute() else base_dir / path,
        question_text=question,
        prompts=prompts,
        bboxes=_bboxes(data.get("bboxes")),
        shape=_shape(data.get("shape", "rectangle")),
        labels=_labels(data.get("labels")),
        settings=_settings(data.get("settings"), defaults),
        seed=_seed(data.get("seed", 0)),
        when=_when(data) if video else _no_video_keys(data),
    )


def _when(data: dict[str, Any]) -> When:
    """Where a video line asks: ``t`` (seconds) or ``frame``, and over time ``every``
    (``until``, ``track``)."""
    track = data.get("track", False)
    if not isinstance(track, bool):
        raise BadQuery(f'"track" must be true or false, got {_kind(track)}')
    frame = data.get("frame")
    if frame is not None and (isinstance(frame, bool) or not isinstance(frame, int)):
        raise BadQuery(f'"frame" must be a frame index (an integer), got {_kind(frame)}')
    when = When(
        at=_seconds(data, "t"),
        frame=frame,
        track=track,
        every=_seconds(data, "every"),
        until=_seconds(data, "until"),
    )
    try:
        when.check(_LINE_NAMES)
    except WhenError as exc:
        raise BadQuery(str(exc)) from None
    return when


def _seconds(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if not _finite(value):
        raise BadQuery(f"{key!r} must be a number of seconds, got {_kind(value)}")
    return float(value)


def _no_video_keys(data: dict[str, Any]) -> When | None:
    """None (an image line has no moment), refusing the keys of a video line."""
    given = sorted(VIDEO_KEYS & set(data))
    if given:
        names = ", ".join(repr(k) for k in given)
        raise BadQuery(
            f'{names}: only a line about a "video" takes these, and this one names an "image"'
        )
    return None


def _bboxes(value: Any) -> list[list[float]]:
    if value is None:
        return []
    wrong = BadQuery("bboxes must be a list of [x1, y1, x2, y2] (finite numbers)")
    if not isinstance(value, list):
        raise wrong
    if len(value) > MAX_BOXES:
        raise BadQuery(f"{len(value)} bboxes is over the limit of {MAX_BOXES} per query")
    for box in value:
        if not isinstance(box, list) or len(box) != 4 or not all(map(_finite, box)):
            raise wrong
    return [[float(v) for v in box] for box in value]


def _shape(value: Any) -> str:
    if not isinstance(value, str) or value not in ov.KINDS:
        shown = repr(_short(value)) if isinstance(value, str) else _kind(value)
        raise BadQuery(f"unknown shape {shown}: use one of {', '.join(ov.KINDS)}")
    return value


def _labels(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise BadQuery(f"labels must be a list of strings, got {_kind(value)}")
    if len(value) > MAX_BOXES:
        raise BadQuery(f"{len(value)} labels is over the limit of {MAX_BOXES} per query")
    return list(value)


def _settings(value: Any, defaults: GenerationSettings) -> GenerationSettings:
    if value is None:
        return defaults
    if not isinstance(value, dict):
        raise BadQuery(f"settings must be a JSON object, got {_kind(value)}")
    try:
        return defaults.replace(**value)
    except (InvalidRequest, TypeError) as exc:
        message = str(exc)
        if not message.startswith("settings"):
            message = f"settings: {message}"
        raise BadQuery(message) from None


def _seed(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise BadQuery(f"seed must be an integer from 0 to 2**63 - 1, got {_kind(value)}")
    return value


def _finite(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _shallow(value: Any) -> bool:
    """Whether ``value`` nests at most MAX_DEPTH containers deep (without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list):
            continue
        children = item.values() if isinstance(item, dict) else item
        if children and depth > MAX_DEPTH:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


_INVALID_TEXT = (
    "is not valid Unicode text (it holds a lone surrogate such as \\ud800): "
    "fix the program that wrote the file"
)


def _valid_text(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _all_text_valid(value: Any) -> bool:
    """Whether every string in ``value`` (keys included) encodes to UTF-8; depth already bounded."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not _valid_text(item):
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kind(value: Any) -> str:
    """A value as shown in an error message: short, and never the user's huge text."""
    if isinstance(value, str):
        return repr(_short(value))
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return _short(str(value), 30) if value.bit_length() < 10_000 else "a huge integer"
    if isinstance(value, float):
        return repr(value)
    return f"a JSON {'object' if isinstance(value, dict) else 'list'}"


__all__ = [
    "MAX_DEPTH",
    "MAX_LINE_BYTES",
    "QUERY_KEYS",
    "VIDEO_KEYS",
    "BadQuery",
    "Query",
    "count_lines",
    "parse_query",
    "read_lines",
]
