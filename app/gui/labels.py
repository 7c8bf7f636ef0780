"""Project labels (the classes an annotation team uses): the list, its plain-text file, and
putting a label on prompts. Qt-free.

A label goes into the prompt's ``label`` and so into its referring phrase: a rectangle labelled
"cup" is "the cup within the red rectangle". The list is a plain text file, one label per line
(labelme's ``labels.txt`` reads as is: its ``__ignore__`` and ``_background_`` lines are skipped).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import overlays as ov
from app.gui.document import PromptDocument
from data_gen.safe_write import atomic_write

#: labelme's special lines: not classes a region can have.
SKIPPED = ("__ignore__", "_background_")
#: Keys 1–9 apply the first nine labels.
KEYED = 9


class LabelError(ValueError):
    """A label or a labels file is unusable; the message says what to do."""


def clean_label(text: str, existing: Iterable[str] = ()) -> str:
    """``text`` as a label (trimmed), or :class:`LabelError` when it cannot be one."""
    label = " ".join(text.split())
    if not label:
        raise LabelError("a label cannot be empty")
    if label in SKIPPED:
        raise LabelError(f"{label!r} is reserved (labelme's special line): choose another name")
    if any(label.casefold() == e.casefold() for e in existing):
        raise LabelError(f"{label!r} is already in the list")
    return label


def parse_labels(text: str) -> list[str]:
    """The labels of a file's text: one per line; blank, repeated and labelme's special lines
    are skipped."""
    labels: list[str] = []
    for line in text.splitlines():
        try:
            labels.append(clean_label(line, labels))
        except LabelError:
            continue
    return labels


def read_labels(path: Path) -> list[str]:
    """The labels in ``path``; :class:`LabelError` when it cannot be read."""
    try:
        return parse_labels(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise LabelError(f"{path}: no such labels file (a text file, one label per line)") from None
    except IsADirectoryError:
        raise LabelError(f"{path} is a folder: give a text file, one label per line") from None
    except UnicodeDecodeError:
        raise LabelError(
            f"{path} is not UTF-8 text: save it as plain text, one label per line"
        ) from None
    except OSError as exc:
        raise LabelError(f"cannot read the labels {path}: {exc.strerror}") from None


def write_labels(path: Path, labels: Sequence[str]) -> None:
    """Save ``labels`` to ``path``, one per line (temp file, fsync, replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as fh:
        fh.write("".join(f"{label}\n" for label in labels))


def default_file(folder: str, config_dir: Path) -> Path:
    """Where the list of an image folder lives when the person has not chosen a file: beside
    the app's settings (never written into the image folder unasked)."""
    digest = hashlib.sha256(folder.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return config_dir / "labels" / f"{Path(folder).name or 'root'}-{digest}.txt"


def selection_of(doc: PromptDocument) -> list[int]:
    """The selected prompts' indices: all of a multi-selection where the document has one."""
    many = getattr(doc, "selected_indices", None)  # the multi-selection API, where present
    if callable(many):
        return [int(i) for i in many()]
    return [] if doc.selected is None else [doc.selected]


def label_prompts(doc: PromptDocument, indices: Iterable[int], label: str | None) -> int:
    """Put ``label`` (None: no label) on the prompts at ``indices``, each an undoable edit;
    returns how many changed. The selection is kept."""
    chosen = sorted({i for i in indices if 0 <= i < len(doc.prompts)})
    current = doc.selected
    changed = 0
    for i in chosen:
        prompt = doc.prompts[i]
        if prompt.label != label:
            doc.replace_at(i, replace(prompt, label=label), "label")
            changed += 1
    keep = getattr(doc, "select_many", None)  # an edit selects the prompt it changed
    if changed and callable(keep) and len(chosen) > 1:
        keep(chosen, current)
    elif changed and current is not None:
        doc.select(current)
    return changed


def follow_label(
    text: str, old: ov.Prompt, new: ov.Prompt, others: Sequence[ov.Prompt] = ()
) -> str:
    """``text`` with the phrase of ``old`` ("the object within the red rectangle") renamed to
    that of ``new`` after a label change ("the cup within the red rectangle"). Unchanged when
    the label did not change or when another prompt has the same phrase (it may mean that one).
    """
    if old.label == new.label or old.kind != new.kind or old.style.color != new.style.color:
        return text
    before = ov.referring_phrase(old)
    if any(ov.referring_phrase(p) == before for p in others):
        return text
    after = ov.referring_phrase(new)
    return re.sub(rf"\b{re.escape(before)}\b", after, text, flags=re.IGNORECASE)
