"""Turning a GitHub sign-in into an identity, on the server side.

The desktop never sees the client secret: it hands the server the code that
GitHub redirected to its loopback listener (plus the PKCE verifier), or a
token it obtained through the device flow, and the server asks GitHub who
that is. The GitHub token is dropped as soon as the identity (and the
optional list of people the user follows) is known: no feature of this server
acts on GitHub on the user's behalf later, so keeping it would only be a
liability. Reconnects use the presence session token and never call GitHub.

Every failure becomes a ``LoginError`` carrying a protocol ``ErrorCode`` and a
message a person can act on; nothing from GitHub's answer (and never a token)
is echoed to the client beyond that.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import httpx
import msgspec

from presence_protocol import ErrorCode, GitHubConfig

from .. import auth as _auth
from ..config import ConfigError
from . import options

log = logging.getLogger(__name__)

GITHUB_WEB_URL: Final = "https://github.com"
GITHUB_API_URL: Final = "https://api.github.com"
API_VERSION: Final = "2022-11-28"
USER_AGENT: Final = "presence-server"

RETRY_AFTER_UNREACHABLE: Final = 30.0
"""Seconds a client waits before retrying when GitHub could not be reached."""
RETRY_AFTER_MISCONFIGURED: Final = 300.0
"""Longer back-off when the operator has to fix the server's GitHub app first."""
FOLLOWING_PAGE_SIZE: Final = 100
"""GitHub's maximum ``per_page`` for ``GET /user/following``."""
DEFAULT_FOLLOWING_CAP: Final = 500
"""Most followed accounts read at sign-in; more cost requests and time for little gain."""
FOLLOWING_BUDGET: Final = 8.0
"""Seconds reading follows may add to a sign-in before suggestions are skipped."""

_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="next"')


