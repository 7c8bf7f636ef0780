"""The settings dialog: a form over :class:`app.gui.settings.Settings`. It validates through
the dataclass itself and shows the error instead of closing."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.gui.settings import (
    DEVICES,
    QUANTIZATIONS,
    TEMPLATES,
    THEMES,
    Generation,
    Settings,
    SettingsError,
)

TEMPLATE_NAMES = {
    "llava_v1": "llava_v1 — what ViP-LLaVA was fine-tuned with (default)",
    "hf_card": "hf_card — the model card's ###Human form",
}


def _combo(
    values: tuple[str, ...], current: str, labels: dict[str, str] | None = None
) -> QComboBox:
    box = QComboBox()
    for v in values:
        box.addItem((labels or {}).get(v, v), v)
    box.setCurrentIndex(max(0, values.index(current) if current in values else 0))
    return box


class SettingsDialog(QDialog):
    """Edit the settings; :meth:`result_settings` holds the accepted values."""

    def __init__(self, settings: Settings, path_note: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.original = settings
        self.result_settings: Settings | None = None
        g = settings.generation

        self.model = QLineEdit(settings.model)
        self.model.setPlaceholderText("hub id (llava-hf/vip-llava-7b-hf) or a folder; empty: none")
        browse = QPushButton("Folder…")
        browse.clicked.connect(self._browse_model)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model)
        model_row.addWidget(browse)
        self.device = _combo(DEVICES, settings.device)
        self.quantization = _combo(QUANTIZATIONS, settings.quantization)
        self.quantization.setToolTip("4/8-bit needs bitsandbytes (and in practice a GPU)")
        self.template = _combo(TEMPLATES, settings.template, TEMPLATE_NAMES)
        self.server_url = QLineEdit(settings.server_url)
        self.server_url.setPlaceholderText("http://127.0.0.1:8000 — empty: run the model here")
        self.server_token = QLineEdit(settings.server_token)
        self.server_token.setEchoMode(QLineEdit.EchoMode.Password)
        self.db_path = QLineEdit(settings.db_path)
        self.db_path.setPlaceholderText("empty: the default log of this user")
        self.theme = _combo(THEMES, settings.theme)
        self.thumbnails = QCheckBox("Show thumbnails in the image list")
        self.thumbnails.setChecked(settings.thumbnails)

        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(g.temperature)
        self.temperature.setToolTip("0 = greedy (deterministic)")
        self.top_p = QDoubleSpinBox()
        self.top_p.setRange(0.01, 1.0)
        self.top_p.setSingleStep(0.05)
        self.top_p.setValue(g.top_p)
        self.max_new_tokens = QSpinBox()
        self.max_new_tokens.setRange(1, 4096)
        self.max_new_tokens.setValue(g.max_new_tokens)
        self.num_beams = QSpinBox()
        self.num_beams.setRange(1, 16)
        self.num_beams.setValue(g.num_beams)
        self.repetition_penalty = QDoubleSpinBox()
        self.repetition_penalty.setRange(0.01, 10.0)
        self.repetition_penalty.setSingleStep(0.05)
        self.repetition_penalty.setValue(g.repetition_penalty)
        self.seed = QLineEdit("" if g.seed is None else str(g.seed))
        self.seed.setPlaceholderText("empty: random")

        model_box = QGroupBox("Model")
        form = QFormLayout(model_box)
        form.addRow("Model id or folder", model_row)
        form.addRow("Device", self.device)
        form.addRow("Quantisation", self.quantization)
        form.addRow("Template", self.template)
        form.addRow("Server URL", self.server_url)
        form.addRow("Server token", self.server_token)
        gen_box = QGroupBox("Generation")
        gform = QFormLayout(gen_box)
        gform.addRow("Temperature", self.temperature)
        gform.addRow("Top p", self.top_p)
        gform.addRow("Max new tokens", self.max_new_tokens)
        gform.addRow("Beams", self.num_beams)
        gform.addRow("Repetition penalty", self.repetition_penalty)
        gform.addRow("Seed", self.seed)
        app_box = QGroupBox("App")
        aform = QFormLayout(app_box)
        aform.addRow("Log database", self.db_path)
        aform.addRow("Theme", self.theme)
        aform.addRow("", self.thumbnails)

        self.error = QLabel("")
        self.error.setStyleSheet("color: #d33")
        self.error.setWordWrap(True)
        note = QLabel(f"Stored in {path_note} (the token in plain text, readable by you only).")
        note.setWordWrap(True)
        note.setObjectName("meta")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for w in (model_box, gen_box, app_box, note, self.error, buttons):
            layout.addWidget(w)

    def _browse_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "ViP-LLaVA model folder")
        if folder:
            self.model.setText(folder)

    def values(self) -> Settings:
        """The form as Settings; raises SettingsError for an invalid value."""
        seed_text = self.seed.text().strip()
        try:
            seed = int(seed_text) if seed_text else None
        except ValueError:
            raise SettingsError(f"seed {seed_text!r} must be a whole number or empty") from None
        generation = Generation(
            temperature=round(self.temperature.value(), 4),
            top_p=round(self.top_p.value(), 4),
            max_new_tokens=self.max_new_tokens.value(),
            num_beams=self.num_beams.value(),
            repetition_penalty=round(self.repetition_penalty.value(), 4),
            seed=seed,
        )
        return self.original.with_changes(
            model=self.model.text().strip(),
            device=self.device.currentData(),
            quantization=self.quantization.currentData(),
            template=self.template.currentData(),
            server_url=self.server_url.text().strip(),
            server_token=self.server_token.text(),
            db_path=self.db_path.text().strip(),
            theme=self.theme.currentData(),
            thumbnails=self.thumbnails.isChecked(),
            generation=generation,
        )

    def _accept(self) -> None:
        try:
            self.result_settings = self.values()
        except SettingsError as exc:
            self.error.setText(str(exc))
            return
        self.accept()
