"""Error codes, close codes and the protocol error, modelled as data."""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    """The ``code`` of an ``error`` reply. The connection stays open."""

    BAD_FRAME = "bad_frame"
    """The frame is not valid JSON, is binary, or is not a JSON object."""
    UNKNOWN_TYPE = "unknown_type"
    """The ``type`` field names no message of this protocol version."""
    INVALID_MESSAGE = "invalid_message"
    """A known message with missing fields, wrong types or values out of range."""
    NOT_AUTHENTICATED = "not_authenticated"
    """A command was sent before authentication succeeded."""
    ALREADY_AUTHENTICATED = "already_authenticated"
    """A second login on an authenticated connection."""
    AUTH_FAILED = "auth_failed"
    """Session token unknown, revoked or expired. Followed by close 4500."""
    LOGIN_UNAVAILABLE = "login_unavailable"
    """This login method is not enabled on this server (see ``hello``)."""
    BAD_CODE = "bad_code"
    """GitHub rejected the authorization code or token; sign in again."""
    EXPIRED_CODE = "expired_code"
    """The authorization code expired before it was exchanged; sign in again."""
    ACCESS_DENIED = "access_denied"
    """The user declined consent on GitHub."""
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    """GitHub could not be reached; retry later (``retry_after``)."""
    RATE_LIMITED = "rate_limited"
    """Too many commands or friend requests; ``retry_after`` says when to retry."""
    UNKNOWN_USER = "unknown_user"
    """No user of this server has that login or id."""
    SELF_REQUEST = "self_request"
    """You cannot befriend yourself."""
    ALREADY_FRIENDS = "already_friends"
    """The two users are already friends."""
    REQUEST_EXISTS = "request_exists"
    """An outgoing request to this user is already pending."""
    NO_REQUEST = "no_request"
    """There is no pending request to accept, decline or cancel."""
    NOT_FRIENDS = "not_friends"
    """The command needs an accepted friendship."""
    FRIEND_LIMIT = "friend_limit"
    """Friends plus outgoing requests would exceed ``MAX_FRIENDS``."""
    UNKNOWN_SESSION = "unknown_session"
    """No session of yours has that id."""
    CONFIRM_MISMATCH = "confirm_mismatch"
    """``delete_account.confirm_login`` is not the login of this account."""
    INTERNAL_ERROR = "internal_error"
    """The server failed; the command was not applied. Safe to retry."""


class CloseCode(enum.IntEnum):
    """WebSocket close codes the server uses.

    4000–4499: reconnect (with backoff). 4500–4999: do not reconnect until the
    user acts. Standard codes 1000/1001/1011 also mean reconnect; 1009 means a
    frame was larger than ``MAX_FRAME_BYTES``.
    """

    SERVER_RESTART = 4000
    """The server is shutting down or draining; reconnect (maybe elsewhere)."""
    AUTH_TIMEOUT = 4001
    """No successful login within ``AUTH_DEADLINE_SECONDS``."""
    TOO_MANY_ERRORS = 4002
    """The connection kept sending invalid frames; reconnect after backoff."""
    SLOW_CONSUMER = 4003
    """The client did not read fast enough and its queue overflowed."""
    TRY_AGAIN_LATER = 4004
    """Overloaded or too many connections for this user or address."""
    AUTH_FAILED = 4500
    """The session is invalid, revoked or expired: sign in again."""
    UNSUPPORTED_PROTOCOL = 4501
    """The client speaks no subprotocol this server supports: update the app."""
    SESSION_REVOKED = 4502
    """This device was signed out (from another device or by sign-out)."""
    ACCOUNT_DELETED = 4503
    """The account no longer exists."""


def close_code_is_terminal(code: int | None) -> bool:
    """True when a client must not reconnect without the user acting."""
    return code is not None and 4500 <= code <= 4999


class ProtocolError(Exception):
    """A frame that cannot be accepted, with the code to answer it with."""

    def __init__(self, code: ErrorCode, message: str, request_id: int | str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id

    def __repr__(self) -> str:
        return f"ProtocolError({self.code.value!r}, {self.message!r})"
