"""The desktop binary embeds the server for --demo without the production extras."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a presence-server process in a trimmed environment

SCRIPT = """
import asyncio, sys

class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"redis", "asyncpg", "prometheus_client"}:
            raise ImportError(f"{name} is not in this build")
        return None

sys.meta_path.insert(0, Missing())
from presence_server import ServerConfig, start_server

async def main():
    server = await start_server(ServerConfig(port=0, database_url=sys.argv[1]))
    print(server.url.split(":")[0], server.metrics.available)
    await server.stop()

asyncio.run(main())
"""


async def test_a_server_without_redis_asyncpg_or_prometheus_still_runs(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SCRIPT,
        f"sqlite+aiosqlite:///{tmp_path / 'demo.sqlite3'}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert out.decode().split() == ["ws", "False"]  # serving, with metrics switched off
