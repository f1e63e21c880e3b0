"""The editor bridge protocol, version 1, without any I/O (see docs/bridge.md).

One JSON object per line, UTF-8, ``\\n`` terminated, over a per-user local
socket. An editor window says ``hello`` once, then sends ``activity`` lines
(each a complete description of the window, not a delta), and ``bye``
before it goes. The desktop answers ``hello`` with its own ``hello`` and
every line it cannot accept with an ``error`` line; the connection stays
open unless the error says otherwise. ``BridgeSession`` is the per-connection
state machine: bytes in, decisions and reply lines out.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Callable
from typing import Annotated, Any

import msgspec

from presence_protocol import ActivityKind

from ..core.activity import EditorReport

BRIDGE_VERSION = 1
"""Major version. A client announcing a higher one is refused; minor
additions are new optional fields, which older desktops ignore."""

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


ClientLine = Hello | ActivityLine | Bye
_KNOWN = frozenset({"hello", "activity", "bye"})


class ServerHello(msgspec.Struct, tag_field="type", tag="hello", kw_only=True):
    bridge: int = BRIDGE_VERSION
    app: str = "presence-desktop"
    max_line_bytes: int = MAX_LINE_BYTES
    min_interval: float = MIN_INTERVAL_SECONDS


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


def encode_line(message: ServerHello | ErrorLine) -> bytes:
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
    bye: bool = False
    close: bool = False


class BridgeSession:
    """One connection's protocol state: framing, hello, rate limit, errors."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buffer = bytearray()
        self._discarding = False
        self.hello: Hello | None = None
        self._tokens = float(BURST_LINES)
        self._refilled = clock()
        self._limited = False
        self.errors = 0

    def greet(self) -> bytes:
        return encode_line(ServerHello())

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
                out.replies.append(self.greet())
        elif self.hello is None:
            self._error(out, ErrorCode.HELLO_REQUIRED, "send hello first")
        elif isinstance(msg, ActivityLine):
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
