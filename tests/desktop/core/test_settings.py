import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from presence_desktop.core.settings import (
    INBOX_CACHE_SIZE,
    OnlineAlerts,
    RuntimeState,
    Settings,
    SettingsError,
    SettingsStore,
    StoredMessage,
    WindowGeometry,
    normalize_server_url,
)
from presence_desktop.paths import AppPaths
from presence_protocol import Status


def make_store(tmp_path: Path, **kw: Any) -> SettingsStore:
    return SettingsStore(tmp_path / "config", tmp_path / "state", **kw)


def backups(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.bak"))


def test_first_run_has_defaults_and_writes_nothing(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    assert store.settings == Settings()
    assert store.runtime == RuntimeState()
    assert store.load_problems == []
    assert not (tmp_path / "config").exists()


def test_settings_round_trip_through_a_fresh_store(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    seen: list[Settings] = []
    store.changed.connect(seen.append)
    store.update(server_url="https://presence.example.org", online_alerts="starred")
    store.set_muted(7, True)
    store.set_starred(9, True)
    store.set_starred(3, True)
    store.set_starred(9, False)
    assert len(seen) == 5

    again = make_store(tmp_path)
    assert again.settings.server_url == "wss://presence.example.org"
    assert again.settings.online_alerts is OnlineAlerts.STARRED
    assert again.settings.muted == {7}
    assert again.settings.starred == {3}
    on_disk = json.loads((tmp_path / "config" / "settings.json").read_text())
    assert on_disk["version"] == 1
    assert on_disk["starred"] == [3]


def test_settings_and_runtime_state_are_separate_files(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.update(notifications=False)
    msg = StoredMessage(
        message_id="m1", seq=4, sender_id=2, sender_login="bob", text="hi", sent_at=1
    )
    store.update_runtime(
        acked_seq=4,
        inbox=[msg],
        my_status=Status.DND,
        windows={"popup": WindowGeometry(1, 2, 300, 400)},
    )
    settings_text = (tmp_path / "config" / "settings.json").read_text()
    assert "acked_seq" not in settings_text and "hi" not in settings_text
    again = make_store(tmp_path)
    assert again.runtime.acked_seq == 4
    assert again.runtime.inbox == (msg,)
    assert again.runtime.my_status is Status.DND
    assert again.runtime.windows["popup"].width == 300
    assert again.settings.notifications is False


def test_files_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.update_runtime(acked_seq=1)
    assert (tmp_path / "state" / "state.json").stat().st_mode & 0o077 == 0


def test_inbox_cache_keeps_only_the_newest_messages(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    msgs = [
        StoredMessage(message_id=f"m{i}", seq=i, sender_id=1, sender_login="a", text="x", sent_at=i)
        for i in range(INBOX_CACHE_SIZE + 50)
    ]
    store.update_runtime(inbox=msgs)
    assert len(store.runtime.inbox) == INBOX_CACHE_SIZE
    assert store.runtime.inbox[-1].message_id == msgs[-1].message_id


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"flap_minutes": -1}, "flap_minutes"),
        ({"notifications": "yes"}, "notifications"),
        ({"online_alerts": "sometimes"}, "online_alerts"),
        ({"muted": ["seven"]}, "muted"),
        ({"colour": "blue"}, "unknown setting"),
        ({"version": 9}, "unknown setting"),
        ({"server_url": "ftp://example.org"}, "wss://"),
        ({"server_url": 5}, "string"),
    ],
)
def test_bad_values_raise_and_change_nothing(
    tmp_path: Path, changes: dict[str, Any], fragment: str
) -> None:
    store = make_store(tmp_path)
    store.update(flap_minutes=7)
    seen: list[Settings] = []
    store.changed.connect(seen.append)
    with pytest.raises(SettingsError, match=fragment):
        store.update(notify_on_messages=False, **changes)
    assert store.settings.flap_minutes == 7
    assert store.settings.notify_on_messages is True
    assert make_store(tmp_path).settings == store.settings
    assert seen == []


def test_an_update_that_changes_nothing_does_not_announce(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    seen: list[Settings] = []
    store.changed.connect(seen.append)
    store.update(notifications=True)
    assert seen == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("", ""),
        ("  wss://presence.example.org  ", "wss://presence.example.org"),
        ("https://presence.example.org/ws", "wss://presence.example.org/ws"),
        ("WSS://Presence.Example.org:8443", "wss://presence.example.org:8443"),
        ("ws://127.0.0.1:8765", "ws://127.0.0.1:8765"),
        ("http://localhost:8765", "ws://localhost:8765"),
        ("ws://[::1]:9000/", "ws://[::1]:9000/"),
    ],
)
def test_server_urls_are_normalized(url: str, expected: str) -> None:
    assert normalize_server_url(url) == expected


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ws://presence.example.org", "unencrypted"),
        ("presence.example.org", "wss://"),
        ("wss://", "no host"),
        ("wss://user:secret@presence.example.org", "password"),
        ("wss://presence.example.org/?token=abc", "query"),
        ("wss://presence.example.org:99999", "not a valid"),
    ],
)
def test_unsafe_or_malformed_server_urls_are_rejected(url: str, fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        normalize_server_url(url)


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[1, 2]", b'{"version": "one"}', b'{"version": 1, "flap_minutes": "x"}', b""],
)
def test_corrupt_settings_are_kept_as_backup_and_defaults_used(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "settings.json").write_bytes(content)
    with caplog.at_level(logging.WARNING):
        store = make_store(tmp_path)
    assert store.settings == Settings()
    [backup] = backups(config)
    assert backup.read_bytes() == content
    assert store.load_problems[0].backup == backup
    assert "started from defaults" in caplog.text
    # The next save writes a clean file next to the backup.
    store.update(notifications=False)
    assert make_store(tmp_path).settings.notifications is False


