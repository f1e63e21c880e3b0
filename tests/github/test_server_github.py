"""The server's GitHub client against the fake GitHub: what operators and users see."""

from __future__ import annotations

import argparse
import logging
import secrets
import socket
from pathlib import Path

import httpx
import pytest

from presence_protocol import ErrorCode
from presence_server.edge import github as gh
from presence_server.edge.github import GitHubAuth, GitHubSettings, LoginError
from tests.fakes.github import FakeGitHub, s256

REDIRECT = "http://127.0.0.1:49152/callback"


def _code(fake: FakeGitHub, verifier: str, redirect: str = REDIRECT) -> str:
    return fake.issue_code(redirect, s256(verifier))


async def test_code_exchange_gives_identity_and_follows(
    fake_github: FakeGitHub, github_auth: GitHubAuth
) -> None:
    verifier = secrets.token_urlsafe(48)
    identity = await github_auth.exchange_code(_code(fake_github, verifier), verifier, REDIRECT)
    assert (identity.id, identity.login, identity.name) == (583231, "octocat", "The Octocat")
    assert identity.avatar_url and identity.avatar_url.startswith("https://")
    assert identity.following == (1001, 1002, 424242)


async def test_code_is_single_use(fake_github: FakeGitHub, github_auth: GitHubAuth) -> None:
    verifier = secrets.token_urlsafe(48)
    code = _code(fake_github, verifier)
    await github_auth.exchange_code(code, verifier, REDIRECT)
    with pytest.raises(LoginError) as err:
        await github_auth.exchange_code(code, verifier, REDIRECT)
    assert err.value.code is ErrorCode.BAD_CODE
    assert "sign in again" in err.value.message


async def test_wrong_verifier_is_rejected_and_burns_the_code(
    fake_github: FakeGitHub, github_auth: GitHubAuth
) -> None:
    verifier = secrets.token_urlsafe(48)
    code = _code(fake_github, verifier)
    with pytest.raises(LoginError) as err:
        await github_auth.exchange_code(code, secrets.token_urlsafe(48), REDIRECT)
    assert err.value.code is ErrorCode.BAD_CODE
    # An attacker who guessed wrong cannot retry with the right verifier either.
    with pytest.raises(LoginError):
        await github_auth.exchange_code(code, verifier, REDIRECT)
    assert fake_github.count("GET", "/api/v3/user") == 0


async def test_expired_code(fake_github: FakeGitHub, github_auth: GitHubAuth) -> None:
    verifier = secrets.token_urlsafe(48)
    code = _code(fake_github, verifier)
    fake_github.advance(601)
    with pytest.raises(LoginError) as err:
        await github_auth.exchange_code(code, verifier, REDIRECT)
    assert err.value.code is ErrorCode.BAD_CODE
    assert "expired" in err.value.message


async def test_redirect_mismatch_is_a_bad_code_not_an_operator_problem(
    fake_github: FakeGitHub, github_auth: GitHubAuth, caplog: pytest.LogCaptureFixture
) -> None:
    """At the exchange, a redirect_uri other than the authorize request's can only
    come from the client: GitHub's authorize page already refuses an unregistered
    callback, so a misconfigured app never gets this far (issue 14, point 4)."""
    verifier = secrets.token_urlsafe(48)
    code = _code(fake_github, verifier, "http://127.0.0.1:40000/callback")
    with (
        caplog.at_level(logging.INFO, "presence_server.edge.github"),
        pytest.raises(LoginError) as err,
    ):
        await github_auth.exchange_code(code, verifier, REDIRECT)
    assert err.value.code is ErrorCode.BAD_CODE
    assert err.value.retry_after is None
    assert "sign in again" in err.value.message and "operator" not in err.value.message
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_non_loopback_redirect_is_refused_before_calling_github(
    fake_github: FakeGitHub, github_auth: GitHubAuth
) -> None:
    for uri in (
        "https://evil.example/callback",
        "http://127.0.0.1:5000/other",
        "http://localhost:5000/callback",
        "http://user:pw@127.0.0.1:5000/callback",
    ):
        with pytest.raises(LoginError) as err:
            await github_auth.exchange_code("abc", "v" * 43, uri)
        assert err.value.code is ErrorCode.BAD_CODE
    assert fake_github.requests == []


