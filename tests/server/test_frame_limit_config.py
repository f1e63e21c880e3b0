"""A server refuses a frame limit it could not keep (issue 14 leftover).

``hello`` is sent whole, and so is every frame that is never cut (protocol.md
§8); with a ``max_server_frame_bytes`` below their worst case the server would
break the limit it announces. The configuration check refuses such a limit
with a ``ConfigError`` naming the minimum, before anything listens.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from presence_protocol import encode, limits
from presence_server import ServerLimits
from presence_server.config import ConfigError, ServerConfig, hello_for, min_server_frame_bytes
from presence_server.edge.options import validate
from presence_server.edge.server import start_server
from tests.support.servers import sqlite_url

SMALLEST = limits.MIN_SERVER_FRAME_BYTES


def config_with(frame_limit: int, **fields: Any) -> ServerConfig:
    return ServerConfig(limits=ServerLimits(max_server_frame_bytes=frame_limit), **fields)


@pytest.mark.parametrize("frame_limit", [0, 1, 500, SMALLEST - 1])
def test_a_limit_below_the_minimum_is_refused_naming_the_minimum(frame_limit: int) -> None:
    with pytest.raises(ConfigError) as refused:
        validate(config_with(frame_limit))
    assert f"is {frame_limit}," in str(refused.value)
    assert f"at least {SMALLEST} bytes" in str(refused.value)


@pytest.mark.parametrize("frame_limit", [SMALLEST, limits.MAX_SERVER_FRAME_BYTES])
def test_the_minimum_and_the_default_are_accepted(frame_limit: int) -> None:
    validate(config_with(frame_limit))


def test_a_hello_longer_than_the_bounded_frames_sets_the_minimum() -> None:
    """An operator's long server name makes ``hello`` the frame that needs most."""
    named = config_with(SMALLEST, server_name="s" * (2 * SMALLEST))
    needed = len(encode(hello_for(named)))
    assert min_server_frame_bytes(named) == needed > SMALLEST
    with pytest.raises(ConfigError, match=re.escape(f"at least {needed} bytes")):
        validate(named)
    validate(config_with(needed, server_name="s" * (2 * SMALLEST)))


async def test_a_server_with_too_small_a_limit_does_not_start(tmp_path: Path) -> None:
    config = config_with(
        1000, host="127.0.0.1", port=0, database_url=sqlite_url(tmp_path / "p.sqlite3")
    )
    with pytest.raises(ConfigError, match=f"at least {SMALLEST} bytes"):
        await start_server(config)
    assert not (tmp_path / "p.sqlite3").exists()  # refused before anything was created
