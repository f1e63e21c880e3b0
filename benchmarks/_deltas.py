"""The "typical" presence delta, produced by the real code on both sides.

The desktop's privacy layer turns an editor report into the ``set_presence``
it sends; the server's presence rules turn that into the ``presence`` delta
friends receive. Building both here from the real functions keeps the
benchmarks honest when either side changes what it sends.
"""

from __future__ import annotations

import time

import msgspec

from presence_desktop.core.activity import Current, EditorReport
from presence_desktop.core.privacy import PrivacySettings, outgoing_presence
from presence_protocol import SeenStatus, SetPresence, Status, encode
from presence_server.domain import presence

TYPICAL_REPORT = EditorReport(
    editor="Visual Studio Code",
    workspace="presence-desktop",
    folder="/home/dev/src/presence-desktop",
    git_remote="git@github.com:example/presence-desktop.git",
    file="/home/dev/src/presence-desktop/presence_server/hub.py",
    language="python",
    focused=True,
)
"""VS Code on a Python file, default privacy settings (language shared, project private)."""

TYPICAL_USER_ID = 12_345_678
"""Eight digits, like GitHub ids handed out today."""


def typical_set_presence(now: int | None = None) -> SetPresence:
    since = int(time.time()) if now is None else now
    current = Current(report=TYPICAL_REPORT, since=since - 1500, window="w1")
    return outgoing_presence(PrivacySettings(), Status.ONLINE, current)


def typical_delta(user_id: int = TYPICAL_USER_ID, now: int | None = None) -> bytes:
    """The ``presence`` frame a friend receives for ``typical_set_presence``."""
    message = typical_set_presence(now)
    seen = presence.Seen(SeenStatus.ONLINE, message.activity, None)
    return encode(presence.update(user_id, seen, None))


def stamped_templates(now: int | None = None) -> tuple[bytes, bytes]:
    """(set_presence for the real server, delta for the ceiling) with ``STAMP``/``USERID`` holes.

    The project label carries the send time; the ceiling's publishers send
    the finished delta, which the bare server forwards as is.
    """
    message = typical_set_presence(now)
    assert message.activity is not None
    activity = msgspec.structs.replace(message.activity, project="STAMP")
    command = encode(msgspec.structs.replace(message, activity=activity, id=1))
    seen = presence.Seen(SeenStatus.ONLINE, activity, None)
    delta = encode(presence.update(TYPICAL_USER_ID, seen, None))
    delta = delta.replace(str(TYPICAL_USER_ID).encode(), b"USERID")
    return command, delta
