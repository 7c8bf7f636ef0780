"""Offline scores of an answer against a reference: ViP-Bench's keyword rule, exact match and
token F1. All are 0.0–1.0.

ViP-Bench is graded by GPT-4 (:mod:`data_gen.evaluate.judge`); its grading prompt defines the
answer syntax: ``a<AND>b`` is totally right only when every element is in the prediction,
``a<OR>b`` when any one is. :func:`keyword_score` applies that rule literally — an element
counts when its words appear in the prediction — giving partial credit for ``<AND>`` (one of
two → 0.5, as in the prompt's examples). It is an approximation: free-form references (a meme
explained in a paragraph) score 0 unless quoted verbatim, where GPT-4 gives partial credit.
"""

from __future__ import annotations

import re
import string
from collections import Counter

_SPACE = re.compile(r"\s+")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def _squash(text: str) -> str:
    return _SPACE.sub(" ", text.lower()).strip()


def keyword_score(prediction: str, reference: str) -> float:
    """The share of a ``<AND>`` group found in ``prediction``, the best over ``<OR>`` groups."""
    said = _squash(prediction)
    best = 0.0
    for alternative in reference.split("<OR>"):
        elements = [_squash(e).rstrip(".") for e in alternative.split("<AND>")]
        elements = [e for e in elements if e]
        if not elements:
            continue
        found = sum(1 for e in elements if _contains(said, e))
        best = max(best, found / len(elements))
    return best


def _contains(text: str, element: str) -> bool:
    # Whole words only: "-1" is not in "-15", "cat" is not in "category".
    return re.search(rf"(?<!\w){re.escape(element)}(?!\w)", text) is not None


def normalize(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    return _squash(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)))


def exact_match(prediction: str, reference: str) -> float:
    return 1.0 if normalize(prediction) == normalize(reference) else 0.0


def token_f1(prediction: str, reference: str) -> float:
    """The harmonic mean of token precision and recall (SQuAD's F1)."""
    said, truth = normalize(prediction).split(), normalize(reference).split()
    if not said or not truth:
        return 1.0 if said == truth else 0.0
    common = sum((Counter(said) & Counter(truth)).values())
    if not common:
        return 0.0
    precision, recall = common / len(said), common / len(truth)
    return 2 * precision * recall / (precision + recall)


#: The offline metrics of each kind of item set, the first being the headline one.
METRICS: dict[str, tuple[str, ...]] = {
    "vip-bench": ("keyword",),
    "export": ("f1", "exact"),
}


def offline_scores(kind: str, prediction: str, reference: str) -> dict[str, float]:
    funcs = {"keyword": keyword_score, "exact": exact_match, "f1": token_f1}
    return {m: funcs[m](prediction, reference) for m in METRICS[kind]}
