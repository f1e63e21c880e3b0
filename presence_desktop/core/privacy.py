"""What my friends may learn about my work, decided before anything is sent.

Privacy first: by default friends see that I am coding and in which
language, and the project appears as "a private project". Project and file
names are shared only for repositories or folders the user opted in with a
rule. The output of ``filter_activity`` is exactly the ``Activity`` that goes
on the wire; it is built from labels only (a file name is its basename, a
project is a name, never a folder path or a remote URL), so no rule and no
editor can make a path leave the machine.
"""

from __future__ import annotations

import dataclasses
import enum
import fnmatch
import os
import re
import unicodedata
from collections.abc import Sequence

import msgspec

from presence_protocol import (
    Activity,
    ActivityKind,
    SeenStatus,
    SetPresence,
    Status,
    encode_text,
    limits,
)

from .activity import Current, EditorReport
from .format import SEP, activity_summary, status_label
from .languages import display_name


class ShareLevel(enum.StrEnum):
    """How much of my activity a rule lets friends see, each level adding one thing."""

    NOTHING = "nothing"
    """Just my status ("Online"), no activity at all."""
    CODING = "coding"
    """The kind of activity: coding, reading or debugging."""
    LANGUAGE = "language"
    """… plus the language; the project appears as the private label."""
    PROJECT = "project"
    """… plus the project name."""
    FILE = "file"
    """… plus the name (never the path) of the file in front."""

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, other: ShareLevel) -> bool:
        return self.rank >= other.rank


_RANK = {level: i for i, level in enumerate(ShareLevel)}

DEFAULT_PRIVATE_LABEL = "a private project"


class PrivacyRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """One line of the rule table: which projects it covers and how much they share.

    ``remote`` is a glob over the normalised git remote ``host/owner/repo``
    (lower case, no scheme, user or ``.git``), e.g. ``github.com/acme/*``.
    ``folder`` is a glob over the workspace folder; ``~`` means the home
    folder. In both, ``*`` also matches ``/``, and a pattern without
    wildcards covers itself and everything below it. A rule with both
    matches only when both do. The first matching rule wins.
    """

    level: ShareLevel
    remote: str = ""
    folder: str = ""
    label: str = ""
    """Project name friends see for this rule instead of the repository name."""

    def __post_init__(self) -> None:
        if not self.remote.strip() and not self.folder.strip():
            raise ValueError("a privacy rule needs a remote or a folder pattern")
        if len(self.label) > limits.MAX_LABEL_CHARS:
            raise ValueError(f"a rule label has at most {limits.MAX_LABEL_CHARS} characters")


class PrivacySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """The privacy part of the settings schema."""

    default_level: ShareLevel = ShareLevel.LANGUAGE
    """For every project no rule matches."""
    private_label: str = DEFAULT_PRIVATE_LABEL
    """What friends read instead of a project name the rules do not share."""
    rules: tuple[PrivacyRule, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= len(self.private_label.strip()) <= limits.MAX_LABEL_CHARS:
            raise ValueError(
                f"the private project label needs 1 to {limits.MAX_LABEL_CHARS} characters"
            )


# ------------------------------------------------------------------ matching

_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/\\]{2,}):(?P<path>(?!//)[^\\]+)$")
"""``[user@]host:path`` as git reads it; ``C:\\x`` is a Windows path, not a host."""


def normalize_remote(url: str) -> str | None:
    """``host/owner/repo`` for any common git remote spelling, or None.

    Users, passwords, tokens and ports are dropped, so a remote with
    credentials in it can still be matched without keeping them.
    """
    text = url.strip()
    if not text:
        return None
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme.lower() == "file":
            return None
        hostport, _, path = rest.partition("/")
        host = hostport.rpartition("@")[2]
        # Drop a port; an IPv6 literal keeps its brackets and inner colons.
        host = host.partition("]")[0] + "]" if host.startswith("[") else host.partition(":")[0]
    else:
        match = _SCP_LIKE.match(text)
        if match is None:
            return None
        host, path = match["host"], match["path"]
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    path = path.strip("/")
    if not host or not path:
        return None
    return f"{host}/{path}".lower()


def _normalize_folder(path: str) -> str:
    return os.path.normcase(os.path.expanduser(path)).replace("\\", "/").rstrip("/")


def _glob_covers(value: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern) or fnmatch.fnmatchcase(value, pattern + "/*")


def rule_matches(rule: PrivacyRule, folder: str, remote: str) -> bool:
    """Whether ``rule`` covers a workspace with this folder and git remote."""
    if rule.remote.strip():
        normal = normalize_remote(remote)
        pattern = normalize_remote(rule.remote) or rule.remote.strip().strip("/").lower()
        if normal is None or not _glob_covers(normal, pattern):
            return False
    if rule.folder.strip():
        if not folder.strip():
            return False
        if not _glob_covers(_normalize_folder(folder), _normalize_folder(rule.folder.strip())):
            return False
    return True


def matching_rule(settings: PrivacySettings, folder: str, remote: str) -> PrivacyRule | None:
    for rule in settings.rules:
        if rule_matches(rule, folder, remote):
            return rule
    return None


# ------------------------------------------------------------------ labels

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def clean_label(text: str) -> str | None:
    """A label safe to send: one line, no path, no control characters, not too long."""
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text)
    # Whatever came in, only the last path component may go out.
    text = re.split(r"[/\\]", text.strip())[-1].strip()
    if not text or text in {".", ".."}:
        return None
    if len(text) > limits.MAX_LABEL_CHARS:
        text = text[: limits.MAX_LABEL_CHARS - 1].rstrip() + "…"
    return text


def project_name(report: EditorReport) -> str | None:
    """The project's own name: the workspace name, else the repository, else the folder."""
    for candidate in (
        report.workspace,
        (normalize_remote(report.git_remote) or "").rpartition("/")[2],
        report.folder.replace("\\", "/").rstrip("/"),
    ):
        label = clean_label(candidate)
        if label is not None:
            return label
    return None


def level_for(settings: PrivacySettings, report: EditorReport) -> tuple[ShareLevel, str | None]:
    """The share level for this workspace and the rule's label, if any."""
    rule = matching_rule(settings, report.folder, report.git_remote)
    if rule is None:
        return settings.default_level, None
    return rule.level, clean_label(rule.label) if rule.label else None


def filter_activity(settings: PrivacySettings, current: Current | None) -> Activity | None:
    """Exactly the activity friends receive for what I am doing, or None."""
    if current is None:
        return None
    report = current.report
    level, rule_label = level_for(settings, report)
    if level is ShareLevel.NOTHING:
        return None
    kind = report.kind or ActivityKind.CODING
    activity = Activity(kind=kind, since=max(0, current.since))
    if not level.allows(ShareLevel.LANGUAGE):
        return activity
    # No editor label: no friend's app shows it, and at 30 bytes it was the
    # largest field of every delta (docs/performance.md).
    activity.language = clean_label(display_name(report.language)) if report.language else None
    has_project = bool(report.workspace or report.folder or report.git_remote)
    if level.allows(ShareLevel.PROJECT):
        activity.project = rule_label or project_name(report)
    elif has_project:
        activity.project = clean_label(settings.private_label)
    if level.allows(ShareLevel.FILE) and report.file:
        activity.file = clean_label(report.file)
    return activity


# ------------------------------------------------------------------ what friends see


def seen_status(status: Status) -> SeenStatus:
    """How friends see a status I chose: invisible looks offline."""
    return SeenStatus.OFFLINE if status is Status.INVISIBLE else SeenStatus(status.value)


def describe(status: SeenStatus, activity: Activity | None) -> str:
    """Status and activity in one line, worded as a friend's list words them."""
    summary = activity_summary(activity) if status is not SeenStatus.OFFLINE else ""
    if status is SeenStatus.ONLINE and summary:
        return summary
    return SEP.join(p for p in (status_label(status), summary) if p)


@dataclasses.dataclass(frozen=True, slots=True)
class Preview:
    """The "What friends see" panel, built from the exact outgoing message."""

    message: SetPresence
    seen: SeenStatus
    line: str
    """What a friend's list shows, e.g. ``Coding · Python · a private project``."""
    details: Sequence[tuple[str, str]]
    """Field name and value for every field that is sent, in reading order."""
    wire: str
    """The JSON text of the ``set_presence`` frame."""

    @property
    def text(self) -> str:
        rows = [self.line, *(f"{name}: {value}" for name, value in self.details)]
        return "\n".join(rows)


def outgoing_presence(
    settings: PrivacySettings,
    status: Status,
    current: Current | None,
    *,
    share_activity: bool = True,
) -> SetPresence:
    """The ``set_presence`` message for my status and what I am doing.

    Invisible and away send no activity (invisible must reveal nothing, and
    an away activity would be stale); do-not-disturb keeps it, since people
    in focus mode are usually working.
    """
    activity = None
    if share_activity and status in (Status.ONLINE, Status.DND):
        activity = filter_activity(settings, current)
    return SetPresence(status=status, activity=activity)


def preview(
    settings: PrivacySettings,
    status: Status,
    current: Current | None,
    *,
    share_activity: bool = True,
) -> Preview:
    """What friends see right now, rendered from the message that would be sent."""
    message = outgoing_presence(settings, status, current, share_activity=share_activity)
    seen = seen_status(status)
    activity = message.activity
    details: list[tuple[str, str]] = [("Status", status_label(seen))]
    if activity is not None and seen is not SeenStatus.OFFLINE:
        if activity.kind is not None:
            details.append(("Activity", activity_summary(Activity(kind=activity.kind))))
        for name, value in (
            ("Editor", activity.editor),
            ("Language", activity.language),
            ("Project", activity.project),
            ("File", activity.file),
        ):
            if value:
                details.append((name, value))
    line = describe(seen, activity)
    return Preview(message, seen, line, tuple(details), encode_text(message))
