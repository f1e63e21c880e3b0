"""The editor bridge protocol, versions 1 and 2, without any I/O (see docs/bridge.md).

One JSON object per line, UTF-8, ``\\n`` terminated, over a per-user local
socket. An editor window says ``hello`` once, then sends ``activity`` lines
(each a complete description of the window, not a delta), and ``bye``
before it goes. The desktop answers ``hello`` with its own ``hello`` and
every line it cannot accept with an ``error`` line; the connection stays
open unless the error says otherwise. ``BridgeSession`` is the per-connection
state machine: bytes in, decisions and reply lines out.

Version 2 makes the bridge two-way for clients that announce it: the desktop
pushes my friends, my status and my unread count (``net.editor_link`` writes
those lines), and the client may send commands (set a status, send a
message, open the popup, sign in, hand over a GitHub session). A client that
announces version 1 is answered in version 1 and never sees any of it.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Callable
from typing import Annotated, Any

import msgspec

from presence_protocol import ActivityKind, Status, limits

from ..core.activity import EditorReport

BRIDGE_VERSION = 2
"""Highest major version spoken. A client announcing a higher one is refused;
one announcing a lower one is answered in its version. Minor additions are new
optional fields, which older peers ignore."""

TWO_WAY = 2
"""First version with desktop → client state lines and client commands."""

FEATURES = ("friends", "status", "unread", "commands", "github_session")
"""What a version-2 desktop offers, announced in its ``hello``."""

MAX_LINE_BYTES = 8192
"""Longest line accepted, newline excluded."""

MIN_INTERVAL_SECONDS = 2.0
"""Editors should send at most one activity per this interval unless ``kind`` changes."""

BURST_LINES = 20
REFILL_PER_SECOND = 2.0
"""Token bucket per connection: 20 lines at once, then 2 per second."""

MAX_CONNECTIONS = 64
"""Editor windows connected at once; more are refused with ``too_many_windows``."""

_MAX_FIELD = 4096

Text = Annotated[str, msgspec.Meta(max_length=_MAX_FIELD)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class ErrorCode(enum.StrEnum):
    BAD_LINE = "bad_line"
    """Not a JSON object, or not UTF-8."""
    LINE_TOO_LONG = "line_too_long"
    UNKNOWN_TYPE = "unknown_type"
    INVALID = "invalid"
    """A known message with a wrong field; the message is ignored."""
    HELLO_REQUIRED = "hello_required"
    UNSUPPORTED_VERSION = "unsupported_version"
    """Fatal: the connection is closed after this error."""
    RATE_LIMITED = "rate_limited"
    TOO_MANY_WINDOWS = "too_many_windows"
    """Fatal: the connection is closed after this error."""
    NOT_SIGNED_IN = "not_signed_in"
    """A command that needs a signed-in desktop arrived while signed out."""
    REFUSED = "refused"
    """A well-formed command the desktop will not carry out (the message says why)."""


FATAL = frozenset({ErrorCode.UNSUPPORTED_VERSION, ErrorCode.TOO_MANY_WINDOWS})


class _Msg(msgspec.Struct, tag_field="type", forbid_unknown_fields=False, kw_only=True):
    pass


class Hello(_Msg, tag="hello"):
    bridge: Annotated[int, msgspec.Meta(ge=1)]
    editor: Name
    version: Annotated[str, msgspec.Meta(max_length=64)] = ""
    window: Annotated[str, msgspec.Meta(max_length=128)] = ""


class ActivityLine(_Msg, tag="activity"):
    workspace: Text = ""
    folder: Text = ""
    git_remote: Text = ""
    file: Text = ""
    language: Annotated[str, msgspec.Meta(max_length=100)] = ""
    kind: ActivityKind | None = None
    focused: bool = False


class Bye(_Msg, tag="bye"):
    pass


RequestId = Annotated[str, msgspec.Meta(max_length=64)]


class SetStatusLine(_Msg, tag="set_status", kw_only=True):
    """Version 2: set my status, as the tray's status menu does."""

    id: RequestId = ""
    status: Status
    until: Annotated[int, msgspec.Meta(ge=0)] | None = None


