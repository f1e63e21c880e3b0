"""Encoding and decoding frames. Decoding never raises anything but ProtocolError."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar, cast

import msgspec

from . import limits
from .errors import ErrorCode, ProtocolError
from .messages import AnyClientMessage, AnyServerMessage, ClientMessage, ServerMessage


class _Envelope(msgspec.Struct, forbid_unknown_fields=False):
    """The two fields read from a frame that failed full validation."""

    type: Any = None
    id: Any = None


_encoder = msgspec.json.Encoder()
_envelope_decoder = msgspec.json.Decoder(_Envelope)
_client_decoder = msgspec.json.Decoder(AnyClientMessage)
_server_decoder = msgspec.json.Decoder(AnyServerMessage)

T = TypeVar("T")


def _tags(union: Any) -> frozenset[str]:
    return frozenset(
        msgspec.inspect.type_info(cls).tag  # type: ignore[attr-defined]
        for cls in union.__args__
    )


CLIENT_TYPES = _tags(AnyClientMessage)
SERVER_TYPES = _tags(AnyServerMessage)


def encode(message: ClientMessage | ServerMessage) -> bytes:
    """Serialize a message to the UTF-8 JSON bytes of one text frame."""
    return _encoder.encode(message)


def encode_text(message: ClientMessage | ServerMessage) -> str:
    """Like ``encode`` but as ``str``, which websockets sends as a text frame."""
    return _encoder.encode(message).decode()


def _usable_id(rid: Any) -> bool:
    """Only ids a reply can echo safely: short strings and JSON-safe integers."""
    if isinstance(rid, str):
        return len(rid) <= limits.MAX_REQUEST_ID_CHARS
    return isinstance(rid, int) and not isinstance(rid, bool) and abs(rid) <= 2**53


def _envelope(data: str) -> tuple[Any, Any]:
    """The ``type`` and a usable request ``id`` of a frame that failed validation."""
    try:
        env = _envelope_decoder.decode(data)
    except msgspec.ValidationError:
        raise ProtocolError(ErrorCode.BAD_FRAME, "a frame must be a JSON object") from None
    except (msgspec.DecodeError, RecursionError, ValueError):
        # A validation error found before the JSON breaks off (msgspec checks
        # fields as it reads them): keep what can be read.
        members = _readable_members(data)
        return members.get("type"), _readable_id(data)
    rid = env.id if _usable_id(env.id) else None
    return env.type, rid


_json = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


def _readable_members(data: str) -> dict[str, Any]:
    """The top-level members of a JSON object that come before any damage.

    Reads members in order and stops at the first one that does not parse:
    ``{"type":"login_dev","id":77,"login":`` still yields its type and id, so
    the error can say which request it answers (docs/protocol.md §2).
    """
    members: dict[str, Any] = {}
    try:
        at = _skip(data, 0)
        if data[at : at + 1] != "{":
            return members
        at += 1
        while True:
            at = _skip(data, at)
            if data[at : at + 1] != '"':
                return members
            key, at = json.decoder.scanstring(data, at + 1)  # type: ignore[attr-defined]
            at = _skip(data, at)
            if data[at : at + 1] != ":":
                return members
            value, at = _json.raw_decode(data, _skip(data, at + 1))
            members.setdefault(key, value)
            at = _skip(data, at)
            if data[at : at + 1] != ",":
                return members
            at += 1
    except (ValueError, RecursionError):
        return members


def _skip(data: str, at: int) -> int:
    match = _SPACE.match(data, at)
    assert match is not None  # the pattern matches the empty string
    return match.end()


def _readable_id(data: str) -> Any:
    rid = _readable_members(data).get("id")
    return rid if _usable_id(rid) else None


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def _malformed(data: str, exc: Exception) -> ProtocolError:
    """A ``bad_frame`` error that says what is wrong, with the id when readable.

    msgspec reports some faults vaguely (a lone surrogate escape such as
    ``"\\ud800"`` comes out as "Input data was truncated"); the standard
    library's parser, run only on this error path, names the place instead.
    """
    rid = _readable_id(data)
    if isinstance(exc, RecursionError):
        return ProtocolError(ErrorCode.BAD_FRAME, "malformed JSON: nested too deeply", rid)
    try:
        parsed = json.loads(data)
    except RecursionError:
        detail = "nested too deeply"
    except ValueError as err:
        detail = f"{getattr(err, 'msg', err)} at character {getattr(err, 'pos', '?')}"
    else:
        if _has_lone_surrogate(parsed):
            detail = (
                "a string holds a lone surrogate escape (\\ud800-\\udfff without its pair), "
                "which is not Unicode text"
            )
        else:
            detail = str(exc)
    return ProtocolError(ErrorCode.BAD_FRAME, f"malformed JSON: {detail}", rid)


def _decode(
    data: bytes | str,
    decoder: msgspec.json.Decoder[T],
    known: frozenset[str],
    max_bytes: int = limits.MAX_FRAME_BYTES,
) -> T:
    if not isinstance(data, str):
        raise ProtocolError(ErrorCode.BAD_FRAME, "binary frames are not supported; send JSON text")
    size = len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ProtocolError(ErrorCode.BAD_FRAME, f"frame of {size} bytes exceeds {max_bytes}")
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        mtype, rid = _envelope(data)
        if mtype is None:
            raise ProtocolError(ErrorCode.INVALID_MESSAGE, "missing 'type' field", rid) from None
        if not isinstance(mtype, str) or mtype not in known:
            raise ProtocolError(
                ErrorCode.UNKNOWN_TYPE, f"unknown message type {str(mtype)[:40]!r}", rid
            ) from None
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"{mtype}: {exc}", rid) from None
    except (msgspec.DecodeError, RecursionError, ValueError, UnicodeError) as exc:
        raise _malformed(data, exc) from None


def decode_client(data: bytes | str) -> AnyClientMessage:
    """Parse a frame a client sent. Raises ``ProtocolError`` and nothing else."""
    return cast(AnyClientMessage, _decode(data, _client_decoder, CLIENT_TYPES))


def decode_server(
    data: bytes | str, *, max_bytes: int = limits.MAX_SERVER_FRAME_BYTES
) -> AnyServerMessage:
    """Parse a frame a server sent. Raises ``ProtocolError`` and nothing else.

    A snapshot of many friends is larger than any command, so frames from the
    server may be up to ``MAX_SERVER_FRAME_BYTES``.
    """
    return cast(AnyServerMessage, _decode(data, _server_decoder, SERVER_TYPES, max_bytes))
