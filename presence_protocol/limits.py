"""Limits of protocol ``presence.v1``.

They are part of the contract: the server enforces them and tells clients
about them in ``hello``; clients can use them to validate before sending.
"""

from typing import Final

SUBPROTOCOL: Final = "presence.v1"
"""WebSocket subprotocol name; a new major version gets a new name."""

MAX_FRAME_BYTES: Final = 16 * 1024
"""Largest text frame either side accepts. Bigger frames close with 1009."""

MAX_SERVER_FRAME_BYTES: Final = 1024 * 1024
"""Largest frame a server sends. A longer answer is cut: a snapshot into
``snapshot_part`` frames, an export into pages (docs/protocol.md §8)."""

MIN_SERVER_FRAME_BYTES: Final = 16 * 1024
"""Smallest ``max_server_frame_bytes`` a server may be configured with: every
frame that is not cut (docs/protocol.md §8) fits it at its worst, so a server
can keep the limit it announces (tests/server/test_frame_bounds.py)."""

MAX_ERROR_MESSAGE_CHARS: Final = 1000
"""Longest ``error.message`` a server sends, in code points; longer text (a
validation error quoting a client's long value) is cut, so an ``error`` frame
is bounded whatever the request held."""

MAX_MESSAGE_CHARS: Final = 500
"""Longest chat message text, in Unicode code points."""

MAX_LABEL_CHARS: Final = 100
"""Longest activity label (editor, project, language, file)."""

MAX_LOGIN_CHARS: Final = 39
"""GitHub logins are at most 39 characters."""

MAX_DEVICE_CHARS: Final = 64
"""Longest device name a client may give its session."""

MAX_REQUEST_ID_CHARS: Final = 64
"""Longest string request id."""

MAX_TOKEN_CHARS: Final = 512
"""Longest token or code accepted in a login message."""

MAX_FRIENDS: Final = 1000
"""Friends plus outgoing requests per user."""

COMMANDS_PER_MINUTE: Final = 120
"""Commands one connection may send per rolling minute (excluding ``ack``)."""

PRESENCE_UPDATES_PER_WINDOW: Final = 5
"""``set_presence`` commands applied at once per window; more are coalesced."""

PRESENCE_WINDOW_SECONDS: Final = 10.0
"""Length of the presence window; the latest coalesced update lands at its end."""

FRIEND_REQUESTS_PER_HOUR: Final = 30
"""Friend requests one user may send per rolling hour."""

AUTH_DEADLINE_SECONDS: Final = 10.0
"""Time a new connection has to authenticate before it is closed (4001)."""

MAX_REPLAY_MESSAGES: Final = 500
"""Most unacknowledged messages replayed at once after authentication."""

TYPING_EVERY_SECONDS: Final = 4.0
"""A client sends at most one ``typing`` hint per friend this often while the person writes."""
TYPING_SHOWN_SECONDS: Final = 6.0
"""A client shows "typing…" this long after the last hint (or until a message arrives)."""
