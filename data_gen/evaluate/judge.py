"""Grading answers with any OpenAI-compatible chat model, the way ViP-Bench does.

The prompt and the protocol are those of ViP-Bench's evaluator
(mu-cai/ViP-LLaVA ``scripts/eval/vip-bench_evaluator.py``): the grading table below, then the
row ``question | ground truth (" <AND> "/" <OR> " spaced) | prediction | `` for the judge to
complete, at temperature 0 with 3 tokens. The grade is the reply's first word as a number in
0.0–1.0; otherwise it asks again with "Predict the correctness of the answer (digit): "
appended, 0.5 warmer each time, and after 5 tries the grade is 0.0 — recorded as unparsed so
the report can say how many grades were guesses.
"""

from __future__ import annotations

import base64
import math
import mimetypes
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from data_gen.errors import DataGenError

GRADING_PROMPT = """Compare the ground truth and prediction from AI models, to give a correctness score for the prediction. <AND> in the ground truth means it is totally right only when all elements in the ground truth are present in the prediction, and <OR> means it is totally right when any one element in the ground truth is present in the prediction. The correctness score is 0.0 (totally wrong), 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, or 1.0 (totally right). Just complete the last space of the correctness score.

Question | Ground truth | Prediction | Correctness
--- | --- | --- | ---
What is x in the equation within the yellow rectangle? | -1 <AND> -5 | x = 3 | 0.0
What is x in the equation within the yellow rectangle? | -1 <AND> -5 | x = -1 | 0.5
What is x in the equation within the yellow rectangle? | -1 <AND> -5 | x = -5 | 0.5
What is x in the equation within the red rectangle? | -1 <AND> -5 | x = -5 or 5 | 0.5
What is x in the equation within the orange rectangle? | -1 <AND> -5 | x = -1 or x = -5 | 1.0
Can you explain this meme within the blue rectangle? | This meme is poking fun at the fact that the names of the countries Iceland and Greenland are misleading. Despite its name, Iceland is known for its beautiful green landscapes, while Greenland is mostly covered in ice and snow. The meme is saying that the person has trust issues because the names of these countries do not accurately represent their landscapes. | The meme talks about Iceland and Greenland. It's pointing out that despite their names, Iceland is not very icy and Greenland isn't very green. | 0.4
Can you explain this meme within the blue rectangle? | This meme is poking fun at the fact that the names of the countries Iceland and Greenland are misleading. Despite its name, Iceland is known for its beautiful green landscapes, while Greenland is mostly covered in ice and snow. The meme is saying that the person has trust issues because the names of these countries do not accurately represent their landscapes. | The meme is using humor to point out the misleading nature of Iceland's and Greenland's names. Iceland, despite its name, has lush green landscapes while Greenland is mostly covered in ice and snow. The text 'This is why I have trust issues' is a playful way to suggest that these contradictions can lead to distrust or confusion. The humor in this meme is derived from the unexpected contrast between the names of the countries and their actual physical characteristics. | 1.0
"""  # noqa: E501  (the benchmark's text, verbatim)
_HEAD, _TABLE = GRADING_PROMPT.split("\n\n", 1)
_TABLE_HEAD = _TABLE.splitlines()[:2]
#: The grading prompt's worked examples (rows of its table); the last two are long.
EXAMPLES: tuple[str, ...] = tuple(_TABLE.splitlines()[2:])
RETRY_SUFFIX = "\nPredict the correctness of the answer (digit): "
TRIES = 5
#: Waits before asking again a judge that answers 429/502/503/504 (then it is an error).
BUSY_WAITS_S = (2.0, 8.0, 30.0)
MAX_TOKENS = 3


class JudgeError(DataGenError):
    """The judge cannot be asked (unreachable, refuses the request, answers nonsense JSON)."""


@dataclass(frozen=True)
class Grade:
    score: float  # 0.0–1.0; 0.0 when no reply could be read as a grade
    raw: str  # the judge's last reply
    parsed: bool
    tries: int


def grading_prompt(examples: int | None = None) -> str:
    """The grading prompt with its first ``examples`` worked examples (None: all, verbatim).
    Fewer examples fit a judge with a short context, at the cost of the benchmark's exact
    prompt."""
    rows = EXAMPLES if examples is None else EXAMPLES[: max(examples, 0)]
    return _HEAD + "\n\n" + "\n".join([*_TABLE_HEAD, *rows]) + "\n"


