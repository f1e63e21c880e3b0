"""docs/protocol.md promises that its example client works: run two copies of it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from presence_server import RunningServer

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
MARKER = "<!-- example-client: tests/server/test_docs.py runs this block -->"


def example_client() -> str:
    text = DOC.read_text(encoding="utf-8")
    block = text.split(MARKER, 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    return block


async def run(script: Path, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(30):
        out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_example_client_is_short() -> None:
    lines = [line for line in example_client().splitlines() if line.strip()]
    assert len(lines) <= 18


async def test_two_example_clients_befriend_and_message(
    server: RunningServer, tmp_path: Path
) -> None:
    script = tmp_path / "client.py"
    script.write_text(example_client(), encoding="utf-8")
    bob = asyncio.create_task(run(script, server.url, "bob", "alice"))
    alice = asyncio.create_task(run(script, server.url, "alice", "bob"))
    (bob_rc, bob_out), (alice_rc, alice_out) = await asyncio.gather(bob, alice)
    assert (bob_rc, alice_rc) == (0, 0), bob_out + alice_out
    for out in (bob_out, alice_out):
        assert "'type': 'auth_ok'" in out
        assert "'relation': 'friend'" in out
        assert "'text': 'hi!'" in out
        assert "'status': 'dnd'" in out  # the friend's presence, before their message
