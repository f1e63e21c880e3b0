"""What the fan-out's routing script costs one Redis per event (docs/scaling.md plans with it).

    uv run python -m benchmarks.redis_route [--events 20000]

Starts a private ``redis-server``; writes device hashes for 50 recipients as
the registry does (``{p}dev:{user}``, one device each, spread over three other
processes), of which 0, 17 (a third online, docs/scaling.md A2) or 50 are
online, then runs ``ROUTE`` (``presence_server/cluster/redis_fanout.py``) for
one event at a time, pipelined 200 at a time as the flusher does, publishing
(plain pub/sub) or returning the routes (``--redis-pubsub``). Reports Redis's
own CPU (``INFO cpu``) and this process's CPU per event.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from presence_server.cluster.fanout import Event
from presence_server.cluster.redis_fanout import ROUTE, encode_event

from ._common import Figure, write_results
from .cross_instance import Redis

RECIPIENTS = 50
PIPELINE = 200
PREFIX = "bench:"


async def _cpu(client: Any) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def measure(url: str, online: int, publish: bool, events: int) -> dict[str, float]:
    client: Any = aioredis.Redis.from_url(url)
    try:
        await client.flushall()
        for uid in range(online):  # as the registry leaves them (redis_registry.py)
            process = f"host{uid % 3}.0123456789ab"
            await client.hset(f"{PREFIX}dev:{uid}", mapping={f"{process}.1|c{uid:07x}": "x"})
            await client.set(f"{PREFIX}at:{uid}", process)
        sha = await client.script_load(ROUTE)
        payload = encode_event(Event(frame=b"x" * 142, subject=1, version=5), "me.0", time.time())
        recipients = ",".join(str(uid) for uid in range(RECIPIENTS))
        channel_prefix = f"{PREFIX}i:" if publish else ""
        redis_before = await _cpu(client)
        mine_before = time.process_time()
        for _ in range(0, events, PIPELINE):
            async with client.pipeline(transaction=False) as pipe:
                for _ in range(PIPELINE):
                    pipe.evalsha(sha, 0, "me", channel_prefix, payload, f"{PREFIX}at:", recipients)
                await pipe.execute()
        return {
            "online": online,
            "publish": publish,
            "redis_us": 1e6 * (await _cpu(client) - redis_before) / events,
            "client_us": 1e6 * (time.process_time() - mine_before) / events,
        }
    finally:
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args(argv)
    started = time.monotonic()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-route-") as tmp:
        redis = Redis(Path(tmp))
        try:
            for online, publish in ((0, True), (17, True), (50, True), (17, False)):
                row = asyncio.run(measure(redis.url, online, publish, args.events))
                rows.append(row)
                print(
                    f"  {online:2d} of {RECIPIENTS} online, "
                    f"{'publish' if publish else 'return routes'}: "
                    f"Redis {row['redis_us']:.1f} us, client {row['client_us']:.1f} us per event",
                    flush=True,
                )
        finally:
            redis.stop()
    typical = rows[1]
    figures = [
        Figure(
            "Redis CPU per routed event (50 recipients, 17 online)",
            typical["redis_us"],
            "us",
            target=None,
            note="; ".join(
                f"{r['online']} online{'' if r['publish'] else ' (routes only)'}: "
                f"{r['redis_us']:.1f}"
                for r in rows
            ),
        ),
        Figure(
            "publishing instance's CPU per routed event (50 recipients)",
            typical["client_us"],
            "us",
            target=None,
        ),
    ]
    write_results("redis_route", figures, {"rows": rows}, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
