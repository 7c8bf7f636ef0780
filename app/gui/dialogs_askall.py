"""The "Ask every region" dialog: the question, this image or the folder, progress with the
time left, Stop, and a summary. The work is :class:`app.gui.askall.AskAll`'s; the answers go
to the chat and the log as they come, so the dialog does not block the window."""

from __future__ import annotations

from PySide6.QtCore import QEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.askall import DEFAULT_QUESTION, AskAll, AskAllSummary


def eta_text(seconds: float) -> str:
    """``0:42`` / ``1:02:03`` time left; "estimating…" before the first answer."""
    if seconds < 0:
        return "estimating…"
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class AskAllDialog(QDialog):
    """Non-modal: the person can read and review answers in the chat while it runs."""

    def __init__(self, runner: AskAll, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Ask every region")
        self.runner = runner
        self.question = QLineEdit(DEFAULT_QUESTION)
        self.question.setToolTip(
            "<region0> becomes each region's referring phrase (\"the object within the red "
            'rectangle"); each region is asked on its own, only it drawn'
        )
        self.this_image = QRadioButton("This image")
        self.folder = QRadioButton("Every image of the folder with regions in the log")
        self.folder.setToolTip("Images with a draft (regions drawn) or imported regions")
        self.this_image.setChecked(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m regions")
        self.eta = QLabel("")
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.start_btn = QPushButton("Ask")
        self.start_btn.setDefault(True)
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setEnabled(False)
        self.stop_btn.setToolTip("Stop now; the answers already given are kept")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.start_btn, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.stop_btn, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.close)
        form = QFormLayout()
        form.addRow("Question", self.question)
        form.addRow("Regions of", self.this_image)
        form.addRow("", self.folder)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.eta)
        layout.addWidget(self.summary)
        layout.addWidget(buttons)
        self.resize(520, 260)
        self.start_btn.clicked.connect(self.start)
        self.stop_btn.clicked.connect(runner.stop)
        runner.progress.connect(self._progress)
        runner.finished.connect(self._finished)
        runner.refused.connect(self._refused)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.WindowActivate and not self.runner.running:
            self.refresh()  # back from drawing: the count of regions may have changed
        return super().event(event)

    def refresh(self) -> None:
        """Name how many regions the image on screen has."""
        n = len(self.runner.image_items())
        self.this_image.setText(f"This image ({n} region{'s' if n != 1 else ''})")

    def start(self) -> None:
        question = self.question.text().strip()
        if not question:
            self._refused("type the question first, e.g. What is <region0>?")
            return
        self.summary.setText("")
        self.eta.setText("finding the regions…")
        self._running(True)
        if self.folder.isChecked():
            self.runner.start_folder(question)
        elif not self.runner.start_image(question):
            self._running(False)

    def _running(self, on: bool) -> None:
        self.start_btn.setEnabled(not on)
        self.stop_btn.setEnabled(on)
        for w in (self.question, self.this_image, self.folder):
            w.setEnabled(not on)

    def _progress(self, done: int, total: int, left: float) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        where = self.runner.last_path
        image = f" · {where.name}" if where and self.runner.summary.images > 1 else ""
        self.eta.setText(f"{done}/{total} asked{image} · about {eta_text(left)} left")

    def _finished(self, summary: AskAllSummary) -> None:
        self._running(False)
        self.eta.setText("stopped" if summary.stopped else "done")
        self.summary.setText("\n".join(summary.lines()))
        self.refresh()

    def _refused(self, message: str) -> None:
        self._running(False)
        self.eta.setText("")
        self.summary.setText(f"Cannot start: {message}")
