"""After everything else: no secret issued during the run is anywhere in clear.

This module runs last (see conftest). It reads every file the session wrote
under its temporary directory (databases and their WAL files byte for byte,
settings and state files, app log files, ``suite.log`` with every log record
of the session, subprocess logs), and, when the services run, the raw files
of the PostgreSQL cluster and every key and value in Redis. It looks for
every session token, GitHub token and PKCE verifier that was issued, whole
or as a prefix of 20 characters or more (log lines that shorten a frame
still leak most of a token).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from tests.server.client import login_dev
from tests.support.servers import StartServer

from . import issued

pytestmark = pytest.mark.slow  # reads what the slow tier's processes left behind

PREFIX = 20
TOKEN_RUN = re.compile(rb"[A-Za-z0-9_\-]{%d,}" % PREFIX)
MAX_FILE_BYTES = 256 * 1024 * 1024


class Finder:
    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = {s.encode() for s in secrets if len(s) >= PREFIX}
        self.prefixes = {s[:PREFIX]: s for s in self.secrets}

    def find(self, data: bytes) -> set[bytes]:
        found: set[bytes] = set()
        for match in TOKEN_RUN.finditer(data):
            run = match.group()
            for start in range(len(run) - PREFIX + 1):
                secret = self.prefixes.get(run[start : start + PREFIX])
                if secret is not None:
                    found.add(secret)
        return found


def files_under(root: Path) -> Iterator[Path]:
    for directory, _dirs, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            if path.is_file() and not path.is_symlink():
                yield path


def test_the_finder_sees_whole_and_shortened_secrets() -> None:
    secret = "q2V" + "x" * 20 + "Tail_-9"
    finder = Finder([secret])
    assert finder.find(b'{"session":"' + secret.encode() + b'"}') == {secret.encode()}
    assert finder.find(b'> TEXT \'{"session":"' + secret[:24].encode() + b"...") == {
        secret.encode()
    }
    assert finder.find(b"sha256:" + b"f" * 64) == set()


async def test_the_recorder_sees_sessions_issued_by_a_real_server(start: StartServer) -> None:
    server = await start()
    client = await login_dev(server.url, "canary")
    await client.close()
    assert client.session in issued.ISSUED


def test_no_issued_secret_in_any_file_of_the_run(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    finder = Finder(issued.ISSUED)
    assert finder.secrets
    root = tmp_path_factory.getbasetemp()
    leaks: dict[str, int] = {}
    scanned = 0
    for path in files_under(root):
        if path.stat().st_size > MAX_FILE_BYTES:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        scanned += 1
        found = finder.find(data)
        if found:
            leaks[str(path.relative_to(root))] = len(found)
    with capsys.disabled():  # the figure belongs in the CI log
        print(
            f"\nsecret scan: {len(finder.secrets)} secrets, {scanned} files under the session dir"
        )
    assert leaks == {}, f"secrets in clear: {leaks}"


def test_no_issued_secret_in_the_database_cluster_or_redis(
    require: Callable[[bool, str], None],
) -> None:
    dsn = os.environ.get("TEST_PG_DSN", "")
    redis_url = os.environ.get("TEST_REDIS_URL", "")
    require(bool(dsn and redis_url), "PostgreSQL and Redis (scripts/start_services.sh)")
    finder = Finder(issued.ISSUED)

    async def pg_files() -> Path:
        import asyncpg

        conn = await asyncpg.connect(dsn.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute("CHECKPOINT")
            return Path(await conn.fetchval("SHOW data_directory"))
        finally:
            await conn.close()

    async def redis_values() -> list[bytes]:
        from redis.asyncio import Redis

        client = Redis.from_url(redis_url)
        values: list[bytes] = []
        try:
            async for key in client.scan_iter(count=1000):
                values.append(key)
                dump = await client.dump(key)
                if dump:
                    values.append(dump)
        finally:
            await client.aclose()
        return values

    data_dir = asyncio.run(pg_files())
    leaks = [str(p) for p in files_under(data_dir) if finder.find(p.read_bytes())]
    assert leaks == []
    found = [v[:60] for v in asyncio.run(redis_values()) if finder.find(v)]
    assert found == []