class SendMessageLine(_Msg, tag="send_message", kw_only=True):
    """Version 2: send a friend a message, as the popup does."""

    id: RequestId = ""
    to: Annotated[int, msgspec.Meta(ge=1)]
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=limits.MAX_MESSAGE_CHARS)]


class OpenPopupLine(_Msg, tag="open_popup"):
    """Version 2: show the desktop's friends popup."""

    id: RequestId = ""


class SignInLine(_Msg, tag="sign_in"):
    """Version 2: start the desktop's own (browser) sign-in."""

    id: RequestId = ""


class GitHubSessionLine(_Msg, tag="github_session", kw_only=True):
    """Version 2: the GitHub token VS Code gave the extension, for one sign-in.

    Either the answer to a ``sign_in_request`` (``request`` echoes its id) or
    unsolicited, when the person chose "Presence: Sign in" in the editor.
    ``error`` instead of a token says the person cancelled in the editor.
    """

    id: RequestId = ""
    request: RequestId = ""
    access_token: Annotated[str, msgspec.Meta(max_length=limits.MAX_TOKEN_CHARS)] = ""
    error: Annotated[str, msgspec.Meta(max_length=200)] = ""

    def __repr__(self) -> str:  # the token must never reach a log through repr()
        return f"GitHubSessionLine(id={self.id!r}, request={self.request!r}, error={self.error!r})"


Command = SetStatusLine | SendMessageLine | OpenPopupLine | SignInLine | GitHubSessionLine
ClientLine = Hello | ActivityLine | Bye | Command
_V1 = frozenset({"hello", "activity", "bye"})
_KNOWN = _V1 | {"set_status", "send_message", "open_popup", "sign_in", "github_session"}


class ServerHello(msgspec.Struct, tag_field="type", tag="hello", kw_only=True):
    bridge: int = BRIDGE_VERSION
    app: str = "presence-desktop"
    max_line_bytes: int = MAX_LINE_BYTES
    min_interval: float = MIN_INTERVAL_SECONDS


class ServerHelloV2(ServerHello, tag="hello", kw_only=True):
    features: tuple[str, ...] = FEATURES


class ErrorLine(msgspec.Struct, tag_field="type", tag="error", kw_only=True):
    code: str
    message: str


_decoder: msgspec.json.Decoder[ClientLine] = msgspec.json.Decoder(ClientLine)
_encoder = msgspec.json.Encoder()


class _Envelope(msgspec.Struct, forbid_unknown_fields=False):
    type: Any = None


_envelope = msgspec.json.Decoder(_Envelope)


class LineError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def encode_line(message: msgspec.Struct | dict[str, Any]) -> bytes:
    return _encoder.encode(message) + b"\n"


def decode_line(line: bytes) -> ClientLine:
    """Parse one line (without its newline). Raises ``LineError`` and nothing else."""
    if len(line) > MAX_LINE_BYTES:
        raise LineError(ErrorCode.LINE_TOO_LONG, f"lines are at most {MAX_LINE_BYTES} bytes")
    try:
        return _decoder.decode(line)
    except msgspec.ValidationError as exc:
        try:
            kind = _envelope.decode(line).type
        except msgspec.ValidationError:
            raise LineError(ErrorCode.BAD_LINE, "a line must be one JSON object") from None
        except (msgspec.DecodeError, RecursionError, ValueError):
            # Skipping a deeply nested unknown field recurses too (issue 7 fuzz).
            raise LineError(ErrorCode.BAD_LINE, "not JSON: nested too deeply") from None
        if kind is None:
            raise LineError(ErrorCode.INVALID, "missing 'type' field") from None
        if kind not in _KNOWN:
            shown = str(kind)[:40]
            raise LineError(ErrorCode.UNKNOWN_TYPE, f"unknown type {shown!r}") from None
        raise LineError(ErrorCode.INVALID, f"{kind}: {exc}") from None
    except (msgspec.DecodeError, RecursionError, UnicodeError, ValueError) as exc:
        raise LineError(ErrorCode.BAD_LINE, f"not JSON: {exc}"[:200]) from None


