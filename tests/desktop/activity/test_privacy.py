"""The rule table decides exactly what leaves the machine."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import msgspec
import pytest

from presence_desktop.core.activity import Current, EditorReport
from presence_desktop.core.privacy import (
    PrivacyRule,
    PrivacySettings,
    ShareLevel,
    clean_label,
    filter_activity,
    normalize_remote,
    outgoing_presence,
    preview,
)
from presence_protocol import Activity, ActivityKind, SeenStatus, Status, decode_client

SINCE = 1_700_000_000

REPORT = EditorReport(
    editor="Visual Studio Code",
    workspace="api",
    folder="/home/ada/work/acme/api",
    git_remote="git@github.com:Acme/api.git",
    file="/home/ada/work/acme/api/src/server/handlers.py",
    language="python",
    kind=ActivityKind.CODING,
    focused=True,
)

OPT_IN = (
    PrivacyRule(remote="github.com/acme/*", level=ShareLevel.FILE),
    PrivacyRule(folder="/home/ada/work/secret", level=ShareLevel.NOTHING),
    PrivacyRule(folder="/home/ada/oss/*", level=ShareLevel.PROJECT, label="Open source"),
    PrivacyRule(remote="gitlab.example.org/team", level=ShareLevel.CODING),
)


def act(**fields: Any) -> Activity:
    return Activity(since=SINCE, **fields)


def current(report: EditorReport) -> Current:
    return Current(report=report, since=SINCE, window="w1")


def variant(**changes: Any) -> EditorReport:
    return dataclasses.replace(REPORT, **changes)


PY_PRIVATE = act(
    kind=ActivityKind.CODING,
    language="Python",
    project="a private project",
)

TABLE: list[tuple[str, PrivacySettings, EditorReport, Activity | None]] = [
    ("default: language and the private label", PrivacySettings(), REPORT, PY_PRIVATE),
    (
        "default without any project: no private label",
        PrivacySettings(),
        variant(workspace="", folder="", git_remote="", file="notes.py"),
        act(kind=ActivityKind.CODING, language="Python"),
    ),
    (
        "default level nothing: status only",
        PrivacySettings(default_level=ShareLevel.NOTHING),
        REPORT,
        None,
    ),
    (
        "default level coding: kind only",
        PrivacySettings(default_level=ShareLevel.CODING),
        variant(kind=ActivityKind.DEBUGGING),
        act(kind=ActivityKind.DEBUGGING),
    ),
    (
        "opted-in remote shares project and file basename",
        PrivacySettings(rules=OPT_IN),
        REPORT,
        act(
            kind=ActivityKind.CODING,
            language="Python",
            project="api",
            file="handlers.py",
        ),
    ),
    (
        "https remote with a token matches the same rule",
        PrivacySettings(rules=OPT_IN),
        variant(git_remote="https://x-access-token:s3cr3t@github.com/ACME/api", workspace=""),
        act(
            kind=ActivityKind.CODING,
            language="Python",
            project="api",
            file="handlers.py",
        ),
    ),
    (
        "other owner on the same host stays private",
        PrivacySettings(rules=OPT_IN),
        variant(git_remote="git@github.com:someone/api.git"),
        PY_PRIVATE,
    ),
    (
        "folder rule hides everything",
        PrivacySettings(rules=OPT_IN),
        variant(folder="/home/ada/work/secret/sub", git_remote=""),
        None,
    ),
    (
        "folder glob with a label shares the label, not the folder name",
        PrivacySettings(rules=OPT_IN),
        variant(
            folder="/home/ada/oss/ripgrep", git_remote="", workspace="ripgrep", language="rust"
        ),
        act(
            kind=ActivityKind.CODING,
            language="Rust",
            project="Open source",
        ),
    ),
    (
        "a prefix pattern without wildcards covers repos below it",
        PrivacySettings(rules=OPT_IN),
        variant(
            git_remote="ssh://git@gitlab.example.org:2222/team/infra.git", kind=ActivityKind.READING
        ),
        act(kind=ActivityKind.READING),
    ),
    (
        "first matching rule wins",
        PrivacySettings(
            rules=(
                PrivacyRule(remote="github.com/acme/api", level=ShareLevel.CODING),
                PrivacyRule(remote="github.com/acme/*", level=ShareLevel.FILE),
            )
        ),
        REPORT,
        act(kind=ActivityKind.CODING),
    ),
    (
        "project level without file, from the folder name when no workspace name",
        PrivacySettings(default_level=ShareLevel.PROJECT),
        variant(workspace="", git_remote="", folder="C:\\Users\\ada\\src\\tool\\"),
        act(
            kind=ActivityKind.CODING,
            language="Python",
            project="tool",
        ),
    ),
    (
        "a workspace name that is a path is cut to its last part",
        PrivacySettings(default_level=ShareLevel.FILE),
        variant(workspace="/srv/clients/bigbank/ledger", file="C:\\secret\\plan.md"),
        act(
            kind=ActivityKind.CODING,
            language="Python",
            project="ledger",
            file="plan.md",
        ),
    ),
    (
        "a custom private label",
        PrivacySettings(private_label="work stuff"),
        REPORT,
        act(
            kind=ActivityKind.CODING,
            language="Python",
            project="work stuff",
        ),
    ),
]


@pytest.mark.parametrize(
    ("settings", "report", "expected"),
    [t[1:] for t in TABLE],
    ids=[t[0] for t in TABLE],
)
def test_rule_table_gives_exact_payload(
    settings: PrivacySettings, report: EditorReport, expected: Activity | None
) -> None:
    assert filter_activity(settings, current(report)) == expected


@pytest.mark.parametrize(("name", "settings", "report", "_"), TABLE, ids=[t[0] for t in TABLE])
def test_no_payload_ever_contains_a_path_or_remote(
    name: str, settings: PrivacySettings, report: EditorReport, _: object
) -> None:
    for status in Status:
        wire = outgoing_presence(settings, status, current(report)).activity
        text = msgspec.json.encode(wire).decode()
        assert "/" not in text and "\\\\" not in text, name
        assert "s3cr3t" not in text and "github.com" not in text


def test_invisible_and_away_send_no_activity_but_dnd_does() -> None:
    c = current(REPORT)
    assert outgoing_presence(PrivacySettings(), Status.INVISIBLE, c).activity is None
    assert outgoing_presence(PrivacySettings(), Status.AWAY, c).activity is None
    assert outgoing_presence(PrivacySettings(), Status.DND, c).activity == PY_PRIVATE
    assert (
        outgoing_presence(PrivacySettings(), Status.ONLINE, c, share_activity=False).activity
        is None
    )


def test_preview_is_rendered_from_the_exact_wire_message() -> None:
    p = preview(PrivacySettings(), Status.ONLINE, current(REPORT))
    assert p.line == "Coding · Python · a private project"
    sent = decode_client(p.wire)
    assert sent == p.message
    assert json.loads(p.wire)["activity"]["project"] == "a private project"
    assert ("Project", "a private project") in p.details
    assert "File" not in dict(p.details)
    assert p.text.splitlines()[0] == p.line


def test_preview_of_invisible_says_offline_and_nothing_else() -> None:
    p = preview(PrivacySettings(default_level=ShareLevel.FILE), Status.INVISIBLE, current(REPORT))
    assert p.seen is SeenStatus.OFFLINE
    assert p.line == "Offline"
    assert list(p.details) == [("Status", "Offline")]
    assert "activity" not in json.loads(p.wire)


def test_preview_of_dnd_and_no_editor() -> None:
    assert preview(PrivacySettings(), Status.DND, current(REPORT)).line == (
        "Do not disturb · Coding · Python · a private project"
    )
    assert preview(PrivacySettings(), Status.ONLINE, None).line == "Online"


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("git@github.com:Acme/API.git", "github.com/acme/api"),
        ("https://github.com/acme/api", "github.com/acme/api"),
        ("https://github.com/acme/api.git/", "github.com/acme/api"),
        ("https://user:tok@github.com:443/acme/api.git", "github.com/acme/api"),
        ("ssh://git@gitlab.com:2222/group/sub/repo.git", "gitlab.com/group/sub/repo"),
        ("git://example.org/x/y", "example.org/x/y"),
        ("file:///srv/git/repo.git", None),
        ("/srv/git/repo.git", None),
        ("", None),
        ("C:\\repos\\x", None),
    ],
)
def test_normalize_remote(url: str, normal: str | None) -> None:
    assert normalize_remote(url) == normal


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("main.py", "main.py"),
        ("/home/ada/a/b.rs", "b.rs"),
        ("C:\\x\\y.ts", "y.ts"),
        ("dir/", None),
        ("..", None),
        ("bad\nname\x00.py", "badname.py"),
        ("x" * 300, "x" * 99 + "…"),
    ],
)
def test_clean_label(raw: str, clean: str | None) -> None:
    assert clean_label(raw) == clean


def test_settings_decode_and_reject_bad_rules() -> None:
    raw = {
        "default_level": "coding",
        "rules": [{"remote": "github.com/me/*", "level": "file", "future_field": 1}],
    }
    settings = msgspec.convert(raw, PrivacySettings)
    assert settings.rules[0].level is ShareLevel.FILE
    with pytest.raises(msgspec.ValidationError, match="remote or a folder"):
        msgspec.convert({"rules": [{"level": "file"}]}, PrivacySettings)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"default_level": "everything"}, PrivacySettings)
    with pytest.raises(msgspec.ValidationError, match="private project label"):
        msgspec.convert({"private_label": "  "}, PrivacySettings)


def test_a_rule_label_never_carries_characters_the_server_refuses() -> None:
    """The server refuses control and bidi characters in labels (issue 14): a rule
    label typed with one must still give a presence the server accepts."""
    rules = (
        PrivacyRule(remote="github.com/acme/*", level=ShareLevel.PROJECT, label="acme\n\u202e/api"),
    )
    activity = filter_activity(PrivacySettings(rules=rules), current(REPORT))
    assert activity is not None and activity.project == "api"  # one line, last component
    frame = msgspec.json.encode({"type": "set_presence", "status": "online", "activity": activity})
    assert decode_client(frame.decode()).activity == activity  # type: ignore[union-attr]
