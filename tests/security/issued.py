"""Every secret the suite hands out, so the last test can look for it in clear.

``install()`` wraps the few places where secrets are born: session tokens
(``presence_server.auth.new_session_token``), GitHub access tokens (the fake
GitHub) and PKCE verifiers (``Pkce.new``). Tests that talk to a server in
another process record the tokens they receive with ``record``. OAuth codes
and ``state`` are left out on purpose: they travel in redirect URLs by
design (a browser profile may keep them) and are worthless once used.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

ISSUED: set[str] = set()
_installed = False


def record(value: str | None) -> None:
    if value:
        ISSUED.add(value)


def _recording(function: F, pick: Callable[[Any], str | None]) -> F:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        record(pick(result))
        return result

    return wrapper  # type: ignore[return-value]


def install() -> None:
    """Idempotent; called when the security tests are collected (before any test runs)."""
    global _installed
    if _installed:
        return
    _installed = True
    from presence_desktop.net import oauth
    from presence_server import auth
    from tests.fakes import github

    auth.new_session_token = _recording(auth.new_session_token, lambda token: token)
    github.FakeGitHub._new_token = _recording(  # type: ignore[method-assign]
        github.FakeGitHub._new_token, lambda token: token
    )
    original = oauth.Pkce.new.__func__  # type: ignore[attr-defined]

    def new(cls: type[oauth.Pkce]) -> oauth.Pkce:
        pkce: oauth.Pkce = original(cls)
        record(pkce.verifier)
        return pkce

    oauth.Pkce.new = classmethod(new)  # type: ignore[method-assign, assignment]
