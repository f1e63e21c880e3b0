"""What receiving one fan-out message costs the receiving instance (CPU per message).

    uv run python -m benchmarks.redis_receive [--messages 20000]

Starts a private ``redis-server`` and one ``RedisFanout`` (plain pub/sub, as
``--redis`` without ``--redis-pubsub``) with N local recipients, each holding
one connection that only counts what it is handed. A separate process then
publishes messages to the instance's channel naming all N recipients, as
``ROUTE`` would, in pipelines of 200 (a burst: the receiver finds many
messages buffered per wake-up) or one at a time with a round trip each (a
trickle: about one message per wake-up). The figure is this process's CPU
(``time.process_time``) between the first and the last delivery, per message:
the publisher's CPU is in another process and not counted.

Every wait has a hang guard (the publisher's exit and the last delivery):
a receiver that loses messages fails the run instead of hanging it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from presence_server.cluster import redis_fanout
from presence_server.cluster.fanout import Event
from presence_server.cluster.redis_fanout import RedisFanout, encode_message
from presence_server.cluster.redis_link import RedisLink

from ._common import Figure, write_results
from .cross_instance import Redis

PREFIX = "bench:"
_bulk = redis_fanout._pushes
HANG_GUARD_SECONDS = 120.0
"""Far beyond a run's expected few seconds: only a lost message reaches it."""

PUBLISHER = """
import sys, redis
url, channel, path, count, burst = sys.argv[1:6]
payload = open(path, 'rb').read()
client = redis.Redis.from_url(url)
count, burst = int(count), int(burst)
sent = 0
while sent < count:
    n = min(burst, count - sent)
    pipe = client.pipeline(transaction=False)
    for _ in range(n):
        pipe.publish(channel, payload)
    pipe.execute()
    sent += n
"""


class _Counter:
    """A local connection that only counts; the last delivery sets ``done``."""

    def __init__(self, shared: dict[str, Any]) -> None:
        self.shared = shared

    def deliver(self, event: Event) -> None:
        shared = self.shared
        if shared["count"] == 0:
            shared["first_cpu"] = time.process_time()
        shared["count"] += 1
        if shared["count"] == shared["expected"]:
            shared["last_cpu"] = time.process_time()
            shared["done"].set()


def _per_message(pubsub: Any) -> None:
    """In place of ``redis_fanout._pushes``: the listener then takes its
    ``get_message`` path, as every message did before the bulk reader."""
    return None


async def measure(
    url: str, recipients: int, messages: int, burst: int, bulk: bool = True
) -> dict[str, Any]:
    if not bulk:
        redis_fanout._pushes = _per_message
    link = RedisLink(url, ttl=60.0, prefix=PREFIX, instance="receiver")
    fanout = RedisFanout(link)
    shared: dict[str, Any] = {
        "count": 0,
        "expected": recipients * messages,
        "done": asyncio.Event(),
    }
    try:
        async with asyncio.timeout(HANG_GUARD_SECONDS):
            if not await link._connect():
                raise SystemExit(f"redis unreachable: {link.last_error}")
        for uid in range(recipients):
            await fanout.subscribe(uid, _Counter(shared))
        event = Event(frame=b"x" * 142, subject=1, version=5)
        payload = encode_message(range(recipients), event, "other.0", time.time())
        with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as f:
            f.write(payload)
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                PUBLISHER,
                url,
                fanout.channel.decode(),
                f.name,
                str(messages),
                str(burst),
            )
            async with asyncio.timeout(HANG_GUARD_SECONDS):
                code = await proc.wait()
                if code != 0:
                    raise SystemExit(f"publisher failed ({code})")
                await shared["done"].wait()
        finally:
            os.unlink(f.name)
        cpu = shared["last_cpu"] - shared["first_cpu"]
        return {
            "recipients": recipients,
            "burst": burst,
            "bulk": bulk,
            "messages": messages,
            "us_per_message": 1e6 * cpu / max(messages - 1, 1),
            "us_per_delivery": 1e6 * cpu / max(recipients * messages - 1, 1),
        }
    finally:
        await fanout.close()
        await link.close()
        redis_fanout._pushes = _bulk


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args(argv)
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        redis = Redis(Path(tmp))
        try:
            for burst in (200, 1):
                for recipients in (1, 17, 50):
                    for bulk in (False, True):
                        messages = args.messages if burst > 1 else max(args.messages // 4, 2)
                        row = asyncio.run(measure(redis.url, recipients, messages, burst, bulk))
                        rows.append(row)
                        print(
                            f"  {'bulk' if bulk else 'get_message':>11}, "
                            f"{recipients:>2} recipients, publisher pipelines {burst:>3}: "
                            f"{row['us_per_message']:.1f} us per message, "
                            f"{row['us_per_delivery']:.2f} us per delivery",
                            flush=True,
                        )
        finally:
            redis.stop()
    print(f"  load average {os.getloadavg()}", flush=True)
    by = {(r["recipients"], r["burst"], r["bulk"]): r for r in rows}
    figures = [
        Figure(
            "receiving instance's CPU per message, 17 recipients, burst, bulk reader",
            by[(17, 200, True)]["us_per_message"],
            "us",
            baseline=by[(17, 200, False)]["us_per_message"],
            baseline_name="get_message per push, same run",
            target=None,
            note="; ".join(
                f"{'bulk' if r['bulk'] else 'get_message'} {r['recipients']} recipients, "
                f"pipelines of {r['burst']}: {r['us_per_message']:.1f}"
                for r in rows
            ),
        ),
        Figure(
            "receiving instance's CPU per message, 17 recipients, one per round trip",
            by[(17, 1, True)]["us_per_message"],
            "us",
            baseline=by[(17, 1, False)]["us_per_message"],
            baseline_name="get_message per push, same run",
            target=None,
        ),
    ]
    write_results("redis_receive", figures, {"rows": rows, "load": os.getloadavg()}, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
