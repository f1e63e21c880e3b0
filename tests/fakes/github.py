"""A faithful fake of GitHub's OAuth and REST endpoints, as a real HTTP server.

Tests point the server and the desktop at it through the same base-URL
settings that GitHub Enterprise Server uses: the web endpoints live at the
root and the REST API under ``/api/v3``. It runs stdlib ``http.server`` in a
thread on 127.0.0.1, port 0, so a real browser, httpx and the desktop all
talk real HTTP to it.

What it checks, like GitHub does:
- ``GET /login/oauth/authorize``: known client id, a redirect URI that
  matches the registered callback (any port for loopback hosts), a PKCE
  ``S256`` challenge when given. The signed-in person approves or denies
  (``consent``), then a 302 back with ``code`` and ``state`` or with
  ``error=access_denied``.
- ``POST /login/oauth/access_token``: client id and secret, code known,
  unused and younger than ten minutes, the same redirect URI, and the PKCE
  verifier hashing to the challenge. Codes are single-use: any exchange
  attempt burns the code. GitHub answers these errors with HTTP 200 and an
  ``error`` field (JSON with ``Accept: application/json``, form otherwise).
- Device flow: ``POST /login/device/code`` and the device grant on the token
  endpoint, with ``authorization_pending``, ``slow_down`` (polling faster
  than the interval adds five seconds to it and says the new interval),
  ``expired_token``, ``access_denied`` and ``device_flow_disabled``.
- ``GET /api/v3/user``, ``GET /api/v3/user/following`` (paginated with a
  ``Link`` header) and ``POST /api/v3/applications/{client_id}/token``
  (basic auth; 404 for a token it does not know or that another app holds,
  422 for an empty one).
- Tokens of other OAuth apps (``issue_token(user, app=...)``), like the
  GitHub session VS Code's own app holds: ``GET /user`` answers for them as
  for any token, but the token check of our app does not know them.

The clock is injectable (``FakeGitHub.clock``) so expiry and slow_down are
tested without waiting. ``requests`` records every request's method and path
(never bodies) so tests can assert that GitHub was, or was not, called.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CODE_LIFETIME = 600.0
"""GitHub's authorization codes expire after ten minutes."""
DEVICE_CODE_LIFETIME = 900
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DOCS = "https://docs.github.com/apps/oauth-apps"


@dataclasses.dataclass
class FakeUser:
    id: int
    login: str
    name: str | None = None
    following: list[int] = dataclasses.field(default_factory=list)

    @property
    def avatar_url(self) -> str:
        return f"https://avatars.example/u/{self.id}?v=4"

    def simple(self, api: str) -> dict[str, Any]:
        return {
            "login": self.login,
            "id": self.id,
            "node_id": f"U_{self.id}",
            "avatar_url": self.avatar_url,
            "gravatar_id": "",
            "url": f"{api}/users/{self.login}",
            "html_url": f"https://github.example/{self.login}",
            "type": "User",
            "site_admin": False,
        }

    def private(self, api: str) -> dict[str, Any]:
        return {
            **self.simple(api),
            "name": self.name,
            "company": None,
            "blog": "",
            "location": None,
            "email": None,
            "bio": None,
            "public_repos": 3,
            "followers": 0,
            "following": len(self.following),
            "created_at": "2020-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
        }


@dataclasses.dataclass
class _Code:
    user: FakeUser
    redirect_uri: str
    challenge: str | None
    issued: float
    used: bool = False


@dataclasses.dataclass
class _Device:
    device_code: str
    user_code: str
    issued: float
    interval: int
    last_poll: float | None = None
    user: FakeUser | None = None
    denied: bool = False
    done: bool = False


EDITOR_APP = "Iv1.editorapp000001"
"""Client id of "another OAuth app": the one an editor signs its users in with."""


