"""The Privacy & activity page round-trips through the real settings store."""

from __future__ import annotations

import json
from pathlib import Path

from pytestqt.qtbot import QtBot

from presence_desktop.core.privacy import PrivacyRule, ShareLevel
from presence_desktop.core.settings import SettingsStore
from presence_desktop.ui.settings_dialog import SettingsDialog


def open_dialog(tmp_path: Path, qtbot: QtBot) -> SettingsDialog:
    dialog = SettingsDialog(SettingsStore(tmp_path / "config", tmp_path / "state"))
    qtbot.addWidget(dialog)
    return dialog


def table(dialog: SettingsDialog) -> list[list[str]]:
    t = dialog.privacy.table
    rows = []
    for row in range(t.rowCount()):
        items = [t.item(row, col) for col in range(t.columnCount())]
        rows.append([item.text() if item is not None else "" for item in items])
    return rows


def add(dialog: SettingsDialog, level: ShareLevel, remote: str = "", folder: str = "",
        label: str = "") -> None:  # fmt: skip
    rule = dialog.privacy.add_rule()
    rule.remote.setText(remote)
    rule.folder.setText(folder)
    rule.level.setCurrentIndex(rule.level.findData(level.value))
    rule.label.setText(label)
    assert rule.confirm(), rule.error.text()


def test_rules_round_trip_add_edit_reorder_remove(tmp_path: Path, qtbot: QtBot) -> None:
    dialog = open_dialog(tmp_path, qtbot)
    page = dialog.privacy
    assert page.rules == [] and page.table.rowCount() == 0
    assert not page.preview_box.isVisibleTo(dialog)  # no activity service given
    add(dialog, ShareLevel.FILE, remote="git@github.com:me/tools.git")
    add(dialog, ShareLevel.PROJECT, remote="github.com/acme/website", label="Acme website")
    add(dialog, ShareLevel.NOTHING, folder="~/work/clients")
    add(dialog, ShareLevel.CODING, remote="gitlab.com/x/*", folder="~/x")
    page.default_level.setCurrentIndex(page.default_level.findData(ShareLevel.CODING.value))
    page.private_label.setText("something secret")

    # Move the folder rule to the top, edit the second, remove the last.
    page.table.selectRow(2)
    page.move_rule(-1)
    page.move_rule(-1)
    assert page.selected_row() == 0
    edit = page.edit_rule(1)
    assert edit is not None and edit.remote.text() == "git@github.com:me/tools.git"
    edit.level.setCurrentIndex(edit.level.findData(ShareLevel.LANGUAGE.value))
    assert not edit.label.isEnabled()  # a label only shows from the project level up
    assert edit.confirm()
    page.table.selectRow(3)
    page.remove_rule()
    assert page.table.rowCount() == 3
    assert dialog.save()

    expected = (
        PrivacyRule(level=ShareLevel.NOTHING, folder="~/work/clients"),
        PrivacyRule(level=ShareLevel.LANGUAGE, remote="git@github.com:me/tools.git"),
        PrivacyRule(
            level=ShareLevel.PROJECT, remote="github.com/acme/website", label="Acme website"
        ),
    )
    reloaded = SettingsStore(tmp_path / "config", tmp_path / "state").settings
    assert reloaded.privacy.rules == expected
    assert reloaded.privacy.default_level is ShareLevel.CODING
    assert reloaded.privacy.private_label == "something secret"
    on_disk = json.loads((tmp_path / "config" / "settings.json").read_text())
    first = on_disk["privacy"]["rules"][0]
    assert (first["level"], first["folder"]) == ("nothing", "~/work/clients")

    again = open_dialog(tmp_path, qtbot)
    assert again.privacy.rules == list(expected)
    assert table(again) == [
        ["~/work/clients", "Status only", ""],
        ["git@github.com:me/tools.git", "Coding · language", "private"],
        ["github.com/acme/website", "Coding · language · project", "Acme website"],
    ]
    assert again.privacy.default_level.currentData() == "coding"


def test_a_rule_without_a_pattern_is_refused_in_its_dialog(tmp_path: Path, qtbot: QtBot) -> None:
    dialog = open_dialog(tmp_path, qtbot)
    dialog.show()
    rule = dialog.privacy.add_rule()
    assert rule.isVisible()
    rule.remote.setText("   ")
    assert not rule.confirm()
    assert rule.isVisible() and rule.error.isVisible()
    assert "remote or a folder" in rule.error.text()
    assert dialog.privacy.rules == []
    rule.reject()
    assert dialog.privacy.rule_dialog is None or not dialog.privacy.rule_dialog.isVisible()


def test_idle_minutes_and_screen_lock_round_trip(tmp_path: Path, qtbot: QtBot) -> None:
    dialog = open_dialog(tmp_path, qtbot)
    page = dialog.privacy
    assert page.away_minutes.value() == 10
    assert page.away_on_lock.isChecked()
    page.away_minutes.setValue(25)
    page.away_on_lock.setChecked(False)
    page.share_activity.setChecked(False)
    page.window_titles.setChecked(False)
    assert dialog.save()
    settings = SettingsStore(tmp_path / "config", tmp_path / "state").settings
    assert settings.idle.away_after_minutes == 25
    assert settings.idle.away_on_lock is False
    assert settings.activity.share_activity is False
    assert settings.activity.window_titles is False
    assert settings.activity.quiet_minutes == 15  # not on the page, kept

    again = open_dialog(tmp_path, qtbot)
    assert again.privacy.away_minutes.value() == 25
    assert not again.privacy.away_on_lock.isChecked()
    again.privacy.away_minutes.setValue(0)
    assert again.privacy.away_minutes.text() == "Never"
    assert again.save()
    reloaded = SettingsStore(tmp_path / "config", tmp_path / "state").settings
    assert reloaded.idle.away_after_minutes == 0
    assert reloaded.idle.threshold_seconds is None


def test_a_fractional_idle_setting_survives_an_unrelated_save(tmp_path: Path, qtbot: QtBot) -> None:
    SettingsStore(tmp_path / "config", tmp_path / "state").update(
        idle={"away_after_minutes": 7.5, "away_on_lock": True}
    )
    dialog = open_dialog(tmp_path, qtbot)
    assert dialog.privacy.away_minutes.value() == 8
    dialog.flap_minutes.setValue(3)
    assert dialog.save()
    settings = SettingsStore(tmp_path / "config", tmp_path / "state").settings
    assert settings.idle.away_after_minutes == 7.5
    assert settings.flap_minutes == 3
