"""The "Privacy & activity" page of the settings window.

It edits a copy of the privacy, idle and activity settings; nothing is sent
or saved until the settings window saves through ``SettingsStore.update``,
which then makes the editor activity service re-apply the rules. Meanwhile
the page shows what friends *would* see with the rules as edited, rendered
by ``core.privacy.preview`` from the message that would be sent, so a rule
can be tried before it is saved.
"""

from __future__ import annotations

import msgspec
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from presence_protocol import limits

from ..core.my_presence import MyPresence
from ..core.privacy import (
    Preview,
    PrivacyRule,
    PrivacySettings,
    ShareLevel,
    normalize_remote,
)
from ..core.privacy import preview as render_preview
from ..core.settings import Settings, SettingsError
from .fit import tool_dialog
from .sharing import LEVEL_LABELS, PREFIX, connect_while, decided_by, rule_target

MAX_AWAY_MINUTES = 24 * 60


def _level_combo() -> QComboBox:
    combo = QComboBox()
    for level in ShareLevel:
        combo.addItem(LEVEL_LABELS[level], level.value)
    return combo


def _hint(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label


class RuleDialog(QDialog):
    """Add or edit one rule. Modeless to the event loop (``open``), never ``exec``."""

    rule_accepted = Signal(object)
    """The valid ``PrivacyRule`` the person confirmed."""

    def __init__(
        self,
        rule: PrivacyRule | None,
        presence: MyPresence | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Edit rule" if rule is not None else "Add rule")
        tool_dialog(self)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._presence = presence
        layout = QVBoxLayout(self)
        layout.addWidget(
            _hint(
                "Fill in a repository, a folder, or both (then both must match). A star"
                " matches anything; a pattern without one covers everything below it."
            )
        )
        form = QFormLayout()
        self.remote = QLineEdit(rule.remote if rule else "")
        self.remote.setPlaceholderText("github.com/acme/*")
        self.remote.setToolTip("Git remote as host/owner/repo; any URL spelling is accepted")
        form.addRow("Repository", self.remote)
        self.folder = QLineEdit(rule.folder if rule else "")
        self.folder.setPlaceholderText("~/work/clients")
        form.addRow("Folder", self.folder)
        self.level = _level_combo()
        self.level.setCurrentIndex(
            self.level.findData((rule.level if rule else ShareLevel.PROJECT).value)
        )
        form.addRow("Friends see", self.level)
        self.label = QLineEdit(rule.label if rule else "")
        self.label.setMaxLength(limits.MAX_LABEL_CHARS)
        self.label.setPlaceholderText("the repository name")
        form.addRow("Show the project as", self.label)
        layout.addLayout(form)
        self.use_current = QPushButton("&Use the project open now")
        self.use_current.clicked.connect(self.fill_from_current)
        self.use_current.setVisible(presence is not None and presence.current is not None)
        layout.addWidget(self.use_current, 0, Qt.AlignmentFlag.AlignLeft)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #e5534b;")
        self.error.hide()
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.confirm)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.level.currentIndexChanged.connect(self._update_enabled)
        self._update_enabled()
        self.setMinimumWidth(420)

    def rule(self) -> PrivacyRule:
        """The rule as filled in; ``ValueError`` says what is missing."""
        return PrivacyRule(
            level=ShareLevel(self.level.currentData()),
            remote=self.remote.text().strip(),
            folder=self.folder.text().strip(),
            label=self.label.text().strip() if self.label.isEnabled() else "",
        )

    def confirm(self) -> bool:
        try:
            rule = self.rule()
        except ValueError as exc:
            self.error.setText(f"{str(exc)[:1].upper()}{str(exc)[1:]}.")
            self.error.show()
            return False
        self.rule_accepted.emit(rule)
        self.accept()
        return True

    def fill_from_current(self) -> None:
        """Match the project in front: its repository, else its folder."""
        current = self._presence.current if self._presence is not None else None
        if current is None:
            return
        remote = normalize_remote(current.report.git_remote) if current.report.git_remote else None
        self.remote.setText(remote or "")
        self.folder.setText("" if remote else current.report.folder)

    def _update_enabled(self) -> None:
        self.label.setEnabled(ShareLevel(self.level.currentData()).allows(ShareLevel.PROJECT))


class PrivacyPage(QWidget):
    """Rules, default level, idle and the live "What friends see" preview."""

    edited = Signal()
    """Any control changed (the preview has been recomputed)."""

    def __init__(self, presence: MyPresence | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._presence = presence
        self._loaded = Settings()
        self.rules: list[PrivacyRule] = []
        self.last_preview: Preview | None = None
        self.rule_dialog: RuleDialog | None = None
        self.setMinimumWidth(580)  # the rules table's three columns without clipping
        layout = QVBoxLayout(self)

        self.preview_box = QGroupBox("What friends see")
        pv = QVBoxLayout(self.preview_box)
        self.preview_line = QLabel()
        self.preview_line.setObjectName("PreviewLine")
        self.preview_line.setTextFormat(Qt.TextFormat.PlainText)
        self.preview_line.setWordWrap(True)
        font = QFont(self.preview_line.font())
        font.setBold(True)
        self.preview_line.setFont(font)
        pv.addWidget(self.preview_line)
        self.preview_why = _hint()
        self.preview_why.setTextFormat(Qt.TextFormat.PlainText)
        pv.addWidget(self.preview_why)
        self.preview_box.setVisible(presence is not None)
        layout.addWidget(self.preview_box)

        self.share_activity = QCheckBox("Share what I am working on")
        self.share_activity.setToolTip("Off: friends see only your status, whatever the rules say")
        layout.addWidget(self.share_activity)

        form = QFormLayout()
        self.default_level = _level_combo()
        form.addRow("Projects without a rule", self.default_level)
        self.private_label = QLineEdit()
        self.private_label.setMaxLength(limits.MAX_LABEL_CHARS)
        form.addRow("Private projects appear as", self.private_label)
        layout.addLayout(form)

        layout.addWidget(QLabel("Rules (the first that matches decides):"))
        self.table = QTableWidget(0, 3)
        self.table.setObjectName("RulesTable")
        self.table.setHorizontalHeaderLabels(["Repository or folder", "Friends see", "Shown as"])
        self.table.verticalHeader().setVisible(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMinimumHeight(120)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.cellDoubleClicked.connect(lambda _r, _c: self.edit_rule())
        layout.addWidget(self.table)
        buttons = QHBoxLayout()
        self.add_button = QPushButton("&Add…")
        self.add_button.clicked.connect(lambda: self.add_rule())
        self.edit_button = QPushButton("&Edit…")
        self.edit_button.clicked.connect(lambda: self.edit_rule())
        self.remove_button = QPushButton("&Remove")
        self.remove_button.clicked.connect(self.remove_rule)
        self.up_button = QPushButton("Move &up")
        self.up_button.clicked.connect(lambda: self.move_rule(-1))
        self.down_button = QPushButton("Move &down")
        self.down_button.clicked.connect(lambda: self.move_rule(1))
        for button in (
            self.add_button,
            self.edit_button,
            self.remove_button,
            self.up_button,
            self.down_button,
        ):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)

        away = QGroupBox("Away")
        aform = QFormLayout(away)
        self.away_minutes = QSpinBox()
        self.away_minutes.setRange(0, MAX_AWAY_MINUTES)
        self.away_minutes.setSuffix(" min without input")
        self.away_minutes.setSpecialValueText("Never")
        aform.addRow("Appear away after", self.away_minutes)
        self.away_on_lock = QCheckBox("Appear away while the screen is locked")
        aform.addRow(self.away_on_lock)
        layout.addWidget(away)

        self.window_titles = QCheckBox("Without the extension, read VS Code window titles")
        self.window_titles.setToolTip("File and folder names from the titles; never paths")
        layout.addWidget(self.window_titles)

        for box in (self.share_activity, self.away_on_lock, self.window_titles):
            box.toggled.connect(self._changed)
        self.default_level.currentIndexChanged.connect(self._changed)
        self.private_label.textChanged.connect(self._changed)
        self.away_minutes.valueChanged.connect(self._changed)
        if presence is not None:
            connect_while(self, presence.merger.changed, self._on_input)
            connect_while(self, presence.rules.changed, self._on_input)

    # ---------------------------------------------------------- settings in and out

    def load(self, settings: Settings) -> None:
        self._loaded = settings
        privacy, idle, activity = settings.privacy, settings.idle, settings.activity
        widgets = (
            self.share_activity,
            self.default_level,
            self.private_label,
            self.away_minutes,
            self.away_on_lock,
            self.window_titles,
        )
        for widget in widgets:
            widget.blockSignals(True)
        self.share_activity.setChecked(activity.share_activity)
        self.window_titles.setChecked(activity.window_titles)
        self.default_level.setCurrentIndex(self.default_level.findData(privacy.default_level.value))
        self.private_label.setText(privacy.private_label)
        self.away_minutes.setValue(round(idle.away_after_minutes))
        self.away_on_lock.setChecked(idle.away_on_lock)
        for widget in widgets:
            widget.blockSignals(False)
        self.rules = list(privacy.rules)
        self._fill_table()
        self._changed()

    def privacy_settings(self) -> PrivacySettings:
        """The rules as edited; ``SettingsError`` when they cannot be saved."""
        try:
            return PrivacySettings(
                default_level=ShareLevel(self.default_level.currentData()),
                private_label=self.private_label.text().strip(),
                rules=tuple(self.rules),
            )
        except ValueError as exc:
            raise SettingsError(str(exc)) from None

    def changes(self) -> dict[str, object]:
        """The three setting groups as edited, keeping fields this page does not show."""
        loaded = self._loaded
        minutes: float = self.away_minutes.value()
        if minutes == round(loaded.idle.away_after_minutes):
            minutes = loaded.idle.away_after_minutes  # a saved 7.5 is not rounded by looking
        return {
            "privacy": self.privacy_settings(),
            "idle": msgspec.structs.replace(
                loaded.idle, away_after_minutes=minutes, away_on_lock=self.away_on_lock.isChecked()
            ),
            "activity": msgspec.structs.replace(
                loaded.activity,
                share_activity=self.share_activity.isChecked(),
                window_titles=self.window_titles.isChecked(),
            ),
        }

    # ---------------------------------------------------------- rules

    def add_rule(self) -> RuleDialog:
        return self._open_rule_dialog(None, None)

    def edit_rule(self, row: int | None = None) -> RuleDialog | None:
        row = self.selected_row() if row is None else row
        if row is None or not 0 <= row < len(self.rules):
            return None
        return self._open_rule_dialog(row, self.rules[row])

    def remove_rule(self) -> None:
        row = self.selected_row()
        if row is not None:
            del self.rules[row]
            self._fill_table(min(row, len(self.rules) - 1))
            self._changed()

    def move_rule(self, step: int) -> None:
        row = self.selected_row()
        if row is None or not 0 <= row + step < len(self.rules):
            return
        self.rules[row], self.rules[row + step] = self.rules[row + step], self.rules[row]
        self._fill_table(row + step)
        self._changed()

    def selected_row(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def _open_rule_dialog(self, row: int | None, rule: PrivacyRule | None) -> RuleDialog:
        if self.rule_dialog is not None:
            self.rule_dialog.close()
        dialog = RuleDialog(rule, self._presence, self)
        dialog.rule_accepted.connect(lambda new: self._put_rule(row, new))
        dialog.destroyed.connect(lambda _o=None: self._forget_dialog(dialog))
        self.rule_dialog = dialog
        dialog.open()
        return dialog

    def _forget_dialog(self, dialog: RuleDialog) -> None:
        if self.rule_dialog is dialog:
            self.rule_dialog = None

    def _put_rule(self, row: int | None, rule: PrivacyRule) -> None:
        if row is None or row >= len(self.rules):
            self.rules.append(rule)
            row = len(self.rules) - 1
        else:
            self.rules[row] = rule
        self._fill_table(row)
        self._changed()

    def _fill_table(self, select: int | None = None) -> None:
        self.table.setRowCount(len(self.rules))
        for row, rule in enumerate(self.rules):
            shown = ""
            if rule.level.allows(ShareLevel.PROJECT):
                shown = rule.label or "its own name"
            elif rule.level.allows(ShareLevel.LANGUAGE):
                shown = "private"
            for column, text in enumerate((rule_target(rule), LEVEL_LABELS[rule.level], shown)):
                item = QTableWidgetItem(text)
                if column == 0:
                    item.setToolTip(
                        "\n".join(
                            f"{name}: {value}"
                            for name, value in (
                                ("Repository", rule.remote),
                                ("Folder", rule.folder),
                            )
                            if value
                        )
                    )
                self.table.setItem(row, column, item)
        if select is not None and 0 <= select < len(self.rules):
            self.table.selectRow(select)
        else:
            self.table.clearSelection()
        self._update_buttons()

    def _update_buttons(self) -> None:
        row = self.selected_row()
        self.edit_button.setEnabled(row is not None)
        self.remove_button.setEnabled(row is not None)
        self.up_button.setEnabled(row is not None and row > 0)
        self.down_button.setEnabled(row is not None and row < len(self.rules) - 1)

    # ---------------------------------------------------------- preview

    def preview(self) -> Preview | None:
        """What friends would see with the settings as edited; None if they are invalid."""
        if self._presence is None:
            return None
        try:
            privacy = self.privacy_settings()
        except SettingsError:
            return None
        return render_preview(
            privacy,
            self._presence.status,
            self._presence.current,
            share_activity=self.share_activity.isChecked(),
        )

    def _show_preview(self) -> None:
        if self._presence is None:
            return
        try:
            privacy = self.privacy_settings()
        except SettingsError as exc:
            self.last_preview = None
            self.preview_line.setText(PREFIX + "…")
            self.preview_why.setText(f"Fix this first: {exc}.")
            return
        shown = self.preview()
        assert shown is not None
        self.last_preview = shown
        self.preview_line.setText(PREFIX + shown.line)
        self.preview_line.setToolTip(shown.text)
        why = decided_by(privacy, self._presence)
        if not self.share_activity.isChecked():
            why = "Sharing is off: friends see only your status."
        if shown.message != self._presence.message:
            why += " Not saved yet: friends see this after Save."
        self.preview_why.setText(why)

    def _changed(self, *_args: object) -> None:
        self._show_preview()
        self.edited.emit()

    def _on_input(self, _value: object) -> None:
        self._show_preview()
        if self.rule_dialog is not None:
            current = self._presence.current if self._presence is not None else None
            self.rule_dialog.use_current.setVisible(current is not None)
