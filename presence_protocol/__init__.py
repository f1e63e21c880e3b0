"""The wire contract between presence_desktop and presence_server (sans I/O)."""

from . import limits
from .codec import CLIENT_TYPES, SERVER_TYPES, decode_client, decode_server, encode, encode_text
from .errors import CloseCode, ErrorCode, ProtocolError, close_code_is_terminal
from .messages import *  # noqa: F403
from .messages import __all__ as _messages_all

__all__ = [
    "CLIENT_TYPES",
    "SERVER_TYPES",
    "CloseCode",
    "ErrorCode",
    "ProtocolError",
    "close_code_is_terminal",
    "decode_client",
    "decode_server",
    "encode",
    "encode_text",
    "limits",
    *_messages_all,
]