class LoginError(Exception):
    """A GitHub sign-in that did not produce an identity."""

    def __init__(self, code: ErrorCode, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"LoginError({self.code.value!r}, {self.message!r})"


@dataclasses.dataclass(frozen=True, slots=True)
class GitHubIdentity:
    """Who signed in, as GitHub says. ``id`` is the stable key; ``login`` can change."""

    id: int
    login: str
    name: str | None = None
    avatar_url: str | None = None
    following: tuple[int, ...] = ()
    """GitHub ids the person follows (capped); used for suggestions only."""


@dataclasses.dataclass(frozen=True, slots=True)
class GitHubSettings:
    """What an operator configures for GitHub sign-in.

    ``api_url`` defaults from ``web_url``: github.com has a separate API host,
    GitHub Enterprise Server serves its API under ``/api/v3`` of the web host.
    """

    client_id: str
    client_secret: str = dataclasses.field(repr=False)
    web_url: str = GITHUB_WEB_URL
    api_url: str = ""
    device_flow: bool = False
    suggestions: bool = True
    following_cap: int = DEFAULT_FOLLOWING_CAP
    accept_other_apps: bool = False
    """Accept ``login_github_editor``: tokens issued to other OAuth apps (VS Code's).
    Off by default; see docs/github-sign-in.md for the risk an operator takes on."""

    def __post_init__(self) -> None:
        if not self.client_id.strip():
            raise ConfigError("the GitHub client id is empty")
        if not self.client_secret.strip():
            raise ConfigError("the GitHub client secret is empty")
        web = _base_url(self.web_url, "--github-web-url")
        object.__setattr__(self, "web_url", web)
        api = self.api_url or (GITHUB_API_URL if web == GITHUB_WEB_URL else web + "/api/v3")
        object.__setattr__(self, "api_url", _base_url(api, "--github-api-url"))
        if self.following_cap < 0:
            raise ConfigError("the following cap must not be negative")

    def public(self) -> GitHubConfig:
        """What ``hello`` tells clients: never the secret, never the API URL."""
        return GitHubConfig(
            client_id=self.client_id,
            web_url=self.web_url,
            device_flow=self.device_flow,
            editor_tokens=self.accept_other_apps,
        )


def _base_url(url: str, what: str) -> str:
    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL as exc:
        raise ConfigError(f"{what}: {exc}") from None
    if parsed.scheme not in ("https", "http") or not parsed.host:
        raise ConfigError(f"{what} must be an http(s) URL with a host, got {url!r}")
    if parsed.query or parsed.fragment:
        raise ConfigError(f"{what} must not have a query or fragment")
    return str(parsed).rstrip("/")


# ---------------------------------------------------------------- GitHub's answers


class _TokenAnswer(msgspec.Struct, forbid_unknown_fields=False):
    access_token: str | None = None
    error: str | None = None
    error_description: str | None = None


class _User(msgspec.Struct, forbid_unknown_fields=False):
    id: int
    login: str
    name: str | None = None
    avatar_url: str | None = None


class _App(msgspec.Struct, forbid_unknown_fields=False):
    client_id: str | None = None


class _CheckedToken(msgspec.Struct, forbid_unknown_fields=False):
    app: _App | None = None
    user: _User | None = None


class _Followed(msgspec.Struct, forbid_unknown_fields=False):
    id: int


_token_decoder = msgspec.json.Decoder(_TokenAnswer)
_user_decoder = msgspec.json.Decoder(_User)
_check_decoder = msgspec.json.Decoder(_CheckedToken)
_following_decoder = msgspec.json.Decoder(list[_Followed])


def _unreachable(detail: str) -> LoginError:
    return LoginError(
        ErrorCode.UPSTREAM_UNAVAILABLE,
        f"GitHub could not be reached ({detail}); try again in a minute.",
        retry_after=RETRY_AFTER_UNREACHABLE,
    )


_MISCONFIGURED = "This server's GitHub sign-in is misconfigured; please tell the server operator."


class GitHubAuth:
    """Talks to GitHub (or GitHub Enterprise Server) for the login handlers.

    One ``httpx.AsyncClient`` is shared by all logins; ``aclose`` it on shutdown.
    ``transport`` exists for tests that want to inject failures below HTTP.
    """

    def __init__(
        self,
        settings: GitHubSettings,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
            transport=transport,
        )

    def public(self) -> GitHubConfig:
        return self.settings.public()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------ login paths

    async def exchange_code(
        self, code: str, code_verifier: str, redirect_uri: str
    ) -> GitHubIdentity:
        """Browser sign-in: trade the code (with secret and PKCE verifier) for an identity."""
        s = self.settings
        if not _is_loopback_callback(redirect_uri):
            raise LoginError(
                ErrorCode.BAD_CODE,
                "The redirect URI must be http://127.0.0.1:PORT/callback or "
                "http://[::1]:PORT/callback; sign in again with the desktop app.",
            )
        response = await self._send(
            "POST",
            f"{s.web_url}/login/oauth/access_token",
            data={
                "client_id": s.client_id,
                "client_secret": s.client_secret,
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            },
            headers={"Accept": "application/json"},
        )
        if response.status_code >= 500 or response.status_code == 429:
            raise self._upstream_status(response)
        try:
            answer = _token_decoder.decode(response.content)
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.warning("GitHub token endpoint answered %s with no JSON", response.status_code)
            raise _unreachable(f"unexpected answer, HTTP {response.status_code}") from None
        if answer.error or not answer.access_token:
            raise self._token_error(answer.error or "no_access_token", answer.error_description)
        return await self._identity(answer.access_token)

    async def check_token(self, token: str) -> GitHubIdentity:
        """Device-flow sign-in: accept the token only if it was issued to our app."""
        s = self.settings
        response = await self._send(
            "POST",
            f"{s.api_url}/applications/{s.client_id}/token",
            json={"access_token": token},
            headers=_api_headers(),
            auth=(s.client_id, s.client_secret),
        )
        if response.status_code in (404, 422):
            raise LoginError(
                ErrorCode.BAD_CODE,
                "GitHub does not know this sign-in token for this app; sign in again.",
            )
        if response.status_code in (401, 403) and not _rate_limited(response):
            log.error(
                "GitHub refused this server's client id/secret (HTTP %s) when checking a "
                "token: fix --github-client-id and the client secret",
                response.status_code,
            )
            raise LoginError(
                ErrorCode.UPSTREAM_UNAVAILABLE,
                _MISCONFIGURED,
                retry_after=RETRY_AFTER_MISCONFIGURED,
            )
        if response.status_code != 200:
            raise self._upstream_status(response)
        try:
            checked = _check_decoder.decode(response.content)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise _unreachable("unexpected answer to a token check") from None
        if checked.app is not None and checked.app.client_id not in (None, s.client_id):
            # GitHub would not answer 200 for another app's token; refuse all the same.
            raise LoginError(ErrorCode.BAD_CODE, "This token belongs to another app.")
        return await self._identity(token)

    async def check_editor_token(self, token: str) -> GitHubIdentity:
        """Editor sign-in: a token issued to another OAuth app (VS Code's GitHub session).

        Only our own client secret can prove which app a token belongs to, and
        it proves nothing about another app's tokens: all this server can learn
        is whose token it is (``GET /user``). Any app the person ever granted
        GitHub access could therefore sign in as them here, which is why an
        operator has to switch this on (``accept_other_apps``). When it is off
        GitHub is not called at all, so the token is not even used.
        """
        if not self.settings.accept_other_apps:
            raise LoginError(
                ErrorCode.LOGIN_UNAVAILABLE,
                "This server does not accept GitHub sessions from editors; sign in with "
                "the browser from the Presence app instead.",
            )
        return await self._identity(token)

    # ------------------------------------------------------------ helpers

    async def _identity(self, token: str) -> GitHubIdentity:
        """Read who the token belongs to, then forget the token."""
        response = await self._send(
            "GET", f"{self.settings.api_url}/user", headers=_api_headers(token)
        )
        if response.status_code == 401:
            raise LoginError(ErrorCode.BAD_CODE, "GitHub rejected the sign-in; sign in again.")
        if response.status_code != 200:
            raise self._upstream_status(response)
        try:
            user = _user_decoder.decode(response.content)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise _unreachable("unexpected answer for the signed-in user") from None
        if user.id < 1:
            raise _unreachable("GitHub returned an invalid user id")
        following: tuple[int, ...] = ()
        if self.settings.suggestions and self.settings.following_cap:
            try:
                async with asyncio.timeout(FOLLOWING_BUDGET):
                    following = await self._following(token)
            except TimeoutError:
                log.info("no suggestions: reading follows took over %.0f s", FOLLOWING_BUDGET)
        return GitHubIdentity(
            id=user.id,
            login=user.login,
            name=user.name or None,
            avatar_url=user.avatar_url or None,
            following=following,
        )

    async def _following(self, token: str) -> tuple[int, ...]:
        """Whom the person follows, for suggestions. Failures cost suggestions, not the login."""
        cap = self.settings.following_cap
        url: str | None = f"{self.settings.api_url}/user/following?per_page={FOLLOWING_PAGE_SIZE}"
        ids: list[int] = []
        try:
            while url and len(ids) < cap:
                response = await self._http.get(url, headers=_api_headers(token))
                if response.status_code != 200:
                    log.info("no suggestions: GitHub answered %s", response.status_code)
                    break
                ids.extend(f.id for f in _following_decoder.decode(response.content))
                url = _next_link(response.headers.get("link", ""), self.settings.api_url)
        except (httpx.HTTPError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.info("no suggestions: reading follows failed (%s)", type(exc).__name__)
        return tuple(dict.fromkeys(i for i in ids if i > 0))[:cap]

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, url, **kwargs)
        except httpx.TimeoutException:
            log.warning("GitHub timed out: %s %s", method, _redact(url))
            raise _unreachable("timed out") from None
        except httpx.HTTPError as exc:
            log.warning("GitHub unreachable: %s %s: %s", method, _redact(url), type(exc).__name__)
            raise _unreachable("network error") from None

    def _token_error(self, error: str, description: str | None) -> LoginError:
        if error == "bad_verification_code":
            # GitHub uses one error for a wrong, reused, expired or PKCE-mismatched code.
            return LoginError(
                ErrorCode.BAD_CODE,
                "GitHub did not accept the sign-in code (it was wrong, already used "
                "or expired); sign in again.",
            )
        if error in ("expired_token", "token_expired"):
            return LoginError(ErrorCode.EXPIRED_CODE, "The sign-in code expired; sign in again.")
        if error == "access_denied":
            return LoginError(ErrorCode.ACCESS_DENIED, "Access to GitHub was declined.")
        if error == "redirect_uri_mismatch":
            # At the exchange this means "not the redirect_uri the code was issued
            # for": GitHub's authorize page already refuses a callback the app has
            # not registered, so only a client (buggy or hostile) gets here. Any
            # unauthenticated client could send it, so it is no operator alarm.
            log.info("a code exchange named another redirect_uri than its authorize request")
            return LoginError(
                ErrorCode.BAD_CODE,
                "The sign-in code was issued for another redirect address; sign in again.",
            )
        if error == "incorrect_client_credentials":
            log.error(
                "GitHub rejected this server's client id or secret: fix "
                "--github-client-id and PRESENCE_GITHUB_CLIENT_SECRET(_FILE)"
            )
        else:
            log.error("GitHub refused a code exchange: %s (%s)", error, description or "")
        return LoginError(
            ErrorCode.UPSTREAM_UNAVAILABLE, _MISCONFIGURED, retry_after=RETRY_AFTER_MISCONFIGURED
        )

    @staticmethod
    def _upstream_status(response: httpx.Response) -> LoginError:
        retry = _retry_after(response)
        log.warning("GitHub answered HTTP %s", response.status_code)
        return LoginError(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            f"GitHub is not answering properly (HTTP {response.status_code}); try again later.",
            retry_after=retry,
        )


def _api_headers(token: str | None = None) -> dict[str, str]:
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _rate_limited(response: httpx.Response) -> bool:
    return response.status_code == 429 or response.headers.get("x-ratelimit-remaining") == "0"


def _retry_after(response: httpx.Response, now: float | None = None) -> float:
    """Seconds until GitHub wants to hear from us again, from its headers."""
    header = response.headers.get("retry-after", "")
    if header.isdigit():
        return float(max(1, int(header)))
    reset = response.headers.get("x-ratelimit-reset", "")
    if reset.isdigit() and response.headers.get("x-ratelimit-remaining") == "0":
        wait = int(reset) - (time.time() if now is None else now)
        return float(min(max(1, int(wait)), 3600))
    return RETRY_AFTER_UNREACHABLE


def _next_link(header: str, api_url: str) -> str | None:
    """The ``rel="next"`` page, only if it stays on our API host (never follow elsewhere)."""
    match = _NEXT_LINK.search(header)
    if not match:
        return None
    url = match.group(1)
    return url if url.startswith(api_url + "/") else None


def _is_loopback_callback(uri: str) -> bool:
    """Only the desktop's loopback listener may receive codes this server exchanges."""
    try:
        url = httpx.URL(uri)
    except httpx.InvalidURL:
        return False
    return (
        url.scheme == "http"
        and url.host in ("127.0.0.1", "::1")
        and url.port is not None
        and url.path == "/callback"
        and not url.query
        and not url.fragment
        and not url.userinfo
    )


def _redact(url: str) -> str:
    return url.split("?", 1)[0]


# ---------------------------------------------------------------- configuration

ENV_CLIENT_ID: Final = "PRESENCE_GITHUB_CLIENT_ID"
ENV_CLIENT_SECRET: Final = "PRESENCE_GITHUB_CLIENT_SECRET"
ENV_CLIENT_SECRET_FILE: Final = "PRESENCE_GITHUB_CLIENT_SECRET_FILE"
ENV_WEB_URL: Final = "PRESENCE_GITHUB_WEB_URL"
ENV_API_URL: Final = "PRESENCE_GITHUB_API_URL"
ENV_DEVICE_FLOW: Final = "PRESENCE_GITHUB_DEVICE_FLOW"
ENV_SUGGESTIONS: Final = "PRESENCE_GITHUB_SUGGESTIONS"
ENV_ACCEPT_OTHER_APPS: Final = "PRESENCE_GITHUB_ACCEPT_OTHER_APPS"


GROUP: Final = options.GITHUB_GROUP


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str] | None = None) -> None:
    """The GitHub flags of ``presence-server`` (rows of ``options.OPTIONS``).

    The secret is never a flag value: ``--github-client-secret`` exists only
    to be refused.
    """
    group = parser.add_argument_group(
        GROUP,
        "The client secret is read from $PRESENCE_GITHUB_CLIENT_SECRET or from a file "
        "(--github-client-secret-file / $PRESENCE_GITHUB_CLIENT_SECRET_FILE), never "
        "from the command line, where it would land in shell history and ps output.",
    )
    options.add_arguments(group, {} if env is None else env, group=GROUP)
    # Registered only to refuse it (and to stop argparse from reading it as an
    # abbreviation of --github-client-secret-file, which would treat the secret as a path).
    group.add_argument("--github-client-secret", action=_RefuseSecretFlag, help=argparse.SUPPRESS)