@dataclasses.dataclass
class _Token:
    value: str
    user: FakeUser
    created: float
    app: str
    """Client id of the OAuth app the token was issued to."""


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class FakeGitHub:
    """One fake GitHub with one registered OAuth app and a signed-in browser user."""

    def __init__(
        self,
        *,
        client_id: str = "Iv1.fakeclient0001",
        client_secret: str = "fake-secret-0123456789abcdef",
        callback_url: str = "http://127.0.0.1/callback",
        device_flow: bool = True,
        device_interval: int = 5,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.callback_url = callback_url
        self.device_flow = device_flow
        self.device_interval = device_interval
        self.now = 1_700_000_000.0
        self.clock: Callable[[], float] = lambda: self.now
        self.consent = "approve"
        """What the signed-in person answers on the consent page: approve or deny."""
        self.users: dict[int, FakeUser] = {}
        self.signed_in: FakeUser | None = None
        self.fail_next: dict[str, int] = {}
        """Path → HTTP status to answer once (a GitHub outage), e.g. {"/api/v3/user": 502}."""
        self.requests: list[tuple[str, str]] = []
        self.tokens: dict[str, _Token] = {}
        self._codes: dict[str, _Code] = {}
        self._devices: dict[str, _Device] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ test controls

    def add_user(
        self, id: int, login: str, name: str | None = None, following: list[int] | None = None
    ) -> FakeUser:
        user = FakeUser(id, login, name, list(following or []))
        self.users[id] = user
        if self.signed_in is None:
            self.signed_in = user
        return user

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and p == path)

    def issue_token(self, user: FakeUser, app: str | None = None) -> str:
        """A token for our app (or for ``app``, another OAuth app such as an
        editor's), as if the person had signed in elsewhere."""
        with self._lock:
            return self._new_token(user, app)

    def revoke_token(self, token: str) -> None:
        with self._lock:
            self.tokens.pop(token, None)

    def approve_device(self, user_code: str, user: FakeUser | None = None) -> None:
        """The person types the user code on the verification page and approves."""
        with self._lock:
            device = self._device_by_user_code(user_code)
            device.user = user or self.signed_in

    def deny_device(self, user_code: str) -> None:
        with self._lock:
            self._device_by_user_code(user_code).denied = True

    def issue_code(
        self, redirect_uri: str, challenge: str | None, user: FakeUser | None = None
    ) -> str:
        """An authorization code as the authorize page would hand out (for API-level tests)."""
        with self._lock:
            return self._new_code(user or self._require_signed_in(), redirect_uri, challenge)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def web_url(self) -> str:
        return self.base_url

    @property
    def api_url(self) -> str:
        return self.base_url + "/api/v3"

    # ------------------------------------------------------------ lifecycle

    def start(self) -> FakeGitHub:
        fake = self

        class Handler(_Handler):
            github = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-github", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(5)
            self._server = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ internals (under lock)

    def _require_signed_in(self) -> FakeUser:
        if self.signed_in is None:
            raise AssertionError("no user is signed in to the fake GitHub")
        return self.signed_in

    def _new_code(self, user: FakeUser, redirect_uri: str, challenge: str | None) -> str:
        code = secrets.token_hex(10)
        self._codes[code] = _Code(user, redirect_uri, challenge, self.clock())
        return code

    def _new_token(self, user: FakeUser, app: str | None = None) -> str:
        token = "gho_" + secrets.token_urlsafe(27)[:36]
        self.tokens[token] = _Token(token, user, self.clock(), app or self.client_id)
        return token

    def _device_by_user_code(self, user_code: str) -> _Device:
        for device in self._devices.values():
            if device.user_code == user_code:
                return device
        raise AssertionError(f"no device code with user code {user_code!r}")

    def _redirect_ok(self, redirect_uri: str) -> bool:
        """GitHub's rule: same scheme/host and a path under the callback's; any port on loopback."""
        want = urllib.parse.urlsplit(self.callback_url)
        got = urllib.parse.urlsplit(redirect_uri)
        if got.scheme != want.scheme or got.hostname != want.hostname:
            return False
        loopback = want.hostname in ("127.0.0.1", "::1", "localhost")
        if not loopback and got.port != want.port:
            return False
        return got.path == want.path or got.path.startswith(want.path.rstrip("/") + "/")


