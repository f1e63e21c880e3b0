"""Measure cross-instance delivery latency and offline detection after kill -9.

    source DIR/env   # from scripts/start_services.sh (needs TEST_PG_DSN, redis-server)
    uv run python -m tests.production.measure latency [--pairs 40] [--seconds 20]
    uv run python -m tests.production.measure offline [--ttl 20] [--runs 3]

``latency``: two ``presence-server`` processes on one PostgreSQL and one
Redis; each sender (on instance A) messages one friend, half of them on A
(same instance) and half on B (cross-instance), all at the same rate, so both
kinds see the same load. Reported: end-to-end time from ``send_message`` to
the recipient's ``message`` frame (one clock: both clients live in this
process), and the servers' own fan-out histogram (publish to send queue).

``offline``: alice on A, bob on B, friends; B is killed with SIGKILL; the
time until alice is told bob is offline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from presence_protocol import Message, PresenceUpdate, SeenStatus, SendMessage
from tests.server.client import Client, befriend, login_dev
from tests.support.processes import LISTENING, server_command
from tests.support.services import RedisProcess, fresh_postgres_database


class Instance:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @classmethod
    async def start(cls, database: str, redis: str, ttl: float, log: Path) -> Instance:
        args = ["--port", "0", "--dev-login", "--database", database, "--redis", redis]
        args += ["--presence-ttl", str(ttl), "--log-level", "WARNING"]
        with log.open("ab") as err:
            proc = await asyncio.create_subprocess_exec(
                *server_command(*args),
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                env={k: v for k, v in os.environ.items() if not k.startswith("PRESENCE_")},
            )
        instance = cls(proc)
        assert proc.stdout is not None
        line = (await proc.stdout.readline()).decode().strip()
        match = LISTENING.match(line)
        if match is None:
            raise RuntimeError(f"no listening line: {line!r}; see {log}")
        instance.port = int(match.group(2))
        return instance

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()

    async def fanout_seconds(self) -> dict[str, tuple[float, float]]:
        """(count, sum) of the fan-out histogram per path."""
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{self.port}/metrics")).text
        result: dict[str, list[float]] = {}
        for family in text_string_to_metric_families(text):
            if family.name != "presence_fanout_latency_seconds":
                continue
            for sample in family.samples:
                path = sample.labels.get("path", "")
                entry = result.setdefault(path, [0.0, 0.0])
                if sample.name.endswith("_count"):
                    entry[0] = sample.value
                elif sample.name.endswith("_sum"):
                    entry[1] = sample.value
        return {k: (v[0], v[1]) for k, v in result.items()}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def describe(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"{name:>15}: n={len(ms):5d}  p50={percentile(ms, 0.50):7.2f} ms  "
        f"p99={percentile(ms, 0.99):7.2f} ms  mean={statistics.fmean(ms):7.2f} ms"
    )


async def measure_latency(
    database: str, redis: str, pairs: int, seconds: float, logs: Path
) -> None:
    a = await Instance.start(database, redis, 20, logs / "a.log")
    b = await Instance.start(database, redis, 20, logs / "b.log")
    try:
        senders: list[Client] = []
        recipients: list[tuple[Client, str]] = []
        for i in range(pairs):
            sender = await login_dev(a.url, f"s{i}")
            kind = "same-instance" if i % 2 == 0 else "cross-instance"
            recipient = await login_dev((a if kind == "same-instance" else b).url, f"r{i}")
            await befriend(sender, recipient)
            senders.append(sender)
            recipients.append((recipient, kind))
        results: dict[str, list[float]] = {"same-instance": [], "cross-instance": []}
        interval = 0.5  # 2 messages a second per sender: within 120 commands a minute

        async def run(index: int) -> None:
            sender = senders[index]
            recipient, kind = recipients[index]
            await asyncio.sleep(interval * index / pairs)  # spread the senders over time
            deadline = time.monotonic() + seconds
            n = 0
            while time.monotonic() < deadline:
                started = time.monotonic()
                message = SendMessage(to=recipient.me, text=f"m{n}", client_msg_id=f"{index}-{n}")
                await sender.send(message)
                await recipient.expect(Message, text=f"m{n}")
                results[kind].append(time.monotonic() - started)
                n += 1
                await asyncio.sleep(max(interval - (time.monotonic() - started), 0))

        await asyncio.gather(*(run(i) for i in range(pairs)))
        total = sum(len(v) for v in results.values())
        print(f"{pairs} senders on A, {total / seconds:.0f} messages/s in total, {seconds:.0f} s")
        print("end to end (send_message -> recipient's message frame, incl. the database write):")
        for kind, values in results.items():
            print(describe(kind, values))
        print("server fan-out histogram (publish -> connection send queue), mean:")
        for name, instance in (("A", a), ("B", b)):
            for path, (count, total_s) in sorted((await instance.fanout_seconds()).items()):
                if count:
                    print(
                        f"  {name} {path:>5}: n={count:6.0f}  mean={total_s / count * 1000:.3f} ms"
                    )
        for client in senders + [r for r, _ in recipients]:
            await client.close()
    finally:
        await a.stop()
        await b.stop()


async def measure_offline(database: str, redis: str, ttl: float, runs: int, logs: Path) -> None:
    times: list[float] = []
    for run in range(runs):
        a = await Instance.start(database, redis, ttl, logs / f"offline-a{run}.log")
        b = await Instance.start(database, redis, ttl, logs / f"offline-b{run}.log")
        try:
            alice = await login_dev(a.url, f"alice{run}")
            bob = await login_dev(b.url, f"bob{run}")
            await befriend(alice, bob)
            await bob.barrier()
            # Kill at a random point of the heartbeat cycle.
            await asyncio.sleep((run + 0.5) / runs * ttl / 3)
            killed = time.monotonic()
            b.proc.kill()
            async with asyncio.timeout(ttl * 3 + 10):
                while True:
                    async with alice._arrived:
                        update = next(
                            (
                                m
                                for m in alice.backlog
                                if isinstance(m, PresenceUpdate)
                                and m.user_id == bob.me
                                and m.status is SeenStatus.OFFLINE
                            ),
                            None,
                        )
                        if update is not None:
                            break
                        await alice._arrived.wait()
            times.append(time.monotonic() - killed)
            print(f"ttl {ttl:g} s, run {run + 1}: offline for friends after {times[-1]:.2f} s")
            await alice.close()
        finally:
            await a.stop()
            await b.stop()
    print(
        f"ttl {ttl:g} s: min {min(times):.2f} s, max {max(times):.2f} s "
        f"(bound: 1.25 x ttl = {1.25 * ttl:.2f} s)"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("what", choices=("latency", "offline"))
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--ttl", type=float, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    dsn = os.environ.get("TEST_PG_DSN")
    binary = shutil.which("redis-server")
    if not dsn or binary is None:
        print("needs $TEST_PG_DSN and redis-server (scripts/start_services.sh)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        redis = RedisProcess(binary, logs)
        await redis.start()
        try:
            async for database in fresh_postgres_database(dsn):
                if args.what == "latency":
                    await measure_latency(database, redis.url, args.pairs, args.seconds, logs)
                else:
                    await measure_offline(database, redis.url, args.ttl, args.runs, logs)
        finally:
            await redis.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
