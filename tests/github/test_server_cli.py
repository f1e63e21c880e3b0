"""``presence-server`` with GitHub flags, as an operator runs it (a real process)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from presence_protocol import Hello, LoginMethod, decode_server, limits
from tests.fakes.github import FakeGitHub

pytestmark = pytest.mark.slow  # presence-server processes

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCE_")}
    env["PRESENCE_DATABASE"] = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env.update(extra)
    return env


async def _run(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "presence_server",
        "--port",
        "0",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.fixture
async def secret_file(tmp_path: Path, fake_github: FakeGitHub) -> AsyncIterator[Path]:
    path = tmp_path / "github-secret"
    path.write_text(fake_github.client_secret + "\n")
    path.chmod(0o600)
    yield path


async def test_server_announces_github_from_flags_and_a_secret_file(
    tmp_path: Path, fake_github: FakeGitHub, secret_file: Path
) -> None:
    proc = await _run(
        _env(tmp_path, PRESENCE_GITHUB_CLIENT_ID=fake_github.client_id),
        "--github-client-secret-file",
        str(secret_file),
        "--github-web-url",
        fake_github.web_url,
        "--github-api-url",
        fake_github.api_url,
        "--github-device-flow",
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line.startswith("listening on ws://"), line
        url = line.split()[-1]
        async with connect(url, subprotocols=[Subprotocol(limits.SUBPROTOCOL)]) as ws:
            hello = decode_server(await ws.recv())
        assert isinstance(hello, Hello) and hello.github is not None
        assert hello.github.client_id == fake_github.client_id
        assert hello.github.web_url == fake_github.web_url
        assert hello.github.device_flow
        assert LoginMethod.GITHUB_TOKEN in hello.login_methods
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    assert fake_github.client_secret.encode() not in err


@pytest.mark.parametrize(
    ("env", "args", "says"),
    [
        ({"PRESENCE_GITHUB_CLIENT_ID": "abc"}, (), "PRESENCE_GITHUB_CLIENT_SECRET"),
        ({}, ("--github-client-secret", "hunter2"), "not accepted as a flag value"),
        (
            {"PRESENCE_GITHUB_CLIENT_ID": "abc", "PRESENCE_GITHUB_CLIENT_SECRET": "x"},
            ("--github-web-url", "not a url"),
            "--github-web-url",
        ),
    ],
)
async def test_bad_github_configuration_stops_with_the_fix(
    tmp_path: Path, env: dict[str, str], args: tuple[str, ...], says: str
) -> None:
    proc = await _run(_env(tmp_path, **env), *args)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert out == b""
    assert says in err.decode()
    assert b"hunter2" not in err