def grading_text(question: str, truth: str, prediction: str, examples: int | None = None) -> str:
    truth = truth.replace("<AND>", " <AND> ").replace("<OR>", " <OR> ")
    return grading_prompt(examples) + "\n" + " | ".join([question, truth, prediction, ""])


def parse_grade(content: str) -> float | None:
    """The reply's first word as a grade in 0.0–1.0, else None (the evaluator's rule)."""
    words = content.strip().split()
    if not words:
        return None
    try:
        score = float(words[0])
    except ValueError:
        return None
    return score if math.isfinite(score) and 0.0 <= score <= 1.0 else None


def chat_url(url: str) -> str:
    """``http://host:8000``, ``…/v1`` or ``…/v1/chat/completions`` → the completions URL."""
    url = url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    return url + ("/chat/completions" if url.endswith("/v1") else "/v1/chat/completions")


class Judge:
    """A grader at ``url``. ``image=True`` sends the question's image along (a multimodal
    judge; our own server requires one); ``examples`` trims the prompt's worked examples
    (see :func:`grading_prompt`)."""

    def __init__(
        self,
        url: str,
        model: str | None = None,
        *,
        token: str | None = None,
        image: bool = False,
        examples: int | None = None,
        timeout_s: float = 120.0,
    ) -> None:
        self.url = chat_url(url)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(headers=headers, timeout=timeout_s)
        self.image = image
        self.examples = examples
        # Asked before any answer is generated: a wrong URL should not cost a model's run.
        listed = self._models()
        if model is None and not listed:
            raise JudgeError(
                f"the judge at {self.url} lists no model (GET …/models): give --judge-model"
            )
        self.model = model or listed[0]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _models(self) -> list[str]:
        """The model ids the judge lists; [] when it lists none (not every server does)."""
        url = self.url.removesuffix("/chat/completions") + "/models"
        try:
            response = self._http.get(url)
        except httpx.HTTPError as exc:
            raise JudgeError(f"the judge at {self.url} cannot be reached ({exc})") from None
        if response.status_code in (401, 403):
            raise JudgeError(
                f"the judge at {self.url} refused the key (HTTP {response.status_code}): "
                "check --judge-token / $VIPSTUDIO_JUDGE_TOKEN"
            )
        try:
            return [str(m["id"]) for m in response.json()["data"]]
        except (ValueError, KeyError, TypeError):
            return []

    def grade(self, question: str, truth: str, prediction: str, image: Path | None = None) -> Grade:
        """Grade one prediction; raises :class:`JudgeError` when the judge cannot be asked."""
        text = grading_text(question, truth, prediction, self.examples)
        content = ""
        for attempt in range(TRIES):
            prompt = text if attempt == 0 else text + RETRY_SUFFIX
            content = self._ask(prompt, 0.5 * attempt, image)
            score = parse_grade(content)
            if score is not None:
                return Grade(score, content, True, attempt + 1)
        return Grade(0.0, content, False, TRIES)

    def _ask(self, text: str, temperature: float, image: Path | None) -> str:
        content: Any = text
        if self.image and image is not None:
            content = [{"type": "text", "text": text}, _image_part(image)]
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "temperature": temperature,
            "max_tokens": MAX_TOKENS,
        }
        for wait in (*BUSY_WAITS_S, None):
            try:
                response = self._http.post(self.url, json=body)
            except httpx.HTTPError as exc:
                raise JudgeError(f"the judge at {self.url} cannot be reached ({exc})") from None
            # A rate limit or a busy server is worth waiting for (the evaluator sleeps 30 s).
            if response.status_code not in (429, 502, 503, 504) or wait is None:
                break
            time.sleep(_retry_after(response, wait))
        if response.status_code != 200:
            raise JudgeError(
                f"the judge at {self.url} refused the request (HTTP {response.status_code}: "
                f"{_message(response)})"
            )
        try:
            reply = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise JudgeError(f"the judge at {self.url} answered no chat completion") from None
        return reply if isinstance(reply, str) else ""


def _retry_after(response: httpx.Response, default: float) -> float:
    try:
        return min(float(response.headers.get("retry-after", default)), 60.0)
    except ValueError:
        return default


def _message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
        text = error.get("message") if isinstance(error, dict) else str(error)
    except (ValueError, AttributeError):
        text = response.text
    return " ".join(str(text).split())[:300]


def _image_part(path: Path) -> dict[str, Any]:
    kind = mimetypes.guess_type(path.name)[0] or "image/png"
    data = base64.b64encode(path.read_bytes()).decode()
    return {"type": "image_url", "image_url": {"url": f"data:{kind};base64,{data}"}}
