"""The login plug-in point and the session tokens it leads to.

Every login method ends the same way: it resolves to an ``Identity``, the
store upserts that user, and a new session is created for the device. Only
how the identity is found differs (dev login: a username; GitHub: a code or a
token checked with GitHub), so a new method adds a resolver and nothing else.

Session tokens are 256 random bits. The server keeps only their SHA-256: a
copy of the database is not a copy of anyone's sign-in. A plain hash (no salt,
no slow KDF) is right for random tokens: there is no dictionary to attack.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import secrets
from typing import Protocol

from presence_protocol import ErrorCode, GitHubConfig


class IdentityKind(enum.StrEnum):
    GITHUB = "github"
    DEV = "dev"


class ExternalIdentity(Protocol):
    """Who an external provider (GitHub) says signed in."""

    @property
    def id(self) -> int: ...
    @property
    def login(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def avatar_url(self) -> str | None: ...
    @property
    def following(self) -> tuple[int, ...]: ...


class GitHubAuth(Protocol):
    """What the server needs from a GitHub sign-in implementation.

    Failures are raised as exceptions carrying ``code`` (an ``ErrorCode``),
    ``message`` and ``retry_after`` (see ``LoginFailure``); anything else is
    treated as an internal error.
    """

    def public(self) -> GitHubConfig: ...

    async def exchange_code(
        self, code: str, code_verifier: str, redirect_uri: str
    ) -> ExternalIdentity: ...

    async def check_token(self, token: str) -> ExternalIdentity: ...

    async def check_editor_token(self, token: str) -> ExternalIdentity: ...


class LoginFailure(Protocol):
    """The shape of an exception a login method raises to refuse a login."""

    code: ErrorCode
    message: str
    retry_after: float | None


def as_login_failure(exc: BaseException) -> LoginFailure | None:
    """The exception as a ``LoginFailure`` when it carries an ``ErrorCode``."""
    if isinstance(getattr(exc, "code", None), ErrorCode) and isinstance(
        getattr(exc, "message", None), str
    ):
        return exc  # type: ignore[return-value]
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    """A resolved login, before it becomes a user row.

    ``id`` is None for dev logins: the store allocates (or finds) a dev id,
    from a range GitHub ids cannot reach.
    """

    kind: IdentityKind
    login: str
    id: int | None = None
    name: str | None = None
    avatar_url: str | None = None
    following: tuple[int, ...] = ()

    @classmethod
    def from_github(cls, ext: ExternalIdentity) -> Identity:
        return cls(
            kind=IdentityKind.GITHUB,
            id=ext.id,
            login=ext.login,
            name=ext.name,
            avatar_url=ext.avatar_url,
            following=tuple(getattr(ext, "following", ())),
        )


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def new_session_id() -> str:
    """The public handle of a session (listed, revoked); reveals nothing of the token."""
    return secrets.token_hex(8)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