_TROUBLESHOOTING = "troubleshooting-oauth-app-access-token-request-errors"


def _oauth_error(error: str, description: str, anchor: str = "") -> dict[str, Any]:
    return {
        "error": error,
        "error_description": description,
        "error_uri": f"{DOCS}/{_TROUBLESHOOTING}/#{anchor or error}",
    }


class _Handler(BaseHTTPRequestHandler):
    github: FakeGitHub
    protocol_version = "HTTP/1.1"
    server_version = "FakeGitHub/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``requests`` instead."""

    # ------------------------------------------------------------ plumbing

    def _route(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        gh = self.github
        with gh._lock:
            gh.requests.append((method, url.path))
            failure = gh.fail_next.pop(url.path, None)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if failure is not None:
            self._json({"message": "Server Error"}, failure)
            return
        query = dict(urllib.parse.parse_qsl(url.query))
        routes: dict[tuple[str, str], Callable[[dict[str, str], bytes], None]] = {
            ("GET", "/login/oauth/authorize"): self._authorize,
            ("POST", "/login/oauth/access_token"): self._access_token,
            ("POST", "/login/device/code"): self._device_code,
            ("GET", "/api/v3/user"): self._user,
            ("GET", "/api/v3/user/following"): self._following,
            ("POST", f"/api/v3/applications/{gh.client_id}/token"): self._check_token,
        }
        handler = routes.get((method, url.path))
        if handler is None:
            self._json({"message": "Not Found", "documentation_url": DOCS}, 404)
            return
        handler(query, body)

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, data: Any, status: int = 200, **headers: str) -> None:
        self._send(status, json.dumps(data).encode(), "application/json; charset=utf-8", **headers)

    def _oauth_answer(self, data: dict[str, Any]) -> None:
        """GitHub's token endpoint: JSON if asked for, else form encoding; always 200."""
        if "application/json" in self.headers.get("Accept", ""):
            self._json(data)
        else:
            body = urllib.parse.urlencode({k: str(v) for k, v in data.items()}).encode()
            self._send(200, body, "application/x-www-form-urlencoded; charset=utf-8")

    def _page(self, status: int, text: str) -> None:
        html = f"<!doctype html><title>GitHub</title><p>{text}</p>".encode()
        self._send(status, html, "text/html; charset=utf-8")

    def _form(self, query: dict[str, str], body: bytes) -> dict[str, str]:
        """Token-endpoint parameters: GitHub takes them from the body or the query."""
        params = dict(query)
        ctype = self.headers.get("Content-Type", "")
        if body and "json" in ctype:
            params.update({k: str(v) for k, v in json.loads(body).items()})
        elif body:
            params.update(urllib.parse.parse_qsl(body.decode()))
        return params

    def _bearer(self) -> _Token | None:
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        with self.github._lock:
            return self.github.tokens.get(value.strip())

    def _bad_credentials(self) -> None:
        self._json({"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}, 401)

    # ------------------------------------------------------------ web endpoints

    def _authorize(self, query: dict[str, str], _body: bytes) -> None:
        gh = self.github
        if query.get("client_id") != gh.client_id:
            self._page(404, "Not Found")
            return
        redirect_uri = query.get("redirect_uri") or gh.callback_url
        if not gh._redirect_ok(redirect_uri):
            self._page(400, "The redirect_uri is not associated with this application.")
            return
        challenge = query.get("code_challenge")
        method = query.get("code_challenge_method")
        if challenge is not None and method != "S256":
            self._page(400, "Only the S256 code_challenge_method is supported.")
            return
        state = query.get("state")
        with gh._lock:
            user = gh._require_signed_in()
            if gh.consent == "approve":
                params = {"code": gh._new_code(user, redirect_uri, challenge)}
            else:
                params = {
                    "error": "access_denied",
                    "error_description": "The user has denied your application access.",
                    "error_uri": f"{DOCS}/troubleshooting-authorization-request-errors/"
                    "#access-denied",
                }
        if state is not None:
            params["state"] = state
        sep = "&" if urllib.parse.urlsplit(redirect_uri).query else "?"
        location = redirect_uri + sep + urllib.parse.urlencode(params)
        self._send(302, b"", "text/html; charset=utf-8", Location=location)

    def _access_token(self, query: dict[str, str], body: bytes) -> None:
        gh = self.github
        params = self._form(query, body)
        if params.get("grant_type") == DEVICE_GRANT:
            self._device_grant(params)
            return
        if "grant_type" in params and params["grant_type"] != "authorization_code":
            self._oauth_answer(
                _oauth_error("unsupported_grant_type", "The grant type is not supported.")
            )
            return
        secret_ok = hmac.compare_digest(
            params.get("client_secret", "").encode(), gh.client_secret.encode()
        )
        if params.get("client_id") != gh.client_id or not secret_ok:
            self._oauth_answer(
                _oauth_error(
                    "incorrect_client_credentials",
                    "The client_id and/or client_secret passed are incorrect.",
                )
            )
            return
        bad_code = _oauth_error("bad_verification_code", "The code passed is incorrect or expired.")
        with gh._lock:
            entry = gh._codes.get(params.get("code", ""))
            if entry is None or entry.used:
                self._oauth_answer(bad_code)
                return
            entry.used = True  # single use, whatever the outcome of this attempt
            if gh.clock() - entry.issued > CODE_LIFETIME:
                self._oauth_answer(bad_code)
                return
            redirect_uri = params.get("redirect_uri")
            if redirect_uri is not None and redirect_uri != entry.redirect_uri:
                self._oauth_answer(
                    _oauth_error(
                        "redirect_uri_mismatch",
                        "The redirect_uri MUST match the registered callback URL for this "
                        "application.",
                    )
                )
                return
            if entry.challenge is not None:
                verifier = params.get("code_verifier", "")
                if not hmac.compare_digest(s256(verifier), entry.challenge):
                    self._oauth_answer(bad_code)
                    return
            token = gh._new_token(entry.user)
        self._oauth_answer({"access_token": token, "scope": "", "token_type": "bearer"})

    def _device_code(self, query: dict[str, str], body: bytes) -> None:
        gh = self.github
        params = self._form(query, body)
        if params.get("client_id") != gh.client_id:
            self._oauth_answer(
                _oauth_error("incorrect_client_credentials", "The client_id is not valid.")
            )
            return
        if not gh.device_flow:
            self._oauth_answer(
                _oauth_error("device_flow_disabled", "Device flow must be explicitly enabled.")
            )
            return
        letters = "BCDFGHJKLMNPQRSTVWXZ"
        user_code = "".join(secrets.choice(letters) for _ in range(8))
        user_code = f"{user_code[:4]}-{user_code[4:]}"
        with gh._lock:
            device = _Device(secrets.token_hex(20), user_code, gh.clock(), gh.device_interval)
            gh._devices[device.device_code] = device
        self._oauth_answer(
            {
                "device_code": device.device_code,
                "user_code": device.user_code,
                "verification_uri": f"{gh.base_url}/login/device",
                "expires_in": DEVICE_CODE_LIFETIME,
                "interval": device.interval,
            }
        )

    def _device_grant(self, params: dict[str, str]) -> None:
        gh = self.github
        if params.get("client_id") != gh.client_id:
            self._oauth_answer(
                _oauth_error("incorrect_client_credentials", "The client_id is not valid.")
            )
            return
        if not gh.device_flow:
            self._oauth_answer(
                _oauth_error("device_flow_disabled", "Device flow must be explicitly enabled.")
            )
            return
        with gh._lock:
            now = gh.clock()
            device = gh._devices.get(params.get("device_code", ""))
            if device is None or device.done:
                answer = _oauth_error("incorrect_device_code", "The device_code is not valid.")
            elif now - device.issued > DEVICE_CODE_LIFETIME:
                answer = _oauth_error("expired_token", "The device_code has expired.")
            elif device.last_poll is not None and now - device.last_poll < device.interval:
                device.interval += 5
                device.last_poll = now
                answer = {
                    **_oauth_error(
                        "slow_down", "Too many requests have been made in the same timeframe."
                    ),
                    "interval": device.interval,
                }
            elif device.denied:
                device.done = True
                device.last_poll = now
                answer = _oauth_error("access_denied", "The authorization request was denied.")
            elif device.user is None:
                device.last_poll = now
                answer = _oauth_error(
                    "authorization_pending", "The authorization request is still pending."
                )
            else:
                device.done = True
                answer = {
                    "access_token": gh._new_token(device.user),
                    "token_type": "bearer",
                    "scope": "",
                }
        self._oauth_answer(answer)

    # ------------------------------------------------------------ REST API

    def _user(self, _query: dict[str, str], _body: bytes) -> None:
        token = self._bearer()
        if token is None:
            self._bad_credentials()
            return
        self._json(token.user.private(self.github.api_url))

    def _following(self, query: dict[str, str], _body: bytes) -> None:
        token = self._bearer()
        if token is None:
            self._bad_credentials()
            return
        gh = self.github
        try:
            per_page = min(max(int(query.get("per_page", "30")), 1), 100)
            page = max(int(query.get("page", "1")), 1)
        except ValueError:
            self._json({"message": "Validation Failed", "documentation_url": DOCS}, 422)
            return
        ids = token.user.following
        chunk = ids[(page - 1) * per_page : page * per_page]
        users = [
            gh.users[i].simple(gh.api_url) if i in gh.users else FakeUser(i, f"u{i}").simple("")
            for i in chunk
        ]
        headers: dict[str, str] = {}
        last = max(1, -(-len(ids) // per_page))
        if page < last:
            base = f"{gh.api_url}/user/following?per_page={per_page}"
            headers["Link"] = (
                f'<{base}&page={page + 1}>; rel="next", <{base}&page={last}>; rel="last"'
            )
        self._json(users, **headers)

    def _check_token(self, _query: dict[str, str], body: bytes) -> None:
        gh = self.github
        scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            user = password = ""
        if scheme.lower() != "basic" or not (
            user == gh.client_id
            and hmac.compare_digest(password.encode(), gh.client_secret.encode())
        ):
            self._json({"message": "Requires authentication", "documentation_url": DOCS}, 401)
            return
        try:
            access_token = str(json.loads(body or b"{}").get("access_token") or "")
        except ValueError:
            access_token = ""
        if not access_token:
            self._json(
                {
                    "message": "Validation Failed",
                    "errors": [{"resource": "Token", "field": "access_token", "code": "missing"}],
                    "documentation_url": DOCS,
                },
                422,
            )
            return
        with gh._lock:
            entry = gh.tokens.get(access_token)
        if entry is None or entry.app != gh.client_id:
            # GitHub answers another app's token exactly like an unknown one.
            self._json({"message": "Not Found", "documentation_url": DOCS}, 404)
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry.created))
        self._json(
            {
                "id": abs(hash(access_token)) % 10**9,
                "url": f"{gh.api_url}/authorizations/1",
                "scopes": [],
                "token": access_token,
                "token_last_eight": access_token[-8:],
                "hashed_token": hashlib.sha256(access_token.encode()).hexdigest(),
                "app": {
                    "url": "https://app.example",
                    "name": "presence",
                    "client_id": gh.client_id,
                },
                "note": None,
                "note_url": None,
                "updated_at": stamp,
                "created_at": stamp,
                "fingerprint": None,
                "expires_at": None,
                "user": entry.user.simple(gh.api_url),
                "installation": None,
            }
        )


__all__ = ["EDITOR_APP", "FakeGitHub", "FakeUser", "s256"]