class _RefuseSecretFlag(argparse.Action):
    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        kwargs["nargs"] = "?"
        super().__init__(option_strings, argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        parser.error(
            "the GitHub client secret is not accepted as a flag value (it would land in "
            f"shell history): set ${ENV_CLIENT_SECRET} or use --github-client-secret-file"
        )


def _flag(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"expected 1/0, true/false, yes/no or on/off, got {value!r}")


def settings_from(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> GitHubSettings | None:
    """GitHub settings from flags, then environment; None when GitHub sign-in is off.

    Raises ``ConfigError`` with the fix when the settings are half there.
    """
    env = os.environ if environ is None else environ
    client_id = getattr(args, "github_client_id", None) or env.get(ENV_CLIENT_ID, "")
    secret_file = getattr(args, "github_client_secret_file", None) or (
        Path(env[ENV_CLIENT_SECRET_FILE]) if env.get(ENV_CLIENT_SECRET_FILE) else None
    )
    secret_env = env.get(ENV_CLIENT_SECRET, "")
    if secret_file is not None and secret_env:
        raise ConfigError(
            f"the GitHub client secret is set twice: unset ${ENV_CLIENT_SECRET} or the secret file"
        )
    if secret_file is not None:
        try:
            secret = secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the GitHub client secret file {secret_file}: {exc.strerror}"
            ) from None
        if not secret:
            raise ConfigError(f"the GitHub client secret file {secret_file} is empty")
    else:
        secret = secret_env.strip()
    if not client_id:
        if secret:
            raise ConfigError(
                f"a GitHub client secret is set but no client id: pass --github-client-id "
                f"or set ${ENV_CLIENT_ID}"
            )
        return None
    if not secret:
        raise ConfigError(
            f"GitHub sign-in needs the client secret: set ${ENV_CLIENT_SECRET} or "
            f"--github-client-secret-file / ${ENV_CLIENT_SECRET_FILE}"
        )
    device_flow = getattr(args, "github_device_flow", None)
    if device_flow is None:
        device_flow = _flag(env.get(ENV_DEVICE_FLOW))
    suggestions = getattr(args, "github_suggestions", None)
    if suggestions is None:
        suggestions = _flag(env.get(ENV_SUGGESTIONS))
    accept_other_apps = getattr(args, "github_accept_other_apps", None)
    if accept_other_apps is None:
        accept_other_apps = _flag(env.get(ENV_ACCEPT_OTHER_APPS))
    return GitHubSettings(
        client_id=client_id.strip(),
        client_secret=secret,
        web_url=getattr(args, "github_web_url", None) or env.get(ENV_WEB_URL) or GITHUB_WEB_URL,
        api_url=getattr(args, "github_api_url", None) or env.get(ENV_API_URL) or "",
        device_flow=bool(device_flow),
        suggestions=True if suggestions is None else suggestions,
        accept_other_apps=bool(accept_other_apps),
    )


def _conforms(auth: GitHubAuth) -> _auth.GitHubAuth:
    """Lets mypy check that ``GitHubAuth`` is what the login handlers expect."""
    return auth
