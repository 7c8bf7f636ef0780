"""The conversation on the current image: which turns a follow-up continues, what to ask. Qt-free.

A session is a run of turns on the same image *and* the same prompts (a changed drawing is a
different image to the model, so it starts a new session). Rejected and cancelled answers are
not fed back to the model; a regenerated answer replaces the one before it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import overlays as ov
from app.gui.settings import Generation
from data_gen.qalog.log import TurnRow
from vip_model.engine import GenerationSettings
from vip_model.templates import Turn

REGENERATED_TAG = "regenerated"


def history(turns: Sequence[TurnRow]) -> tuple[Turn, ...]:
    """The (question, answer) pairs a follow-up in this session continues from."""
    kept: list[TurnRow] = []
    for row in sorted(turns, key=lambda r: r.idx):
        if row.review == "rejected" or row.finish_reason == "cancelled":
            continue
        if not row.final_answer.strip():
            continue
        if REGENERATED_TAG in row.tags and kept and kept[-1].question == row.question:
            kept[-1] = row
            continue
        kept.append(row)
    return tuple(Turn(r.question, r.final_answer) for r in kept)


def settings_for(gen: Generation, *, regenerate: bool = False) -> GenerationSettings:
    """Engine settings from the user's; a regeneration of a greedy answer samples instead
    (greedy decoding would only repeat it) with a fresh seed."""
    temperature, top_p, seed = gen.temperature, gen.top_p, gen.seed
    if regenerate:
        if temperature == 0:
            temperature, top_p = 0.7, min(top_p, 0.9)
        seed = random.randrange(2**31)
    return GenerationSettings(
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=gen.max_new_tokens,
        num_beams=gen.num_beams,
        repetition_penalty=gen.repetition_penalty,
        seed=seed,
    )


@dataclass
class Conversation:
    """The session a next question belongs to, and its turns so far."""

    image_id: int | None = None
    session_id: int | None = None
    prompts: tuple[ov.Prompt, ...] = ()
    turns: list[TurnRow] = field(default_factory=list)

    def continues(self, prompts: Sequence[ov.Prompt]) -> bool:
        """Whether a question about ``prompts`` follows up this session."""
        return self.session_id is not None and tuple(prompts) == self.prompts

    def start_over(self, prompts: Sequence[ov.Prompt] = ()) -> None:
        self.session_id = None
        self.prompts = tuple(prompts)
        self.turns = []

    def resume(self, session_id: int | None, all_turns: Sequence[TurnRow]) -> None:
        """Continue ``session_id`` (from a draft) or else the newest session on the image."""
        if session_id is None and all_turns:
            session_id = max(all_turns, key=lambda r: r.id).session_id
        mine = [t for t in all_turns if t.session_id == session_id]
        if session_id is None or not mine:
            self.start_over()
            return
        self.session_id = session_id
        self.turns = sorted(mine, key=lambda r: r.idx)
        self.prompts = tuple(self.turns[0].prompts)

    def add(self, row: TurnRow) -> None:
        self.session_id = row.session_id
        if not self.turns:
            self.prompts = tuple(row.prompts)
        self.turns.append(row)

    def history(self) -> tuple[Turn, ...]:
        return history(self.turns)


def insert_phrase(text: str, cursor: int, phrase: str) -> tuple[str, int]:
    """``phrase`` inserted at ``cursor`` with sensible spaces; returns (text, new cursor)."""
    before, after = text[:cursor], text[cursor:]
    if before and not before.endswith((" ", "\n", "(", '"')):
        phrase = " " + phrase
    if after and not after.startswith((" ", ",", ".", "?", "!", ")", "\n")):
        phrase = phrase + " "
    return before + phrase + after, len(before) + len(phrase)


def follow_phrase(
    text: str, old: ov.Prompt, new: ov.Prompt, others: Sequence[ov.Prompt] = ()
) -> str:
    """``text`` with the mark of ``old`` ("red rectangle") renamed to that of ``new`` after a
    recolour, so that the question keeps naming the same region. Unchanged when the colour
    did not change, or when one of ``others`` still carries the old mark (it may mean that one).
    """
    before, after = old.style.color_name, new.style.color_name
    if old.kind != new.kind or before is None or before == after:
        return text
    if any(p.kind == old.kind and p.style.color_name == before for p in others):
        return text
    shape = ov.SHAPE_WORDS[old.kind][1]
    mark = f"{after} {shape}" if after else shape
    return re.sub(rf"\b{re.escape(before)} {re.escape(shape)}\b", mark, text, flags=re.IGNORECASE)
