"""Selection, grouping, dedup and the split, against a real log."""

from __future__ import annotations

from pathlib import Path

import pytest
from dg_fixtures import Sample, ask, copy_photos

import overlays as ov
from data_gen.errors import InvalidSelection
from data_gen.qalog.log import QALog
from data_gen.records import Selection, Tally, choose_val_images, iter_conversations


def _convs(log: QALog, **kw: object) -> tuple[list, Tally]:
    tally = Tally()
    selection = kw.pop("selection", Selection())
    convs = list(iter_conversations(log, selection, tally=tally, **kw))  # type: ignore[arg-type]
    return convs, tally


def test_conversations_group_correct_and_drop(sample: Sample) -> None:
    convs, tally = _convs(sample.log)
    by_first = {c.first_turn: c for c in convs}
    cup = by_first[sample.turns["cup1"]]
    # Same session, same prompts → one conversation, in order; the corrected answer is used,
    # the rejected turn is left out, the repeated identical turn is dropped.
    assert [e.turn_id for e in cup.exchanges] == [sample.turns["cup1"], sample.turns["cup2"]]
    assert cup.exchanges[1].answer == "It looks hot: there is steam."
    assert all("banana" not in e.answer for c in convs for e in c.exchanges)
    # Another drawing in the same session is another conversation.
    assert sample.turns["saucer"] in by_first
    # The re-run batch session holds exactly the same conversation: dropped.
    assert len(convs) == 5
    assert tally.skipped["rejected turn"] == 1
    assert tally.skipped["duplicate turn"] == 1
    assert tally.skipped["duplicate conversation"] == 1
    assert tally.counts["turns in duplicate conversations"] == 2


def test_regions_are_clipped_to_their_image(sample: Sample) -> None:
    convs, _ = _convs(sample.log)
    cat = next(c for c in convs if c.first_turn == sample.turns["cat"])
    assert cat.image_size == (451, 300)
    assert cat.regions[0].box == (100, 50, 451, 300)
    for conv in convs:
        w, h = conv.image_size
        for region in conv.regions:
            x1, y1, x2, y2 = region.box
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h


def test_filters(sample: Sample) -> None:
    def firsts(**kw: object) -> set[int]:
        convs, _ = _convs(sample.log, selection=Selection(**kw))  # type: ignore[arg-type]
        return {c.first_turn for c in convs}

    assert firsts(review=("accepted",)) == {sample.turns["cat"]}
    assert firsts(model="vip-llava-13b") == {sample.turns["cat"]}
    assert firsts(source="server") == {sample.turns["whole"]}
    assert firsts(tag="hard") == {sample.turns["saucer"]}
    assert len(firsts(since="2000-01-01")) == 5
    assert firsts(until="2000-01-01") == set()
    edited = firsts(review=("edited",))
    assert edited == {sample.turns["cup2"]}


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"review": ("rejected",)}, "never exported"),
        ({"review": ("nope",)}, "unknown review status"),
        ({"since": "yesterday"}, "not a date"),
        ({"since": "2026-02-01", "until": "2026-01-01"}, "not before"),
    ],
)
def test_bad_selections_say_what_to_do(kw: dict, message: str) -> None:
    with pytest.raises(InvalidSelection, match=message):
        Selection(**kw)


def test_split_is_by_image_reproducible_and_exact(tmp_path: Path) -> None:
    photos = copy_photos(tmp_path / "photos")
    with QALog.open(tmp_path / "log.sqlite") as log:
        # 20 distinct "images" (same pixels, different bytes → different hashes), 3 sessions each
        for i in range(20):
            path = tmp_path / f"img{i}.jpg"
            path.write_bytes(photos["coffee"].read_bytes() + i.to_bytes(2, "big"))
            image = log.add_image(path)
            for j in range(3):
                session = log.start_session(image.id)
                box = [ov.Rectangle((10 + j, 10, 200, 200))]
                ask(log, session, box, "What is <region>?", f"thing {i} {j}")
        first, _ = _convs(log, val_fraction=0.25, seed=7)
        again, _ = _convs(log, val_fraction=0.25, seed=7)
        other, _ = _convs(log, val_fraction=0.25, seed=8)
    split = {c.key: c.split for c in first}
    assert split == {c.key: c.split for c in again}
    val_images = {c.image_id for c in first if c.split == "val"}
    train_images = {c.image_id for c in first if c.split == "train"}
    assert len(val_images) == 5 and len(train_images) == 15
    assert not val_images & train_images
    assert val_images != {c.image_id for c in other if c.split == "val"}


def test_choose_val_images_edge_cases() -> None:
    images = {1: "a", 2: "b", 3: "c"}
    assert choose_val_images(images, 0.0, 0) == set()
    assert len(choose_val_images(images, 0.01, 0)) == 1  # at least one when asked for some
    assert len(choose_val_images(images, 0.99, 0)) == 2  # at least one image left to train
    assert choose_val_images({1: "a"}, 0.5, 0) == set()
    with pytest.raises(InvalidSelection):
        choose_val_images(images, 1.0, 0)


def test_an_image_marker_typed_in_the_text_is_skipped_with_its_reason(tmp_path: Path) -> None:
    """An export never holds more ``<image>`` markers than images: a question or a corrected
    answer that spells one is left out, and the summary says why."""
    photos = copy_photos(tmp_path / "photos")
    with QALog.open(tmp_path / "log.sqlite") as log:
        image = log.add_image(photos["coffee"])
        sid = log.start_session(image.id, source="gui")
        cup = [ov.Rectangle((180, 20, 420, 230))]
        kept = ask(log, sid, cup, "What is <region>?", "A cup.")
        in_question = ask(log, sid, cup, "Is <image> a cup?", "Yes.")
        corrected = ask(log, sid, cup, "Is it hot?", "No.")
        log.review(corrected, "edited", "See <image>: it steams.")
        convs, tally = _convs(log)
    assert [e.turn_id for c in convs for e in c.exchanges] == [kept]
    assert tally.skipped["'<image>' typed in the text"] == 2
    assert tally.examples["'<image>' typed in the text"] == [
        f"turn {in_question}",
        f"turn {corrected}",
    ]
