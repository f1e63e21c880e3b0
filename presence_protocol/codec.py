"""Encoding and decoding frames. Decoding never raises anything but ProtocolError."""

from __future__ import annotations

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


def _envelope(data: bytes | str) -> tuple[Any, Any]:
    """The ``type`` and a usable request ``id`` of a frame that failed validation."""
    try:
        env = _envelope_decoder.decode(data)
    except msgspec.ValidationError:
        raise ProtocolError(ErrorCode.BAD_FRAME, "a frame must be a JSON object") from None
    except (msgspec.DecodeError, RecursionError, ValueError):
        return None, None
    rid = env.id if _usable_id(env.id) else None
    return env.type, rid


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
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ProtocolError(ErrorCode.BAD_FRAME, f"malformed JSON: {detail}") from None


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
