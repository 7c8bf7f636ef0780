"""Conversation templates: how a question and the turns before it become the model's text.

Two named forms (docs/VIP_FACTS.md §4):

- ``llava_v1`` (default): the LLaVA "v1" conversation ViP-LLaVA was fine-tuned with. It is the
  original ``SeparatorStyle.TWO`` rendering: system text, a space, then
  ``USER: <image>\\n{q} ASSISTANT: {a}</s>USER: {q2} ASSISTANT:`` — the space separates a
  question from its answer, ``</s>`` ends each answer (and is the tokenizer's eos token).
- ``hf_card``: the form of the Hugging Face model card,
  ``{system}###Human: <image>\\n{q}###Assistant: {a}###Human: {q2}###Assistant:``.
  The model was not trained on it, so generation also stops at the string ``###``.

``<image>`` appears once, at the start of the first human turn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from vip_model.errors import InvalidRequest

IMAGE_TOKEN = "<image>"
#: The answer end of ``llava_v1`` (the Llama eos token).
EOS_TOKEN = "</s>"
#: Tokens a template places itself; the same strings in user text are tokenised as text.
CONTROL_TOKENS = (IMAGE_TOKEN, EOS_TOKEN)

#: A stretch of prompt: ``(text, is_control)``.
Piece = tuple[str, bool]

#: The system text of LLaVA v1 (and of the model card).
SYSTEM_TEXT = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation: the question asked and the answer given."""

    question: str
    answer: str

    def __post_init__(self) -> None:
        for name in ("question", "answer"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidRequest(
                    f"a turn's {name} must be non-empty text, got {value!r}: "
                    "drop turns that have no answer (e.g. cancelled ones) from the history"
                )
            if IMAGE_TOKEN in value:
                raise InvalidRequest(f"a turn's {name} must not contain {IMAGE_TOKEN!r}")

    def to_dict(self) -> dict[str, str]:
        return {"question": self.question, "answer": self.answer}

    @classmethod
    def from_dict(cls, data: Any) -> Turn:
        """A turn from ``{"question": ..., "answer": ...}``; other keys are an error."""
        if not isinstance(data, dict) or set(data) != {"question", "answer"}:
            raise InvalidRequest(f'a turn must be {{"question": ..., "answer": ...}}, got {data!r}')
        return cls(question=data["question"], answer=data["answer"])


@dataclass(frozen=True)
class Template:
    """A LLaVA ``Conversation`` rendering: roles, separators, and where to stop generating."""

    name: str
    description: str
    system: str
    roles: tuple[str, str]
    style: Literal["two", "single"]
    sep: str
    sep2: str = ""
    stop_strings: tuple[str, ...] = ()

    def prompt(self, history: Sequence[Turn], question: str) -> str:
        """The text for ``question`` after the ``history`` turns, ending where the answer begins."""
        return "".join(text for text, _ in self.pieces(history, question))

    def pieces(self, history: Sequence[Turn], question: str) -> list[Piece]:
        """The prompt as ``(text, is_control)`` pieces, in order.

        Control pieces are the tokens the template itself places (``<image>`` and the answer
        end ``</s>``); every other piece is text, template words and user text together, to be
        tokenised as text even where it spells a control token. This is what the original
        ``tokenizer_image_token`` fed its legacy tokenizer: each stretch between two control
        tokens tokenised on its own (docs/VIP_FACTS.md §8).
        """
        question = question.strip()
        if not question:
            raise InvalidRequest("the question is empty: type a question about the marked image")
        if IMAGE_TOKEN in question:
            raise InvalidRequest(
                f"the question must not contain {IMAGE_TOKEN!r}: the image is placed for you"
            )
        user, assistant = self.roles
        messages: list[tuple[str, str | None]] = []
        for turn in history:
            messages += [(user, turn.question.strip()), (assistant, turn.answer.strip())]
        messages += [(user, question), (assistant, None)]
        # The loops below are LLaVA's ``Conversation.get_prompt`` for the two separator styles,
        # with the control tokens kept apart from the text around them.
        out: list[Piece] = [(self.system + self.sep, False)]

        def text(value: str) -> None:
            if out[-1][1]:
                out.append((value, False))
            else:
                out[-1] = (out[-1][0] + value, False)

        for i, (role, message) in enumerate(messages):
            if message is None:
                text(role + ":")
                continue
            text(role + ": ")
            if i == 0:
                out.append((IMAGE_TOKEN, True))
                text("\n")
            text(message)
            sep = (self.sep, self.sep2)[i % 2] if self.style == "two" else self.sep
            if sep in CONTROL_TOKENS:
                out.append((sep, True))
            else:
                text(sep)
        return out


LLAVA_V1 = Template(
    name="llava_v1",
    description="LLaVA v1, what ViP-LLaVA was fine-tuned with (default)",
    system=SYSTEM_TEXT,
    roles=("USER", "ASSISTANT"),
    style="two",
    sep=" ",
    sep2=EOS_TOKEN,
)

HF_CARD = Template(
    name="hf_card",
    description="the Hugging Face model card's ###Human/###Assistant form",
    system=SYSTEM_TEXT,
    roles=("Human", "Assistant"),
    style="single",
    sep="###",
    stop_strings=("###",),
)

TEMPLATES: dict[str, Template] = {t.name: t for t in (LLAVA_V1, HF_CARD)}
DEFAULT_TEMPLATE = LLAVA_V1.name


#: A Jinja chat template rendering :data:`LLAVA_V1` (for ``apply_chat_template``, TRL and other
#: tools that read a model folder's ``chat_template.json``): the same text as
#: ``LLAVA_V1.prompt`` for a conversation whose first user message holds the image; each answer
#: ends with ``</s>`` and is marked for assistant-only training (``{% generation %}``). A system
#: message replaces the default system text.
LLAVA_V1_CHAT_TEMPLATE = (
    "{%- set ns = namespace(system=" + json.dumps(SYSTEM_TEXT) + ") -%}"
    "{%- macro text(content) -%}"
    "{%- if content is string -%}{{- content | trim -}}"
    "{%- else -%}{{- content | selectattr('type', 'equalto', 'text') | map(attribute='text')"
    " | join(' ') | trim -}}{%- endif -%}"
    "{%- endmacro -%}"
    "{%- for message in messages if message['role'] == 'system' -%}"
    "{%- set ns.system = text(message['content']) -%}"
    "{%- endfor -%}"
    "{{- ns.system + ' ' -}}"
    "{%- for message in messages if message['role'] != 'system' -%}"
    "{%- if message['role'] == 'user' -%}"
    "{{- 'USER: ' -}}"
    "{%- if message['content'] is not string -%}"
    "{%- for part in message['content'] if part['type'] == 'image' -%}{{- '<image>\n' -}}"
    "{%- endfor -%}{%- endif -%}"
    "{{- text(message['content']) + ' ' -}}"
    "{%- else -%}"
    "{{- 'ASSISTANT: ' -}}{%- generation -%}{{- text(message['content']) + '</s>' -}}"
    "{%- endgeneration -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- 'ASSISTANT:' -}}{%- endif -%}"
)


def get_template(name: str) -> Template:
    """The template called ``name``; :class:`InvalidRequest` lists the known names otherwise."""
    try:
        return TEMPLATES[name]
    except (KeyError, TypeError):
        known = ", ".join(TEMPLATES)
        raise InvalidRequest(f"unknown template {name!r}: use one of {known}") from None


def build_prompt(history: Sequence[Turn], question: str, template: str = DEFAULT_TEMPLATE) -> str:
    """Shortcut for ``get_template(template).prompt(history, question)``."""
    return get_template(template).prompt(history, question)


__all__ = [
    "CONTROL_TOKENS",
    "DEFAULT_TEMPLATE",
    "EOS_TOKEN",
    "HF_CARD",
    "IMAGE_TOKEN",
    "LLAVA_V1",
    "LLAVA_V1_CHAT_TEMPLATE",
    "SYSTEM_TEXT",
    "TEMPLATES",
    "Piece",
    "Template",
    "Turn",
    "build_prompt",
    "get_template",
]
