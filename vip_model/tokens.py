"""Prompt text to token ids, laid out as the original ViP-LLaVA laid them out for training.

The original (``llava.mm_utils.tokenizer_image_token`` with transformers 4.37's slow Llama
tokenizer in legacy mode) splits the prompt at ``<image>`` and tokenises each part on its own;
inside a part, the legacy tokenizer also tokenises the text after each ``</s>`` on its own. Every
stretch of text between two control tokens therefore starts with SentencePiece's ``▁``:
``… USER: ▁ <image> ▁ \\n What …`` and ``…</s> ▁US ER: …``. A non-legacy tokenizer (what the
llava-hf tokenizer configs ask for) drops those ``▁`` after a control token: 624 prompt tokens
instead of 625 for one turn (docs/VIP_FACTS.md §8).

:func:`encode_pieces` rebuilds the original layout from the template's pieces whatever the
tokenizer's ``legacy`` flag: each text piece is tokenised alone, the control tokens the template
placed are inserted by id. Text pieces are tokenised with special tokens split off, so a
``</s>``, ``<s>`` or ``<pad>`` typed by a person stays text and never becomes a control token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vip_model.errors import ModelError
from vip_model.templates import IMAGE_TOKEN, Piece


def control_token_id(tokenizer: Any, token: str) -> int:
    """The id of a control token the template places; :class:`ModelError` if the tokenizer
    does not know it as one token (a checkpoint whose tokenizer does not fit ViP-LLaVA)."""
    found = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(found, int) or found == tokenizer.unk_token_id:
        raise ModelError(
            f"the model's tokenizer has no {token!r} token: this checkpoint does not look like "
            "ViP-LLaVA (llava-hf/vip-llava-*-hf); use one of those or a folder made from them"
        )
    return found


def encode_text(tokenizer: Any, text: str, *, first: bool = False) -> list[int]:
    """``text`` tokenised on its own, as text: control-token spellings inside it are split into
    ordinary pieces. ``first`` adds the tokenizer's leading special tokens (``<s>``)."""
    if not text and not first:
        return []
    ids: list[int] = tokenizer(text, add_special_tokens=first, split_special_tokens=True)[
        "input_ids"
    ]
    return ids


def encode_pieces(
    tokenizer: Any, pieces: Sequence[Piece], image_id: int, image_tokens: int
) -> list[int]:
    """The model input for a template's ``pieces``: ``<s>``, each text piece tokenised on its
    own, each ``<image>`` expanded to ``image_tokens`` copies of ``image_id``."""
    ids: list[int] = []
    for index, (text, control) in enumerate(pieces):
        if not control:
            ids += encode_text(tokenizer, text, first=index == 0)
        elif text == IMAGE_TOKEN:
            ids += [image_id] * image_tokens
        else:
            ids.append(control_token_id(tokenizer, text))
    return ids


__all__ = ["control_token_id", "encode_pieces", "encode_text"]
