"""Style edits from the window: duplicating with free colours, restyling the selection from
the style bar, and the pen the canvas draws new shapes with."""

from __future__ import annotations

from dataclasses import replace

import overlays as ov
from app.gui.document import PromptDocument
from app.gui.stylebar import Pen, StyleBar


def duplicate(doc: PromptDocument, pen: Pen) -> None:
    """Duplicate the selection; in Auto mode each copy gets a colour no region uses yet."""
    colors: list[str] = []
    if pen.color == "auto":
        taken = list(doc.prompts)
        for index in doc.selected_indices():
            colors.append(ov.next_free_color(taken))
            prompt = doc.prompts[index]
            taken.append(replace(prompt, style=prompt.style.with_color(colors[-1])))
    doc.duplicate(colors=colors)


def pen_for(
    pen: Pen, tool: str, prompts: list[ov.Prompt], size: tuple[int, int]
) -> tuple[ov.Style, float, float]:
    brush = max(pen.radius("brush") * ov.scale_of(size), 1.0)
    return pen.style_for(tool, prompts), pen.radius("point"), brush


def restyle(doc: PromptDocument, bar: StyleBar, what: str) -> None:
    """A style control moved: restyle every selected prompt (one undo step), never the pen."""
    if not doc.selected_indices():
        return
    if not bar.showing_selection:
        return  # the controls show the pen: they changed the style of new shapes only
    selected = doc.selected_indices()
    taken = [p for i, p in enumerate(doc.prompts) if i not in selected]
    changes: list[tuple[int, ov.Prompt]] = []
    for index in selected:
        prompt = doc.prompts[index]
        style = prompt.style
        if what == "color":
            color = bar.checked_color()
            if color == "auto":  # a colour no other region uses
                color = ov.next_free_color(taken)
            style = style.with_color(color)
        elif what == "alpha":
            style = replace(style, alpha=bar.alpha.value())
        elif what == "width" and isinstance(prompt, ov.Point):
            prompt = replace(prompt, radius=bar.width_spin.value())
        elif what == "width":
            style = replace(style, width=bar.width_spin.value())
        changes.append((index, replace(prompt, style=style)))
        taken.append(changes[-1][1])
    doc.replace_many(changes, "style")