async def test_wrong_secret_is_logged_for_the_operator_not_shown_to_users(
    fake_github: FakeGitHub, github_settings: GitHubSettings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = GitHubSettings(
        client_id=github_settings.client_id,
        client_secret="not-the-secret",
        web_url=github_settings.web_url,
        api_url=github_settings.api_url,
    )
    auth = GitHubAuth(settings)
    verifier = secrets.token_urlsafe(48)
    try:
        with caplog.at_level(logging.ERROR, "presence_server.edge.github"):
            with pytest.raises(LoginError) as err:
                await auth.exchange_code(_code(fake_github, verifier), verifier, REDIRECT)
            with pytest.raises(LoginError) as err2:
                await auth.check_token(fake_github.issue_token(fake_github.users[1001]))
    finally:
        await auth.aclose()
    for e in (err.value, err2.value):
        assert e.code is ErrorCode.UPSTREAM_UNAVAILABLE
        assert e.retry_after == gh.RETRY_AFTER_MISCONFIGURED
        assert "secret" not in e.message
    assert "client secret" in caplog.text or "client id" in caplog.text
    assert "not-the-secret" not in caplog.text


async def test_check_token_accepts_our_token_and_rejects_others(
    fake_github: FakeGitHub, github_auth: GitHubAuth
) -> None:
    token = fake_github.issue_token(fake_github.users[1001])
    identity = await github_auth.check_token(token)
    assert (identity.id, identity.login, identity.name) == (1001, "hubot", "Hubot")
    for bad in ("gho_" + "x" * 36, token + "x"):
        with pytest.raises(LoginError) as err:
            await github_auth.check_token(bad)
        assert err.value.code is ErrorCode.BAD_CODE
    fake_github.revoke_token(token)
    with pytest.raises(LoginError):
        await github_auth.check_token(token)


async def test_github_down_means_retry_later(
    fake_github: FakeGitHub, github_auth: GitHubAuth
) -> None:
    verifier = secrets.token_urlsafe(48)
    fake_github.fail_next["/login/oauth/access_token"] = 502
    with pytest.raises(LoginError) as err:
        await github_auth.exchange_code(_code(fake_github, verifier), verifier, REDIRECT)
    assert err.value.code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert err.value.retry_after and err.value.retry_after > 0

    fake_github.fail_next["/api/v3/user"] = 503
    with pytest.raises(LoginError) as err:
        await github_auth.exchange_code(_code(fake_github, verifier), verifier, REDIRECT)
    assert err.value.code is ErrorCode.UPSTREAM_UNAVAILABLE


async def test_unreachable_github_means_retry_later() -> None:
    with socket.socket() as held:
        # Bound but not listening, and held for the whole test: connections to
        # it are refused, and no other process (a parallel test, a server of
        # another suite on this machine) can take the port meanwhile.
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        settings = GitHubSettings(
            client_id="id", client_secret="secret", web_url=f"http://127.0.0.1:{port}"
        )
        auth = GitHubAuth(settings, timeout=2.0)
        try:
            with pytest.raises(LoginError) as err:
                await auth.exchange_code("code", "v" * 43, REDIRECT)
            assert err.value.code is ErrorCode.UPSTREAM_UNAVAILABLE
            assert err.value.retry_after == gh.RETRY_AFTER_UNREACHABLE
            with pytest.raises(LoginError) as err:
                await auth.check_token("gho_x")
            assert err.value.code is ErrorCode.UPSTREAM_UNAVAILABLE
        finally:
            await auth.aclose()


async def test_rate_limit_headers_set_retry_after() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            403,
            headers={"x-ratelimit-remaining": "0", "retry-after": "42"},
            json={"message": "API rate limit exceeded"},
        )

    settings = GitHubSettings(client_id="id", client_secret="secret")
    auth = GitHubAuth(settings, transport=httpx.MockTransport(handler))
    try:
        with pytest.raises(LoginError) as err:
            await auth.check_token("gho_x")
    finally:
        await auth.aclose()
    assert err.value.code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert err.value.retry_after == 42


async def test_following_is_capped_paginated_and_optional(
    fake_github: FakeGitHub, github_settings: GitHubSettings
) -> None:
    many = fake_github.add_user(7, "many", following=list(range(10_000, 10_250)))
    capped = GitHubSettings(
        client_id=github_settings.client_id,
        client_secret=github_settings.client_secret,
        web_url=github_settings.web_url,
        api_url=github_settings.api_url,
        following_cap=150,
    )
    auth = GitHubAuth(capped)
    try:
        identity = await auth.check_token(fake_github.issue_token(many))
    finally:
        await auth.aclose()
    assert identity.following == tuple(range(10_000, 10_150))
    assert fake_github.count("GET", "/api/v3/user/following") == 2

    off = GitHubSettings(
        client_id=github_settings.client_id,
        client_secret=github_settings.client_secret,
        web_url=github_settings.web_url,
        api_url=github_settings.api_url,
        suggestions=False,
    )
    auth = GitHubAuth(off)
    try:
        identity = await auth.check_token(fake_github.issue_token(many))
    finally:
        await auth.aclose()
    assert identity.following == ()
    assert fake_github.count("GET", "/api/v3/user/following") == 2