@dataclasses.dataclass(slots=True)
class Outcome:
    """What the connection should do after some bytes arrived."""

    replies: list[bytes] = dataclasses.field(default_factory=list)
    reports: list[EditorReport] = dataclasses.field(default_factory=list)
    """Activity to hand to the merger, oldest first."""
    commands: list[Command] = dataclasses.field(default_factory=list)
    """Version-2 commands to carry out, oldest first."""
    joined: bool = False
    """A version-2 client finished its first ``hello``: send it the current state."""
    bye: bool = False
    close: bool = False


class BridgeSession:
    """One connection's protocol state: framing, hello, rate limit, errors."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buffer = bytearray()
        self._discarding = False
        self.hello: Hello | None = None
        self.version = 0
        """The version both sides speak on this connection (0 before ``hello``)."""
        self._tokens = float(BURST_LINES)
        self._refilled = clock()
        self._limited = False
        self.errors = 0

    def greet(self) -> bytes:
        if self.version >= TWO_WAY:
            return encode_line(ServerHelloV2(bridge=self.version))
        return encode_line(ServerHello(bridge=self.version or 1))

    @property
    def two_way(self) -> bool:
        return self.version >= TWO_WAY

    def refuse(self, code: ErrorCode, message: str) -> bytes:
        return encode_line(ErrorLine(code=code.value, message=message))

    def feed(self, data: bytes) -> Outcome:
        out = Outcome()
        self._buffer += data
        while not out.close:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                if len(self._buffer) > MAX_LINE_BYTES:
                    # Say so once, then drop bytes until the line ends.
                    if not self._discarding:
                        self._error(out, ErrorCode.LINE_TOO_LONG, f"over {MAX_LINE_BYTES} bytes")
                    self._discarding = True
                    self._buffer.clear()
                break
            line = bytes(self._buffer[:newline]).rstrip(b"\r")
            del self._buffer[: newline + 1]
            if self._discarding:
                self._discarding = False
                continue
            if line.strip():
                self._line(line, out)
        return out

    def _line(self, line: bytes, out: Outcome) -> None:
        allowed = self._take_token()
        try:
            msg: ClientLine | None = decode_line(line)
            error = None
        except LineError as exc:
            msg, error = None, exc
        if isinstance(msg, Bye):  # leaving is never rate limited
            out.bye = out.close = True
            return
        if not allowed:
            if not self._limited:
                self._limited = True
                self._error(
                    out,
                    ErrorCode.RATE_LIMITED,
                    f"more than {BURST_LINES} lines at once or {REFILL_PER_SECOND:g}/s; "
                    "lines are ignored until the rate drops",
                )
            return
        self._limited = False
        if error is not None:
            self._error(out, error.code, error.message)
            return
        if isinstance(msg, Hello):
            if msg.bridge > BRIDGE_VERSION:
                self._error(
                    out,
                    ErrorCode.UNSUPPORTED_VERSION,
                    f"this desktop speaks bridge version {BRIDGE_VERSION}",
                )
                return
            first = self.hello is None
            self.hello = msg
            if first:
                # The version is fixed by the first hello; a later one only renames.
                self.version = msg.bridge
                out.replies.append(self.greet())
                out.joined = self.two_way
        elif self.hello is None:
            self._error(out, ErrorCode.HELLO_REQUIRED, "send hello first")
        elif not isinstance(msg, ActivityLine) and not self.two_way:
            assert msg is not None
            kind = type(msg).__struct_config__.tag
            self._error(out, ErrorCode.UNKNOWN_TYPE, f"{kind!r} needs bridge version {TWO_WAY}")
        elif not isinstance(msg, ActivityLine):
            assert msg is not None
            out.commands.append(msg)
        else:
            out.reports.append(
                EditorReport(
                    editor=self.hello.editor,
                    workspace=msg.workspace,
                    folder=msg.folder,
                    git_remote=msg.git_remote,
                    file=msg.file,
                    language=msg.language,
                    kind=msg.kind,
                    focused=msg.focused,
                )
            )

    def _take_token(self) -> bool:
        now = self._clock()
        self._tokens = min(
            float(BURST_LINES), self._tokens + (now - self._refilled) * REFILL_PER_SECOND
        )
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def _error(self, out: Outcome, code: ErrorCode, message: str) -> None:
        self.errors += 1
        out.replies.append(self.refuse(code, message))
        if code in FATAL:
            out.close = True
