"""Helpers of the data_gen tests: a real Q&A log, filled through the log's API with the sample
photos (copied, so a test may damage its own copy), the way the GUI, CLI and batch write it."""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import overlays as ov
from data_gen.qalog.log import NewTurn, QALog

SAMPLES = Path(__file__).resolve().parents[2] / "assets" / "samples"


def ask(
    log: QALog,
    session: int,
    prompts: list[ov.Prompt],
    question: str,
    answer: str,
    **kw: object,
) -> int:
    """Log a turn as a client does: placeholders composed into phrases, refs stored."""
    text, refs = ov.compose_question(question, prompts)
    turn = NewTurn(
        session_id=session,
        prompts=prompts,
        question=text,
        question_refs=refs,
        answer=answer,
        model=str(kw.pop("model", "vip-llava-7b")),
        template="llava_v1",
        **kw,  # type: ignore[arg-type]
    )
    return log.add_turn(turn)


@dataclass
class Sample:
    """A populated log and what went into it."""

    path: Path
    log: QALog
    photos: dict[str, Path]
    turns: dict[str, int] = field(default_factory=dict)
    sessions: dict[str, int] = field(default_factory=dict)


def copy_photos(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for src in sorted(SAMPLES.glob("*.jpg")):
        out[src.stem] = Path(shutil.copy(src, folder / src.name))
    return out


def populate(log: QALog, photos: dict[str, Path]) -> Sample:
    s = Sample(Path(log.path), log, photos)
    img = {name: log.add_image(path) for name, path in photos.items()}

    # coffee (600×400): one cup, three questions, the second corrected, the third rejected;
    # then a second drawing in the same session: another conversation.
    cup = [ov.Rectangle((180, 20, 420, 230), label="cup")]
    sid = s.sessions["coffee"] = log.start_session(img["coffee"].id, source="gui")
    s.turns["cup1"] = ask(log, sid, cup, "What is <region>?", "A cup of coffee.")
    s.turns["cup2"] = ask(log, sid, cup, "Is the red rectangle hot?", "It is cold.")
    log.review(s.turns["cup2"], "edited", "It looks hot: there is steam.")
    s.turns["cup3"] = ask(log, sid, cup, "Describe <region>.", "A banana.")
    log.review(s.turns["cup3"], "rejected")
    s.turns["cup1-again"] = ask(log, sid, cup, "What is <region>?", "A cup of coffee.")
    saucer = [ov.Ellipse((150, 180, 460, 300))]
    s.turns["saucer"] = ask(log, sid, saucer, "What is <region>?", "A saucer.", tags=["hard"])

    # The same conversation in another session (a re-run batch): an exact duplicate.
    dup = log.start_session(img["coffee"].id, source="batch")
    s.turns["dup"] = ask(log, dup, cup, "What is <region>?", "A cup of coffee.", source="batch")
    ask(log, dup, cup, "Is the red rectangle hot?", "It looks hot: there is steam.", source="batch")

    # chelsea: two regions in one question (distinct colours), a box reaching outside the image.
    cat = ov.assign_distinct_colors(
        [
            ov.Rectangle((100, 50, 700, 350), label="cat"),
            ov.Arrow((420, 60), (300, 120)),
        ]
    )
    sid = s.sessions["chelsea"] = log.start_session(img["chelsea"].id, source="cli")
    s.turns["cat"] = ask(
        log,
        sid,
        cat,
        "Is <region0> looking at <region1>?",
        "No, the red rectangle holds a cat looking away.",
        model="vip-llava-13b",
        source="cli",
    )
    log.review(s.turns["cat"], "accepted")

    # astronaut: a whole-image question, no prompt, asked through a server of an earlier version
    # (which logged its turns as "server": no longer written, still read).
    sid = s.sessions["astronaut"] = log.start_session(img["astronaut"].id, source="cli")
    s.turns["whole"] = ask(log, sid, [], "What is in this photo?", "An astronaut.", source="cli")
    relabel_as_legacy_server(log.path, sid)

    # rocket: a polygon (mask), marked with a mask contour.
    rocket = ov.Region.from_polygons([((200, 50), (260, 50), (270, 300), (190, 300))])
    sid = s.sessions["rocket"] = log.start_session(img["rocket"].id, source="gui")
    size = (img["rocket"].width, img["rocket"].height)
    contour = ov.generate("contour", rocket, size, rng=3, label="rocket")
    s.turns["rocket"] = ask(log, sid, [contour], "Describe <region>.", "A rocket on its pad.")
    return s


def relabel_as_legacy_server(path: str | Path, session_id: int) -> None:
    """Mark a session and its turns as written by a server of an earlier version (source
    "server"), as such logs hold them: straight into the file, as that version did."""
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE sessions SET source = 'server' WHERE id = ?", (session_id,))
        conn.execute("UPDATE turns SET source = 'server' WHERE session_id = ?", (session_id,))
    conn.close()