async def test_following_failure_costs_suggestions_not_the_login(
    fake_github: FakeGitHub, github_auth: GitHubAuth
) -> None:
    fake_github.fail_next["/api/v3/user/following"] = 500
    identity = await github_auth.check_token(fake_github.issue_token(fake_github.users[583231]))
    assert identity.login == "octocat"
    assert identity.following == ()


# ---------------------------------------------------------------- configuration


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    gh.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_no_client_id_means_github_sign_in_off() -> None:
    assert gh.settings_from(_args(), {}) is None


def test_secret_from_env_and_defaults_for_github_com() -> None:
    settings = gh.settings_from(
        _args("--github-client-id", "abc"), {gh.ENV_CLIENT_SECRET: "s3cret\n"}
    )
    assert settings is not None
    assert settings.client_secret == "s3cret"
    assert (settings.web_url, settings.api_url) == (gh.GITHUB_WEB_URL, gh.GITHUB_API_URL)
    assert settings.device_flow is False and settings.suggestions is True
    assert "s3cret" not in repr(settings)
    public = settings.public()
    assert public.client_id == "abc" and public.web_url == gh.GITHUB_WEB_URL


def test_secret_from_file_and_enterprise_urls(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    settings = gh.settings_from(
        _args(
            "--github-client-secret-file",
            str(secret),
            "--github-web-url",
            "https://ghe.example.com/",
            "--github-device-flow",
            "--no-github-suggestions",
        ),
        {gh.ENV_CLIENT_ID: "abc"},
    )
    assert settings is not None
    assert settings.client_secret == "from-file"
    assert settings.web_url == "https://ghe.example.com"
    assert settings.api_url == "https://ghe.example.com/api/v3"
    assert settings.device_flow and not settings.suggestions


def test_env_only_configuration(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("x")
    settings = gh.settings_from(
        _args(),
        {
            gh.ENV_CLIENT_ID: "abc",
            gh.ENV_CLIENT_SECRET_FILE: str(secret),
            gh.ENV_API_URL: "https://api.ghe.example",
            gh.ENV_DEVICE_FLOW: "yes",
            gh.ENV_SUGGESTIONS: "0",
        },
    )
    assert settings is not None
    assert settings.api_url == "https://api.ghe.example"
    assert settings.device_flow and not settings.suggestions


@pytest.mark.parametrize(
    ("argv", "env", "fix"),
    [
        (["--github-client-id", "abc"], {}, "PRESENCE_GITHUB_CLIENT_SECRET"),
        ([], {gh.ENV_CLIENT_SECRET: "s"}, "--github-client-id"),
        (
            ["--github-client-id", "abc", "--github-client-secret-file", "/nonexistent/x"],
            {},
            "cannot read",
        ),
        (
            ["--github-client-id", "abc", "--github-client-secret-file", "SECRETFILE"],
            {gh.ENV_CLIENT_SECRET: "s"},
            "set twice",
        ),
        (
            ["--github-client-id", "abc", "--github-web-url", "ftp://x"],
            {gh.ENV_CLIENT_SECRET: "s"},
            "http(s) URL",
        ),
        (
            ["--github-client-id", "abc"],
            {gh.ENV_CLIENT_SECRET: "s", gh.ENV_DEVICE_FLOW: "maybe"},
            "expected 1/0",
        ),
    ],
)
def test_bad_configuration_names_the_fix(
    argv: list[str], env: dict[str, str], fix: str, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s")
    argv = [str(secret) if a == "SECRETFILE" else a for a in argv]
    with pytest.raises(gh.ConfigError, match=None) as err:
        gh.settings_from(_args(*argv), env)
    assert fix in str(err.value)


def test_empty_secret_file_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("\n")
    with pytest.raises(gh.ConfigError, match="empty"):
        gh.settings_from(
            _args("--github-client-id", "a", "--github-client-secret-file", str(secret)), {}
        )


def test_there_is_no_flag_for_the_secret_value() -> None:
    with pytest.raises(SystemExit):
        _args("--github-client-secret", "oops")


def test_secret_flag_is_refused_with_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _args("--github-client-secret=oops")
    err = capsys.readouterr().err
    assert "PRESENCE_GITHUB_CLIENT_SECRET" in err
    assert "oops" not in err
