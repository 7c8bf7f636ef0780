"""Every command of the window, with its shortcuts, in one table; and the cheat sheet (F1, ?).

The table is data: the main window makes a ``QAction`` per row and connects it; the cheat
sheet is generated from the same rows, so it can never disagree with the real shortcuts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QDialog,
    QDialogButtonBox,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.gui.review import ACCEPT_KEY, EDIT_KEY, NEXT_UNREVIEWED_KEY, REJECT_KEY


@dataclass(frozen=True)
class ActionSpec:
    id: str
    text: str
    keys: tuple[str, ...]
    group: str
    checkable: bool = False
    #: Toolbar label (the menu shows ``text``).
    short: str = ""


def _tool(name: str, text: str, key: str, short: str) -> ActionSpec:
    return ActionSpec(f"tool_{name}", text, (key,), "Tools", checkable=True, short=short)


SPECS: tuple[ActionSpec, ...] = (
    ActionSpec("open", "Open image…", ("Ctrl+O",), "File"),
    ActionSpec("open_folder", "Open folder…", ("Ctrl+Shift+O",), "File"),
    ActionSpec(
        "include_subfolders",
        "Include subfolders when opening a folder",
        (),
        "File",
        checkable=True,
    ),
    ActionSpec("export", "Export dataset…", ("Ctrl+E",), "File"),
    ActionSpec("import", "Import annotations…", (), "File"),
    ActionSpec("report", "Report…", (), "File"),
    ActionSpec("settings", "Settings…", ("Ctrl+,",), "File"),
    ActionSpec("quit", "Quit", ("Ctrl+Q",), "File"),
    ActionSpec("next", "Next image", ("D",), "Navigate"),
    ActionSpec("previous", "Previous image", ("A",), "Navigate"),
    ActionSpec("filter", "Filter the image list", ("Ctrl+F",), "Navigate"),
    _tool("select", "Select / move / resize", "V", "Select"),
    _tool("rectangle", "Rectangle", "R", "Rectangle"),
    _tool("ellipse", "Ellipse", "E", "Ellipse"),
    _tool("point", "Point", "P", "Point"),
    _tool("triangle", "Triangle (three clicks)", "T", "Triangle"),
    _tool("arrow", "Arrow (drag tail → tip)", "W", "Arrow"),
    _tool("scribble", "Scribble (freehand)", "S", "Scribble"),
    _tool("mask", "Mask polygon (click vertices, Enter)", "M", "Mask"),
    _tool("brush", "Mask brush (Alt or right button erases)", "B", "Brush"),
    _tool("contour", "Mask contour (click vertices, Enter)", "C", "Contour"),
    _tool("assist", "Box → mask (drag a box around an object)", "G", "Box → mask"),
    ActionSpec("box_to_mask", "Turn the selected rectangle into a mask", ("Shift+M",), "Tools"),
    ActionSpec(
        "add_to_mask",
        "Brush adds to the selected mask (else a stroke away from it starts a new mask)",
        ("Shift+B",),
        "Tools",
        checkable=True,
        short="Add to mask",
    ),
    ActionSpec("undo", "Undo", ("Ctrl+Z",), "Edit"),
    ActionSpec("redo", "Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Edit"),
    ActionSpec("delete", "Delete the selection (or the selected vertex)", ("Delete",), "Edit"),
    ActionSpec("duplicate", "Duplicate the selected prompts", ("Ctrl+D",), "Edit"),
    ActionSpec("raise", "Bring forward (drawn later)", ("Ctrl+]",), "Edit"),
    ActionSpec("lower", "Send backward (drawn earlier)", ("Ctrl+[",), "Edit"),
    ActionSpec("clear", "Remove all prompts", ("Ctrl+Shift+Delete",), "Edit"),
    ActionSpec(
        "paste_previous", "Paste the prompts of the previous image", ("Ctrl+Shift+V",), "Edit"
    ),
    ActionSpec(
        "carry_prompts",
        "Carry the prompts over to each next image (for sequences)",
        (),
        "Edit",
        checkable=True,
        short="Carry prompts",
    ),
    ActionSpec("view_adjust", "Brightness / contrast (the view only)…", ("Ctrl+Shift+J",), "View"),
    ActionSpec("view_reset", "Reset brightness / contrast (the image as it is)", (), "View"),
    ActionSpec("zoom_in", "Zoom in", ("Ctrl++", "Ctrl+="), "View"),
    ActionSpec("zoom_out", "Zoom out", ("Ctrl+-",), "View"),
    ActionSpec("fit", "Fit to window", ("Ctrl+0",), "View", short="Fit"),
    ActionSpec("actual", "Actual size (1:1)", ("Ctrl+1",), "View", short="1:1"),
    ActionSpec(
        "model_view", "Show the model's 336×336 view", ("Ctrl+M",), "View", True, "Model view"
    ),
    ActionSpec("ask", "Ask the question", ("Ctrl+Return", "Ctrl+Enter"), "Ask"),
    ActionSpec("stop", "Stop the answer", ("Ctrl+.",), "Ask"),
    ActionSpec("regenerate", "Regenerate the last answer", ("Ctrl+R",), "Ask"),
    ActionSpec("new_conversation", "New conversation", ("Ctrl+N",), "Ask"),
    ActionSpec(
        "ask_all", "Ask every region… (this image or the folder)", ("Ctrl+Shift+Return",), "Ask"
    ),
    ActionSpec("insert_phrase", "Insert phrase of the selected region", ("Ctrl+I",), "Ask"),
    ActionSpec("focus_question", "Go to the question box (Esc goes back)", ("Ctrl+L",), "Ask"),
    ActionSpec("review_accept", "Accept the current answer", (ACCEPT_KEY,), "Review"),
    ActionSpec("review_edit", "Edit the current answer", (EDIT_KEY,), "Review"),
    ActionSpec("review_reject", "Reject the current answer", (REJECT_KEY,), "Review"),
    ActionSpec(
        "next_unreviewed", "Go to the next answer not reviewed", (NEXT_UNREVIEWED_KEY,), "Review"
    ),
    *(
        ActionSpec(
            f"label_{n}",
            f"Label {n}: on the selected prompts, else on new shapes",
            (str(n),),
            "Labels",
        )
        for n in range(1, 10)
    ),
    ActionSpec("label_0", "No label (selected prompts, else new shapes)", ("0",), "Labels"),
    ActionSpec("video_play", "Play / pause the video", ("Space",), "Video"),
    ActionSpec("video_next_frame", "Next frame of the video", (".",), "Video"),
    ActionSpec("video_previous_frame", "Previous frame of the video", (",",), "Video"),
    ActionSpec("track_forward", "Track the region forward", ("Ctrl+Shift+.",), "Video"),
    ActionSpec("track_backward", "Track the region backward", ("Ctrl+Shift+,",), "Video"),
    ActionSpec("remove_keyframe", "Remove the region's keyframe on this frame", (), "Video"),
    ActionSpec("ask_over_time", "Ask the question over time (every N seconds)", (), "Video"),
    ActionSpec("reload_model", "Load the model again", (), "Model"),
    ActionSpec("tiny_model", "Use the tiny random model (to try the interface)", (), "Model"),
    ActionSpec("help", "Keyboard shortcuts", ("F1", "?"), "Help"),
)

#: Keys handled by the canvas itself rather than by actions.
CANVAS_KEYS: tuple[tuple[str, str], ...] = (
    ("Mouse wheel", "Zoom at the pointer"),
    ("Space + drag (photos), middle button", "Pan"),
    ("Enter / double-click", "Close the polygon being drawn"),
    ("Backspace", "Remove the last vertex"),
    ("Esc", "Cancel what is being drawn"),
    ("Drag a handle (select tool)", "Resize the selected prompt"),
    ("Drag a vertex (select tool)", "Move that vertex of a mask, contour, triangle, scribble"),
    ("Double-click or Alt+click an edge", "Add a vertex there"),
    ("Delete / Backspace on a vertex", "Delete that vertex (or right-click → Delete point)"),
    ("Drag on empty space, Ctrl/Shift+click", "Select several (then move, delete, restyle all)"),
    ("Shift while dragging", "Straight moves, squares and circles, arrows by 45°"),
)


class UndoRouter(QObject):
    """Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y undo the drawing even while a spin box (alpha, width)
    has the focus: a number field's own undo is of no use, so its override of the key is
    dropped and the window's Undo/Redo actions fire. Text fields with an undo of their own
    (the question, the tags, the filter, a correction being edited) keep their Ctrl+Z."""

    KEYS = (QKeySequence.StandardKey.Undo, QKeySequence.StandardKey.Redo)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and isinstance(event, QKeyEvent)
            and any(event.matches(k) for k in self.KEYS)
        ) and isinstance(watched, QAbstractSpinBox):
            return True  # not accepted by the spin box: the shortcut runs
        return super().eventFilter(watched, event)


def make_actions(parent: QWidget, slots: dict[str, Callable[..., object]]) -> dict[str, QAction]:
    """One QAction per spec, connected to ``slots[id]`` when present."""
    actions: dict[str, QAction] = {}
    for spec in SPECS:
        action = QAction(spec.text, parent)
        action.setShortcuts([QKeySequence(k) for k in spec.keys])
        keys = ", ".join(spec.keys)
        action.setToolTip(f"{spec.text} ({keys})" if keys else spec.text)
        action.setCheckable(spec.checkable)
        if spec.short:
            action.setIconText(spec.short)
        if spec.id in slots:
            action.triggered.connect(slots[spec.id])
        parent.addAction(action)
        actions[spec.id] = action
    return actions


def cheat_sheet_html() -> str:
    rows: list[str] = []
    group = None
    for spec in SPECS:
        if spec.group != group:
            group = spec.group
            rows.append(f"<tr><th colspan=2 align=left><br>{group}</th></tr>")
        keys = " or ".join(f"<code>{k}</code>" for k in spec.keys) or "—"
        rows.append(f"<tr><td>{keys}</td><td>{spec.text}</td></tr>")
    rows.append("<tr><th colspan=2 align=left><br>Canvas</th></tr>")
    rows += [f"<tr><td><code>{k}</code></td><td>{t}</td></tr>" for k, t in CANVAS_KEYS]
    return "<table cellspacing=4>" + "".join(rows) + "</table>"


class CheatSheet(QDialog):
    """The keyboard shortcuts, generated from :data:`SPECS`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(520, 640)
        view = QTextBrowser()
        view.setHtml(cheat_sheet_html())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(view)
        layout.addWidget(buttons)
