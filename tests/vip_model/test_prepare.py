"""The one preparation beneath every door (`vip_model.prepare`): one seed rule for prompts made
from regions, the question's references composed, one answer record shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

import overlays as ov
from app.batch import prepare
from app.batch_query import parse_query
from app.cmd_render import build_prompts
from data_gen.qalog.log import QALog, file_sha256
from data_gen.queries import region_queries
from vip_model.engine import Answer, GenerationSettings, Timings
from vip_model.prepare import AnswerRecord, prepare_request, region_prompt

SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "samples" / "coffee.jpg"
BOXES = ((30.0, 40.0, 200.0, 180.0), (220.0, 60.0, 380.0, 250.0))


def _render_prompts(boxes: tuple[tuple[float, ...], ...], shape: str, seed: int) -> list:
    size = ov.load_image(SAMPLE).size
    flags = tuple(",".join(f"{v:g}" for v in b) for b in boxes)
    return build_prompts(size, flags, shape, (), (), (), (), None, None, seed, None)


def _batch_prompts(boxes: tuple[tuple[float, ...], ...], shape: str, seed: int) -> list:
    line = (
        f'{{"id": "q", "image": "{SAMPLE}", "question": "What is <region0>?", '
        f'"bboxes": {[list(b) for b in boxes]}, "shape": "{shape}", "seed": {seed}}}'
    )
    query = parse_query(line, SAMPLE.parent, GenerationSettings())
    return list(prepare(query, "llava_v1", ov.MAX_PIXELS).request.prompts)


def _import_prompts(tmp_path: Path, box: tuple[float, ...], shape: str, seed: int) -> list:
    image = ov.load_image(SAMPLE)
    with QALog.open(tmp_path / "log.sqlite") as log:
        with log.batch() as batch:
            row = batch.add_image(SAMPLE, image.size, file_sha256(SAMPLE))
            batch.add_region(row.id, ov.Region(box))  # type: ignore[arg-type]
        (query,) = region_queries(log, question="What is <region>?", shape=shape, seed=seed)
    return [ov.prompt_from_dict(d) for d in query["prompts"]]


@pytest.mark.parametrize("shape", ["arrow", "scribble", "ellipse"])
def test_render_batch_and_import_queries_draw_the_same_prompts(tmp_path: Path, shape: str) -> None:
    # Two boxes in one request: the second prompt must not depend on the first's draws.
    rendered = _render_prompts(BOXES, shape, seed=7)
    batched = _batch_prompts(BOXES, shape, seed=7)
    assert [ov.prompt_to_dict(p) for p in rendered] == [ov.prompt_to_dict(p) for p in batched]
    # One region per imported query: drawn as `render --bbox` draws that box alone.
    (alone,) = _render_prompts(BOXES[1:], shape, seed=7)
    (imported,) = _import_prompts(tmp_path, BOXES[1], shape, seed=7)
    assert ov.prompt_to_dict(imported) == ov.prompt_to_dict(alone)


def test_a_regions_prompt_depends_on_its_index_not_on_the_others() -> None:
    size = (400, 300)
    region = ov.Region(BOXES[1])
    second = region_prompt("arrow", region, size, seed=3, index=1)
    assert second == region_prompt("arrow", region, size, seed=4, index=0)
    assert second != region_prompt("arrow", region, size, seed=3, index=0)


def test_prepare_request_composes_the_references_and_fits_the_prompts() -> None:
    image = ov.load_image(SAMPLE)
    w, h = image.size
    inside = ov.Rectangle((10, 10, 100, 100))
    beyond = ov.Rectangle(
        (w - 50, h - 50, w + 40, h + 40), region=ov.Region((w - 50, h - 50, w + 40, h + 40))
    )
    prepared = prepare_request(image, "What is <region0> next to <region1>?", [inside, beyond])
    request = prepared.request
    assert request.question == (
        "What is the object within the red rectangle next to the object within the red rectangle?"
    )
    assert [request.question[r.start : r.end] for r in prepared.refs] == [
        "the object within the red rectangle"
    ] * 2
    assert request.prompts[1].region == ov.Region((w - 50, h - 50, w, h))  # clipped, as stored
    with pytest.raises(ov.InvalidPrompt, match="region 2"):
        prepare_request(image, "What is <region2>?", [inside])


def test_the_batch_line_is_the_ask_json_record_plus_its_id() -> None:
    image = ov.load_image(SAMPLE)
    request = prepare_request(image, "What is <region0>?", [ov.Rectangle((5, 5, 50, 50))]).request
    answer = Answer("a cup", "stop", 30, 2, 0, Timings(0.0, 0.1, 0.2, 10.0), model="tiny")
    single = AnswerRecord.of("x.jpg", request, answer, model="tiny", turn_id=4).to_dict()
    line = AnswerRecord.of("x.jpg", request, answer, model="tiny", turn_id=4, id="q1").to_dict()
    assert line == {"id": "q1", **single}
    assert next(iter(line)) == "id" and "id" not in single
    assert single["phrases"] == ["the object within the red rectangle"]
    assert single["timings"]["ttft_s"] == 0.1 and single["completion_tokens"] == 2


# What `ask --json` printed for an image before video records existed (issue 14): unchanged.
_IMAGE_RECORD = (
    '{"image": "x.jpg", "question": "What is the object within the red rectangle?", '
    '"answer": "a cup", "prompts": [{"kind": "rectangle", "box": [5.0, 5.0, 50.0, 40.0], '
    '"style": {"color": "red", "alpha": 128, "width": 3.0}, "label": null, "region": null}], '
    '"phrases": ["the object within the red rectangle"], "model": "tiny", '
    '"finish_reason": "stop", "turn_id": 4, "prompt_tokens": 30, "completion_tokens": 2, '
    '"cached_tokens": 0, "timings": {"load_s": 0.0, "ttft_s": 0.1, "total_s": 0.2, '
    '"tokens_per_s": 10.0}}'
)


def test_an_image_record_is_byte_identical_and_a_frame_record_names_video_frame_and_time() -> None:
    image = Image.new("RGB", (64, 48), "white")
    request = prepare_request(image, "What is <region0>?", [ov.Rectangle((5, 5, 50, 40))]).request
    answer = Answer("a cup", "stop", 30, 2, 0, Timings(0.0, 0.1, 0.2, 10.0), model="tiny")
    record = AnswerRecord.of("x.jpg", request, answer, model="tiny", turn_id=4)
    assert json.dumps(record.to_dict(), ensure_ascii=False) == _IMAGE_RECORD
    frame = AnswerRecord.of(
        "/v/clip.mp4#frame=30", request, answer, model="tiny", turn_id=5,
        video="/v/clip.mp4", frame=30, t=1.25,
    ).to_dict()  # fmt: skip
    assert list(frame)[:4] == ["image", "video", "frame", "t"]
    assert (frame["video"], frame["frame"], frame["t"]) == ("/v/clip.mp4", 30, 1.25)
    assert frame["answer"] == "a cup" and frame["prompts"] == record.to_dict()["prompts"]
    # frame 0 at t=0 is still written (set, though falsy)
    first = AnswerRecord.of("c#frame=0", request, answer, model="m", turn_id=None, video="c",
                            frame=0, t=0.0).to_dict()  # fmt: skip
    assert (first["frame"], first["t"]) == (0, 0.0)
