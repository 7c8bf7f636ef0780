"""Export, import and report dialogs: the options of `vipstudio export|import|report` that
matter at a desk, progress, Cancel where the operation allows it, and the CLI's own summary
(or refusal) at the end. The work runs in a child process (:mod:`app.gui.datajobs`) driven from
a worker thread; the dialogs only collect options and show what comes back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.gui.datajobs import (
    ExportJob,
    ImportJob,
    Job,
    JobCancelled,
    JobFailed,
    JobHandle,
    JobResult,
    ReportJob,
    run_job,
)
from app.gui.threads import run_in_thread
from data_gen.base import FORMATS, ExportOptions
from data_gen.errors import DataGenError
from data_gen.images import IMAGE_MODES
from data_gen.importers import IMPORT_FORMATS
from data_gen.qalog.log import REVIEW_STATES
from data_gen.records import Selection

EXPORTABLE = tuple(s for s in REVIEW_STATES if s != "rejected")


def _path_row(edit: QLineEdit, choose: Callable[[], object]) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    button = QPushButton("Browse…")
    button.clicked.connect(choose)
    layout.addWidget(edit, 1)
    layout.addWidget(button)
    return row


class JobDialog(QDialog):
    """Options above, then Run, progress, Cancel and the summary. Subclasses build the options
    (:meth:`job`: the job, or raise ValueError with what to fix)."""

    finished_job = Signal(object)  # JobResult
    cancellable = True

    def __init__(self, title: str, db: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.db = db
        self.form = QFormLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.summary = QPlainTextEdit()
        self.summary.setReadOnly(True)
        self.summary.setPlaceholderText("The summary appears here.")
        self.run_btn = QPushButton("Run")
        self.run_btn.setDefault(True)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.run_btn, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.cancel_btn, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.close_btn = buttons.button(QDialogButtonBox.StandardButton.Close)
        self.box = layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.summary, 1)
        layout.addWidget(buttons)
        self.run_btn.clicked.connect(self.run)
        self.cancel_btn.clicked.connect(self.cancel)
        self.handle: JobHandle | None = None
        self.outcome: JobResult | None = None
        self.error: str | None = None
        self.resize(600, 520)

    def job(self) -> Job:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self.handle is not None

    def run(self) -> None:
        if self.running:
            return
        try:
            job = self.job()
        except (ValueError, DataGenError) as exc:  # an option to fix: said before anything runs
            self._show_error(str(exc))
            return
        self.outcome, self.error = None, None
        self.summary.setPlainText("")
        self.status.setText("starting…")
        self.progress.setRange(0, 0)  # until the first count arrives
        self.handle = JobHandle()
        self._busy(True)
        run_in_thread(
            run_job,
            job,
            self.handle,
            owner=self,
            on_yield=self._progress,
            on_return=self._done,
            on_error=self._failed,
            on_finish=lambda: self._busy(False),
        )

    def cancel(self) -> None:
        if self.handle is not None:
            self.status.setText("stopping…")
            self.handle.cancel()

    def _busy(self, on: bool) -> None:
        if not on:
            self.handle = None
        self.run_btn.setEnabled(not on)
        self.cancel_btn.setEnabled(on and self.cancellable)
        if self.close_btn is not None:
            self.close_btn.setEnabled(not on)
        for i in range(self.form.rowCount()):
            item = self.form.itemAt(i, QFormLayout.ItemRole.FieldRole)
            field = item.widget() if item is not None else None
            if field is not None:
                field.setEnabled(not on)

    def _progress(self, value: tuple[int, int | None]) -> None:
        done, total = value
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self.status.setText(f"{done} / {total} turns")

    def _done(self, result: JobResult) -> None:
        self.outcome = result
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.status.setText(result.warning or "done")
        self.summary.setPlainText("\n".join(result.lines))
        self.finished_job.emit(result)

    def _failed(self, exc: Exception) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        if isinstance(exc, JobCancelled):
            self.status.setText(str(exc))
            return
        message = str(exc) if isinstance(exc, JobFailed) else f"{type(exc).__name__}: {exc}"
        self._show_error(message)

    def _show_error(self, message: str) -> None:
        self.error = message
        self.status.setText(f"<span style='color:#c62828'>Error: {_esc(message)}</span>")

    def reject(self) -> None:
        if not self.running:  # Esc while it runs: nothing; Cancel is the way to stop
            super().reject()


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class ExportDialog(JobDialog):
    """`vipstudio export`: format, output folder, split, review filter, images, overwrite."""

    def __init__(self, db: Path, parent: QWidget | None = None, out: str = "") -> None:
        super().__init__("Export dataset", db, parent)
        self.format = QComboBox()
        self.format.addItems(FORMATS)
        self.format.setToolTip(
            "vip-llava: raw images + boxes (the trainer draws); the others: prompts drawn in"
        )
        self.out = QLineEdit(out)
        self.out.setPlaceholderText("the dataset folder (made when the export is complete)")
        self.val = QDoubleSpinBox()
        self.val.setRange(0.0, 0.95)
        self.val.setSingleStep(0.05)
        self.val.setToolTip("Share of images in the validation split (split by image)")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.review: dict[str, QCheckBox] = {}
        review_row = QWidget()
        h = QHBoxLayout(review_row)
        h.setContentsMargins(0, 0, 0, 0)
        for state in EXPORTABLE:
            box = QCheckBox(state)
            box.setChecked(True)
            self.review[state] = box
            h.addWidget(box)
        h.addStretch(1)
        review_row.setToolTip("Rejected turns are never exported")
        self.images = QComboBox()
        self.images.addItems(IMAGE_MODES)
        self.augment = QSpinBox()
        self.augment.setRange(0, 16)
        self.augment.setToolTip("Per region conversation, K more samples with other prompt kinds")
        self.overwrite = QCheckBox("Replace an existing folder (once the new export is complete)")
        self.strict = QCheckBox("Stop at the first unusable image or prompt")
        self.form.addRow("Format", self.format)
        self.form.addRow("Output folder", _path_row(self.out, self._choose_out))
        self.form.addRow("Validation share", self.val)
        self.form.addRow("Split seed", self.seed)
        self.form.addRow("Review status", review_row)
        self.form.addRow("Raw images", self.images)
        self.form.addRow("Augment", self.augment)
        self.form.addRow("", self.overwrite)
        self.form.addRow("", self.strict)

    def _choose_out(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into", self.out.text())
        if folder:
            self.out.setText(folder)

    def job(self) -> ExportJob:
        out = self.out.text().strip()
        if not out:
            raise ValueError("choose the output folder first")
        review = tuple(s for s, box in self.review.items() if box.isChecked())
        if not review:
            raise ValueError("tick at least one review status to export")
        options = ExportOptions(
            format=self.format.currentText(),
            out=Path(out).expanduser(),
            selection=Selection(review=review),
            val_fraction=self.val.value(),
            seed=self.seed.value(),
            augment=self.augment.value(),
            images=self.images.currentText(),  # type: ignore[arg-type]
            overwrite=self.overwrite.isChecked(),
            strict=self.strict.isChecked(),
        )
        return ExportJob(self.db, options)


class ImportDialog(JobDialog):
    """`vipstudio import`: COCO, LabelMe or ViP-LLaVA regions into the log. One transaction:
    it cannot be stopped half-way (Cancel stays off)."""

    cancellable = False

    def __init__(self, db: Path, parent: QWidget | None = None) -> None:
        super().__init__("Import annotations", db, parent)
        self.format = QComboBox()
        self.format.addItems(IMPORT_FORMATS)
        self.file = QLineEdit()
        self.images_dir = QLineEdit()
        self.images_dir.setPlaceholderText("default: the file's folder")
        self.dry_run = QCheckBox("Check only: write nothing")
        self.strict = QCheckBox("Import nothing if any entry is invalid")
        self.again = QCheckBox("Import a file that was imported before")
        self.form.addRow("Format", self.format)
        self.form.addRow("File", _path_row(self.file, self._choose_file))
        self.form.addRow("Images folder", _path_row(self.images_dir, self._choose_images))
        for box in (self.dry_run, self.strict, self.again):
            self.form.addRow("", box)
        self.status.setText("An import is one transaction: all of it is written, or nothing.")

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Annotation file", self.file.text(), "Annotations (*.json);;All files (*)"
        )
        if path:
            self.file.setText(path)

    def _choose_images(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Images folder", self.images_dir.text())
        if folder:
            self.images_dir.setText(folder)

    def job(self) -> ImportJob:
        file = self.file.text().strip()
        if not file:
            raise ValueError("choose the annotation file first")
        images = self.images_dir.text().strip()
        return ImportJob(
            self.db,
            self.format.currentText(),
            Path(file).expanduser(),
            images_dir=Path(images).expanduser() if images else None,
            dry_run=self.dry_run.isChecked(),
            strict=self.strict.isChecked(),
            again=self.again.isChecked(),
        )


class ReportDialog(JobDialog):
    """`vipstudio report`: counts and length histograms, optionally drawn into a PNG."""

    def __init__(self, db: Path, parent: QWidget | None = None) -> None:
        super().__init__("Report", db, parent)
        self.review: dict[str, QCheckBox] = {}
        review_row = QWidget()
        h = QHBoxLayout(review_row)
        h.setContentsMargins(0, 0, 0, 0)
        for state in REVIEW_STATES:
            box = QCheckBox(state)
            box.setChecked(True)
            self.review[state] = box
            h.addWidget(box)
        h.addStretch(1)
        self.plot = QLineEdit()
        self.plot.setPlaceholderText("optional: draw the figures into this PNG")
        self.form.addRow("Review status", review_row)
        self.form.addRow("Figures (PNG)", _path_row(self.plot, self._choose_plot))
        self.figure = QLabel()
        self.figure.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.figure.setVisible(False)
        self.box.insertWidget(self.box.count() - 1, self.figure)

    def _choose_plot(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Figures", self.plot.text(), "PNG (*.png)")
        if path:
            self.plot.setText(path)

    def job(self) -> ReportJob:
        review = tuple(s for s, box in self.review.items() if box.isChecked())
        plot = self.plot.text().strip()
        # All states ticked = no filter, as the CLI without --review.
        chosen = () if len(review) == len(REVIEW_STATES) else review
        if not review:
            raise ValueError("tick at least one review status")
        return ReportJob(self.db, chosen, Path(plot).expanduser() if plot else None)

    def _done(self, result: JobResult) -> None:
        super()._done(result)
        plot = self.plot.text().strip()
        pixmap = QPixmap(plot) if plot else QPixmap()
        if not pixmap.isNull():
            self.figure.setPixmap(
                pixmap.scaledToWidth(560, Qt.TransformationMode.SmoothTransformation)
            )
        self.figure.setVisible(not pixmap.isNull())
