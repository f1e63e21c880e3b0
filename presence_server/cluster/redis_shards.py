"""Sharded pub/sub (Redis 7 ``SPUBLISH`` / ``SSUBSCRIBE``) for the fan-out.

One Redis runs every command on one thread, and classic ``PUBLISH`` in a
Redis Cluster is broadcast to every node, so neither grows pub/sub capacity
(docs/scaling.md works out that one Redis stops below a million users).
Sharded pub/sub hashes a channel to a slot like a key, and a message only
goes to the node that owns the slot. With ``--redis-pubsub URL`` the
fan-out's messages take that path, while the presence registry stays on
``--redis`` (its scripts touch keys of several slots in one atomic step, and
its load fits one Redis up to about a million users).

``URL`` may name one node of a Redis Cluster (the slot map is read from it)
or a plain Redis 7 server (every channel then lives there). Each process
subscribes to its one channel on the node that owns it. A slot that moves
(resharding, a failover) shows up as a ``MOVED`` error on a publish or an
``sunsubscribe`` on the subscriber connection; both count as a Redis outage:
the link goes down and comes back with a fresh slot map, a fresh
subscription, and the usual re-sync (durable events are re-published,
presence re-registered, connections get a fresh snapshot).

No cluster client library is involved on purpose: the fan-out needs only
"which node owns this channel", one connection pool per node, and
publishes that keep their order per channel (a channel's messages go out
in one pipeline to one node, in the order given).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot

from .redis_link import COMMAND_TIMEOUT_SECONDS, REDIS_ERRORS

SLOTS = 16384

Node = tuple[str, int]


def parse_slots(reply: Any) -> dict[Node, list[tuple[int, int]]]:
    """``CLUSTER SLOTS`` (raw, or as redis-py parses it) → primary → slot ranges."""
    ranges: dict[Node, list[tuple[int, int]]] = {}
    if isinstance(reply, dict):
        for (start, end), info in reply.items():
            host, port = info["primary"][:2]
            node = (host.decode() if isinstance(host, bytes) else str(host), int(port))
            ranges.setdefault(node, []).append((int(start), int(end)))
        return ranges
    for entry in reply:
        start, end, primary = entry[0], entry[1], entry[2]
        host, port = primary[0], primary[1]
        node = (host.decode() if isinstance(host, bytes) else str(host), int(port))
        ranges.setdefault(node, []).append((int(start), int(end)))
    return ranges


class ShardedPubSub:
    """Publishing to and subscribing on sharded channels, cluster or not."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._kwargs: dict[str, Any] = dict(parse_url(url))
        self._kwargs.pop("db", None)  # a cluster has only database 0; pub/sub ignores it
        self._clients: dict[Node, Any] = {}
        self._owner: list[Node] | None = None
        """Slot → primary; None: not a cluster (one server for every channel)."""
        self._single: Node = (
            str(self._kwargs.get("host", "localhost")),
            int(self._kwargs.get("port", 6379)),
        )

    def _client(self, node: Node) -> Any:
        client = self._clients.get(node)
        if client is None:
            client = aioredis.Redis(
                **{**self._kwargs, "host": node[0], "port": node[1]},
                socket_connect_timeout=COMMAND_TIMEOUT_SECONDS,
                socket_timeout=COMMAND_TIMEOUT_SECONDS,
                retry=Retry(NoBackoff(), 0),
                decode_responses=False,
            )
            self._clients[node] = client
        return client

    async def open(self) -> None:
        """Read the slot map (again): after every outage it may have changed."""
        await self.close()
        seed = self._client(self._single)
        async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
            info = await seed.info("cluster")
            if not info.get("cluster_enabled"):
                self._owner = None
                return
            ranges = parse_slots(await seed.execute_command("CLUSTER SLOTS"))
        owner: list[Node | None] = [None] * SLOTS
        for node, spans in ranges.items():
            for start, end in spans:
                for slot in range(start, end + 1):
                    owner[slot] = node
        if any(node is None for node in owner):
            raise ConnectionError("the Redis Cluster does not cover every slot")
        self._owner = [node for node in owner if node is not None]

    def node_of(self, channel: bytes) -> Node:
        if self._owner is None:
            return self._single
        return self._owner[key_slot(channel)]

    async def publish(self, messages: Sequence[tuple[bytes, bytes]]) -> None:
        """``SPUBLISH`` each (channel, payload): one pipeline per node, in order."""
        by_node: dict[Node, list[tuple[bytes, bytes]]] = {}
        for channel, payload in messages:
            by_node.setdefault(self.node_of(channel), []).append((channel, payload))

        async def send(node: Node, batch: list[tuple[bytes, bytes]]) -> None:
            async with self._client(node).pipeline(transaction=False) as pipe:
                for channel, payload in batch:
                    pipe.spublish(channel, payload)
                await pipe.execute()

        async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
            await asyncio.gather(*(send(node, batch) for node, batch in by_node.items()))

    async def subscribe(self, channel: bytes) -> Any:
        """A pub/sub connection on the node owning ``channel``, subscribed and confirmed."""
        pubsub = self._client(self.node_of(channel)).pubsub()
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                await pubsub.ssubscribe(channel)
                while True:
                    reply = await pubsub.get_message(timeout=COMMAND_TIMEOUT_SECONDS)
                    if reply is not None and reply.get("type") in (b"ssubscribe", "ssubscribe"):
                        return pubsub
        except BaseException:
            with contextlib.suppress(*REDIS_ERRORS):
                await pubsub.aclose()
            raise

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            with contextlib.suppress(*REDIS_ERRORS):
                await client.aclose()
