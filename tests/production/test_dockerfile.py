"""The container image leaves the desktop's libraries out; the server must not need them.

No Docker daemon is needed: the packages the Dockerfile skips are read from
it, their modules are made unimportable in a fresh interpreter, and a real
server is started there with the PostgreSQL driver and the Redis client
loaded (Redis unreachable, SQLite file: no services needed).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a presence-server process in a trimmed environment

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import asyncio, json, sys

blocked = set(json.loads(sys.argv[2]))

class NotInImage:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{name} is not in the image")
        return None

sys.meta_path.insert(0, NotInImage())
import sqlalchemy.dialects.postgresql.asyncpg  # noqa: F401  (what --database postgresql:// loads)
from presence_server import ServerConfig, start_server
from presence_server.__main__ import build_parser

async def main():
    build_parser({})
    config = ServerConfig(port=0, database_url=sys.argv[1], redis_url="redis://127.0.0.1:9/0")
    server = await start_server(config)
    print(server.metrics.available)
    await server.stop()

asyncio.run(main())
"""


def skipped_packages() -> set[str]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    return set(re.findall(r"--no-install-package\s+([A-Za-z0-9_.-]+)", text))


def modules_of(packages: set[str]) -> set[str]:
    """Top-level import names of installed distributions."""
    wanted = {p.lower().replace("_", "-") for p in packages}
    modules: set[str] = set()
    for module, dists in importlib.metadata.packages_distributions().items():
        if any(d.lower().replace("_", "-") in wanted for d in dists):
            modules.add(module)
    return modules


def test_the_image_skips_the_desktop_stack() -> None:
    skipped = skipped_packages()
    assert {"pyside6-essentials", "qasync", "keyring", "desktop-notifier"} <= skipped
    # ...and none of what the server needs.
    needed = {"websockets", "msgspec", "sqlalchemy", "asyncpg", "aiosqlite", "alembic"}
    needed |= {"redis", "prometheus-client", "httpx", "platformdirs", "greenlet"}
    assert not needed & skipped


async def test_the_server_runs_without_what_the_image_skips(tmp_path: Path) -> None:
    blocked = modules_of(skipped_packages())
    assert {"PySide6", "keyring", "qasync"} <= blocked
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SCRIPT,
        f"sqlite+aiosqlite:///{tmp_path / 'image.sqlite3'}",
        json.dumps(sorted(blocked)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == "True"  # metrics included
