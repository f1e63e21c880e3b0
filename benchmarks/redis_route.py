"""What the fan-out's routing script costs one Redis per event (docs/scaling.md plans with it).

    uv run python -m benchmarks.redis_route [--events 20000]

Starts a private ``redis-server``; writes device hashes for 50 recipients as
the registry does (``{p}dev:{user}``, one device each, spread over three other
processes), of which 0, 17 (a third online, docs/scaling.md A2) or 50 are
online, then runs ``ROUTE`` (``presence_server/cluster/redis_fanout.py``) for
one event at a time, pipelined 200 at a time as the flusher does, publishing
(plain pub/sub) or returning the routes (``--redis-pubsub``). Reports Redis's
own CPU (``INFO cpu``) and this process's CPU per event.

Then the same through the link's command batch (``redis_batch``, what the
instances use since the registry's writes were batched), and, as the floor
that routing on the instances could reach, one plain ``PUBLISH`` per
destination process and no script, and routing on the instance (an
``MGET`` of the holders, grouped by the instance, then those publishes).
Last, the registry's ``PUT`` per presence change, 200 concurrent callers at a
time: through redis-py's script wrapper (one call each, as before) and
through the batch.
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
from presence_server.cluster.redis_batch import RedisBatch
from presence_server.cluster.redis_fanout import ROUTE, encode_event
from presence_server.cluster.redis_registry import PUT

from ._common import Figure, write_results
from .cross_instance import Redis

RECIPIENTS = 50
PIPELINE = 200
PREFIX = "bench:"


async def _cpu(client: Any) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def measure(
    url: str, online: int, publish: bool, events: int, how: str = "pipeline"
) -> dict[str, Any]:
    """``how``: ``pipeline`` (redis-py, as the fan-out did), ``batch``
    (``RedisBatch``, as it does now), ``publish`` (no script: one PUBLISH
    per destination process through the batch, routes known beforehand) or
    ``mget`` (routing on the instance: an ``MGET`` of the recipients' holders,
    grouped here, then the publishes, all through the batch)."""
    client: Any = aioredis.Redis.from_url(url)
    batch = RedisBatch(client.connection_pool, 30.0)
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
        route = ("EVALSHA", sha, 0, "me", channel_prefix, payload, f"{PREFIX}at:", recipients)
        groups: dict[str, list[str]] = {}
        for uid in range(online):
            groups.setdefault(f"host{uid % 3}.0123456789ab", []).append(str(uid))
        publishes = [
            ("PUBLISH", f"{PREFIX}i:{process}", ",".join(ids).encode() + b"\n" + payload)
            for process, ids in groups.items()
        ]
        for _ in range(0, events, PIPELINE):
            if how == "pipeline":
                async with client.pipeline(transaction=False) as pipe:
                    for _ in range(PIPELINE):
                        pipe.evalsha(
                            sha, 0, "me", channel_prefix, payload, f"{PREFIX}at:", recipients
                        )
                    await pipe.execute()
            elif how == "batch":
                await batch.execute([route] * PIPELINE)
            elif how == "mget":
                # Routing on the instance: one MGET of the holders per event,
                # then one PUBLISH per destination process, both through the batch.
                keys = [f"{PREFIX}at:{n}" for n in range(RECIPIENTS)]
                ids = [str(n).encode() for n in range(RECIPIENTS)]
                held = await batch.execute([("MGET", *keys)] * PIPELINE)
                messages: list[tuple[str, str, bytes]] = []
                for values in held:
                    by: dict[bytes, list[bytes]] = {}
                    for holder_id, value in zip(ids, values, strict=True):
                        if value is not None:
                            for holder in value.split(b"\n"):
                                if holder != b"me":
                                    by.setdefault(holder, []).append(holder_id)
                    for holder, group in by.items():
                        channel = f"{PREFIX}i:{holder.decode()}"
                        messages.append(("PUBLISH", channel, b",".join(group) + b"\n" + payload))
                await batch.execute(messages)
            else:
                await batch.execute(publishes * PIPELINE)
        return {
            "online": online,
            "publish": publish,
            "how": how,
            "redis_us": 1e6 * (await _cpu(client) - redis_before) / events,
            "client_us": 1e6 * (time.process_time() - mine_before) / events,
        }
    finally:
        await batch.close()
        await client.aclose()


async def measure_put(url: str, events: int, how: str) -> dict[str, Any]:
    """The registry's PUT for ``events`` presence changes of 200 users at a
    time, 200 concurrent callers: ``script`` (redis-py's ``Script``, one call
    each, as the registry did) or ``batch`` (``RedisBatch``, as it does now)."""
    client: Any = aioredis.Redis.from_url(url, max_connections=100)
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=100)
    pooled: Any = aioredis.Redis.from_pool(pool)
    batch = RedisBatch(pool, 30.0)
    try:
        await client.flushall()
        epoch = "me.0123456789ab.1"
        await client.set(f"{PREFIX}hb:{epoch}", "live")
        script = pooled.register_script(PUT)
        sha = await client.script_load(PUT)
        state = b'["online",null,null,1,1]'

        def arguments(uid: int) -> tuple[list[str], list[Any]]:
            keys = [f"{PREFIX}dev:{uid}", f"{PREFIX}users:{epoch}", f"{PREFIX}hb:{epoch}"]
            return keys, [f"{epoch}|c{uid}", state, uid, "me.0123456789ab.", f"|c{uid}", 0]

        async def one(uid: int) -> None:
            keys, args = arguments(uid)
            if how == "script":
                await script(keys=keys, args=args)
            else:
                await batch.call("EVALSHA", sha, len(keys), *keys, *args)

        redis_before = await _cpu(client)
        mine_before = time.process_time()
        for _ in range(0, events, PIPELINE):
            await asyncio.gather(*(one(uid) for uid in range(PIPELINE)))
        return {
            "how": how,
            "redis_us": 1e6 * (await _cpu(client) - redis_before) / events,
            "client_us": 1e6 * (time.process_time() - mine_before) / events,
        }
    finally:
        await batch.close()
        await pooled.aclose()
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args(argv)
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    variants: list[dict[str, Any]] = []
    puts: list[dict[str, Any]] = []
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
            for how in ("pipeline", "batch", "publish", "mget"):
                row = asyncio.run(measure(redis.url, 17, True, args.events, how))
                variants.append(row)
                print(
                    f"  17 of {RECIPIENTS} online, {how}: Redis {row['redis_us']:.1f} us, "
                    f"client {row['client_us']:.1f} us per event",
                    flush=True,
                )
            for how in ("script", "batch"):
                row = asyncio.run(measure_put(redis.url, args.events, how))
                puts.append(row)
                print(
                    f"  registry PUT, {how}: Redis {row['redis_us']:.1f} us, "
                    f"client {row['client_us']:.1f} us per change",
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
        Figure(
            "publishing instance's CPU per routed event, through the batch",
            variants[1]["client_us"],
            "us",
            baseline=variants[0]["client_us"],
            baseline_name="redis-py pipeline, same run",
            target=None,
        ),
        Figure(
            "Redis CPU per event, one PUBLISH per destination process, no script",
            variants[2]["redis_us"],
            "us",
            baseline=variants[1]["redis_us"],
            baseline_name="ROUTE, same run",
            target=None,
        ),
        Figure(
            "instance CPU per registry PUT, through the batch",
            puts[1]["client_us"],
            "us",
            baseline=puts[0]["client_us"],
            baseline_name="redis-py script call each, same run",
            target=None,
        ),
    ]
    write_results(
        "redis_route", figures, {"rows": rows, "variants": variants, "puts": puts}, started
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
