"""Measuring a model on region questions: ViP-Bench and our own exports (`vipstudio eval`).

:mod:`items` and :mod:`exports` read what to ask, :mod:`sweep` draws the queries (and their
redrawn variants), :mod:`scoring` and :mod:`judge` score the answers, :mod:`report` and
:mod:`plot` tell the result. Running the model is the batch runner's job (``app/evaluate.py``).
"""

from data_gen.evaluate.exports import load_export
from data_gen.evaluate.items import SPLITS, EvalError, EvalItem, load_vip_bench
from data_gen.evaluate.judge import Grade, Judge, JudgeError, parse_grade
from data_gen.evaluate.plot import plot
from data_gen.evaluate.report import Report, Scored
from data_gen.evaluate.scoring import METRICS, exact_match, keyword_score, token_f1
from data_gen.evaluate.sweep import AXES, SweepError, parse_axes, queries

__all__ = [
    "AXES",
    "METRICS",
    "SPLITS",
    "EvalError",
    "EvalItem",
    "Grade",
    "Judge",
    "JudgeError",
    "Report",
    "Scored",
    "SweepError",
    "exact_match",
    "keyword_score",
    "load_export",
    "load_vip_bench",
    "parse_axes",
    "parse_grade",
    "plot",
    "queries",
    "token_f1",
]