def test_a_newer_settings_file_is_not_overwritten_silently(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    newer = {"version": 2, "server_url": "wss://x.example.org", "future_field": True}
    (config / "settings.json").write_text(json.dumps(newer))
    with caplog.at_level(logging.WARNING):
        store = make_store(tmp_path)
    assert store.settings == Settings()
    [backup] = backups(config)
    assert backup.name.startswith("settings.json.v2-")
    assert json.loads(backup.read_text()) == newer
    assert "newer version" in caplog.text


def test_unknown_fields_of_the_same_version_are_ignored(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "settings.json").write_text('{"version": 1, "idle_minutes": 10, "flap_minutes": 2}')
    store = make_store(tmp_path)
    assert store.settings.flap_minutes == 2
    assert store.load_problems == []


def test_a_file_without_version_is_read_as_version_one(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "settings.json").write_text('{"notify_on_requests": false}')
    assert make_store(tmp_path).settings.notify_on_requests is False


def test_older_versions_are_migrated_step_by_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pretend the current schema is 3 and version 1 stored logins under "mute".
    import presence_desktop.core.settings as settings_mod

    monkeypatch.setattr(settings_mod, "SETTINGS_VERSION", 3)
    steps: list[int] = []

    def v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
        steps.append(1)
        raw["muted"] = raw.pop("mute", [])
        return raw

    def v2_to_v3(raw: dict[str, Any]) -> dict[str, Any]:
        steps.append(2)
        raw["notifications"] = raw.pop("notify", True)
        return raw

    config = tmp_path / "config"
    config.mkdir()
    (config / "settings.json").write_text('{"version": 1, "mute": [5, 6], "notify": false}')
    store = make_store(tmp_path, settings_migrations={1: v1_to_v2, 2: v2_to_v3})
    assert steps == [1, 2]
    assert store.settings.muted == {5, 6}
    assert store.settings.notifications is False
    assert store.settings_load.migrated_from == 1
    assert backups(config) == []


def test_a_failing_migration_falls_back_to_defaults_with_a_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import presence_desktop.core.settings as settings_mod

    monkeypatch.setattr(settings_mod, "SETTINGS_VERSION", 2)

    def broken(raw: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("mute")

    config = tmp_path / "config"
    config.mkdir()
    (config / "settings.json").write_text('{"version": 1}')
    with caplog.at_level(logging.WARNING):
        store = make_store(tmp_path, settings_migrations={1: broken})
    assert store.settings == Settings()
    assert len(backups(config)) == 1


def test_corrupt_runtime_state_does_not_touch_settings(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.update(flap_minutes=9)
    store.update_runtime(acked_seq=3)
    (tmp_path / "state" / "state.json").write_text('{"acked_seq": "many"')
    again = make_store(tmp_path)
    assert again.settings.flap_minutes == 9
    assert again.runtime.acked_seq == 0
    assert len(backups(tmp_path / "state")) == 1


def test_a_crash_during_save_leaves_the_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store(tmp_path)
    store.update(flap_minutes=3)

    def fail(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        store.update(flap_minutes=4)
    monkeypatch.undo()
    assert store.settings.flap_minutes == 3
    assert make_store(tmp_path).settings.flap_minutes == 3
    assert list((tmp_path / "config").glob("*.tmp")) == []


def test_app_paths_under_a_root_and_platform_paths_are_distinct(tmp_path: Path) -> None:
    paths = AppPaths.under(tmp_path)
    assert paths.config_dir.parent == tmp_path
    assert len({paths.config_dir, paths.state_dir, paths.cache_dir, paths.log_dir}) == 4
    real = AppPaths.platform()
    assert all("presence-desktop" in str(p) for p in (real.config_dir, real.state_dir))
    assert real.config_dir != real.state_dir
