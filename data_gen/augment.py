"""Augmentation: the same regions redrawn with other prompt kinds, colours and widths.

For a conversation with prompts, variant ``j`` (1..K) redraws every region with a kind other
than the logged one (each region walks through the other kinds in an order drawn from the
seed, so K ≤ 7 variants never repeat a kind) and a style drawn from the training distribution
(:func:`overlays.generate_sampled`). Several regions get distinct named colours. The texts are
rewritten to the new marks ("the red rectangle" → "the blue arrow"; an unnamed colour → "the
arrow"). Everything derives from ``(seed, first turn id, j)``: the same inputs give the same
samples in any process.
"""

from __future__ import annotations

import random

import overlays as ov
from data_gen.records import Conversation
from data_gen.refs import answer_refs, redraw_text
from overlays import Prompt

_TRIES = len(ov.KINDS)


def _rng(seed: int, turn_id: int, tail: str) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`: stable across runs and processes.
    return random.Random(f"vipstudio.augment/{seed}/{turn_id}/{tail}")


def kind_order(kind: str, seed: int, turn_id: int, region: int) -> list[str]:
    """The other kinds, in the order variants use them for this region."""
    others = [k for k in ov.KINDS if k != kind]
    _rng(seed, turn_id, f"kinds{region}").shuffle(others)
    return others


def redrawn_prompts(conversation: Conversation, variant: int, seed: int) -> tuple[Prompt, ...]:
    """Variant ``variant`` (from 1) of the conversation's prompts, reproducible from ``seed``."""
    if variant < 1:
        raise ValueError("variants are numbered from 1 (0 is the logged drawing)")
    turn = conversation.first_turn
    rng = _rng(seed, turn, f"variant{variant}")
    out: list[Prompt] = []
    for i, (prompt, region) in enumerate(
        zip(conversation.prompts, conversation.regions, strict=True)
    ):
        order = kind_order(prompt.kind, seed, turn, i)
        new: Prompt | None = None
        for attempt in range(_TRIES):
            kind = order[(variant - 1 + attempt) % len(order)]
            try:
                new = ov.generate_sampled(
                    kind, region, conversation.image_size, rng, label=prompt.label
                )
                break
            except ov.InvalidPrompt:
                continue  # e.g. a region too thin for a triangle: take the next kind
        out.append(new if new is not None else prompt)
    if len(out) > 1:
        out = ov.assign_distinct_colors(out)
    return tuple(out)


def redrawn_texts(
    conversation: Conversation, prompts: tuple[Prompt, ...]
) -> tuple[tuple[str, str], ...]:
    """The conversation's questions and answers, naming the marks of ``prompts`` instead."""
    old = conversation.prompts
    return tuple(
        (
            redraw_text(e.question, e.question_refs, old, prompts),
            redraw_text(e.answer, answer_refs(e.answer, old), old, prompts),
        )
        for e in conversation.exchanges
    )
