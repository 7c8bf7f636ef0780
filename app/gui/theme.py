"""Light and dark themes that follow the system (Qt's colour scheme), or a forced one."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

EXTRA_CSS = """
QLabel#meta { color: palette(mid); font-size: 11px; }
QFrame#notice { background: palette(alternate-base); border-radius: 4px; }
QFrame#banner { background: #b3261e; border-radius: 3px; }
QFrame#banner QLabel { color: white; }
"""


def effective_scheme(mode: str) -> Qt.ColorScheme:
    """The scheme to use for ``mode`` (system, light, dark)."""
    if mode == "dark":
        return Qt.ColorScheme.Dark
    if mode == "light":
        return Qt.ColorScheme.Light
    hints = QGuiApplication.styleHints()
    return hints.colorScheme() if hints is not None else Qt.ColorScheme.Light


def dark_palette() -> QPalette:
    p = QPalette()
    base, text, mid = QColor(37, 37, 40), QColor(230, 230, 230), QColor(140, 140, 145)
    roles = {
        QPalette.ColorRole.Window: QColor(45, 45, 48),
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: QColor(55, 55, 60),
        QPalette.ColorRole.ToolTipBase: QColor(60, 60, 64),
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: QColor(55, 55, 60),
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.Highlight: QColor(42, 130, 218),
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.Link: QColor(90, 160, 255),
        QPalette.ColorRole.Mid: mid,
        QPalette.ColorRole.PlaceholderText: mid,
    }
    for role, color in roles.items():
        p.setColor(role, color)
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, mid)
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, mid)
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, mid)
    return p


def apply_theme(app: QApplication, mode: str) -> Qt.ColorScheme:
    """Apply ``mode``; with "system" the palette follows later system changes too."""
    app.setStyle("Fusion")
    scheme = effective_scheme(mode)
    style = app.style()
    palette = dark_palette() if scheme == Qt.ColorScheme.Dark else style.standardPalette()
    app.setPalette(palette)
    app.setStyleSheet(EXTRA_CSS)
    return scheme


def follow_system(app: QApplication, mode: str) -> None:
    """Re-apply the theme whenever the system switches between light and dark."""
    hints = QGuiApplication.styleHints()
    if hints is None:
        return
    app.setProperty("vip_theme_mode", mode)

    def changed(_: Qt.ColorScheme) -> None:
        current = str(app.property("vip_theme_mode") or "system")
        if current == "system":
            apply_theme(app, current)

    if not app.property("vip_theme_hooked"):
        hints.colorSchemeChanged.connect(changed)
        app.setProperty("vip_theme_hooked", True)
