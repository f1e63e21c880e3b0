"""Nothing lost, nothing twice: two desktops exchange 2,000 messages through chaos.

The real desktop core (``Controller`` with its ``PresenceClient``, settings
and runtime state on disk) talks to a real ``presence-server`` process on a
SQLite file through a proxy that delays, stalls and cuts connections. While
the messages flow, the test cuts single connections at the client's end or
the server's end, cuts all, stalls the network, aborts a client's socket
from inside the app, kill -9s the server and starts it again on the same
file and port, restarts it with SIGTERM, and quits and restarts one of the
apps (which must resend its unsent messages from disk).

At the end every message is in the recipient's inbox exactly once, in the
order it was sent; the server stored each exactly once; friendship and
presence agree on both sides.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from presence_desktop.core.api import Link
from presence_desktop.core.events import Signal
from presence_desktop.core.state import InboxMessage
from presence_protocol import Activity, Message, SeenStatus, Status
from tests.desktop.net.helpers import until
from tests.integration.apps import App, befriend
from tests.security import issued
from tests.support.processes import ServerProcess

from .proxy import ChaosProxy

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("app_log")]

PER_SENDER = 1000
SEED = int(os.environ.get("PRESENCE_CHAOS_SEED", "11"))
"""Fixed for CI; set PRESENCE_CHAOS_SEED to explore other fault sequences."""
APP_RESTARTS = 2


class Tally:
    """Every message each user's app instances reported as newly received."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[str]] = {"alice": [], "bob": []}
        self.persisted_at_restart: dict[str, set[str]] = {"alice": set(), "bob": set()}
        self.ids: dict[str, list[str]] = {"alice": [], "bob": []}
        self.absorbed: dict[str, int] = {"alice": 0, "bob": 0}
        """Frames of a message the app already had (replays after a drop), dropped by it."""

    def watch(self, login: str, app: App) -> None:
        def got(item: InboxMessage) -> None:
            self.arrivals[login].append(item.text)
            self.ids[login].append(item.message_id)

        app.state.message_received.connect(got)
        add = app.state.add_message

        def counting(msg: Message) -> InboxMessage | None:
            item = add(msg)
            if item is None:
                self.absorbed[login] += 1
            return item

        app.state.add_message = counting  # type: ignore[method-assign]


class Desktops:
    """The two apps, each restartable on its own directory."""

    def __init__(self, root: Path, url: str, tally: Tally) -> None:
        self.root = root
        self.url = url
        self.tally = tally
        self.apps: dict[str, App] = {}
        self.ids: dict[str, int] = {}
        self.restarts = 0
        self.replaced: Signal[str] = Signal()
        """A user's app was quit (it leaves ``apps``) or its successor opened."""

    async def open(self, login: str) -> App:
        app = App(self.root / login, self.url, login)
        app.controller.client.authenticated.connect(lambda ok: issued.record(ok.session))
        self.tally.watch(login, app)
        self.apps[login] = app
        await app.controller.start()
        self.replaced.emit(login)
        return app

    async def restart(self, login: str) -> None:
        # The quitting app leaves ``apps`` first: nobody types into an app
        # that is closing (what it already holds is its own to keep or lose).
        old = self.apps.pop(login)
        self.replaced.emit(login)
        await old.controller.stop()
        self.tally.persisted_at_restart[login] |= {m.message_id for m in old.settings.runtime.inbox}
        await self.open(login)
        self.restarts += 1

    async def close(self) -> None:
        for app in self.apps.values():
            await app.controller.stop()


async def send_all(
    desktops: Desktops, sender: str, to: str, rng: random.Random, per_sender: int
) -> None:
    sent = 0
    friend = desktops.ids[to]
    while sent < per_sender:
        # During an app restart, wait for the new app; after it, the friend
        # list comes back with the first snapshot.
        try:
            await until(lambda: sender in desktops.apps, desktops.replaced, within=60)
            app = desktops.apps[sender]
            await until(
                lambda a=app: friend in a.state.friends or desktops.apps.get(sender) is not a,
                app.state.friend_added,
                app.state.reset,  # a snapshot replaces the list without friend_added
                desktops.replaced,
                within=60,
            )
        except TimeoutError:
            app = desktops.apps.get(sender)
            raise AssertionError(
                f"{sender} has no friend list: "
                + (
                    f"{app.connection.current}, friends {list(app.state.friends)}, "
                    f"errors {app.errors[-3:]}"
                    if app is not None
                    else "its app never came back"
                )
            ) from None
        if desktops.apps.get(sender) is not app:
            continue
        for _ in range(min(rng.randint(1, 20), per_sender - sent)):
            app.controller.send_message(friend, f"{sender}->{to} #{sent:04d}")
            sent += 1
        # Spread the messages over about 40 s, so chaos hits them all along.
        await asyncio.sleep(rng.uniform(0.2, 0.6))


async def chaos(
    stop: asyncio.Event,
    rng: random.Random,
    proxy: ChaosProxy,
    servers: list[ServerProcess],
    desktops: Desktops,
    counts: dict[str, int],
) -> None:
    """Random faults until ``stop``; with several instances, kills hit one at a time."""
    actions = [
        ("cut one at the client", 20),
        ("cut one at the server", 15),
        ("cut all", 8),
        ("stall", 10),
        ("delay", 10),
        ("abort a client socket", 10),
        ("kill -9 and restart", 10),
        ("SIGTERM restart", 3),
        ("restart an app", 5),
    ]
    names = [a for a, _ in actions]
    weights = [w for _, w in actions]
    while not stop.is_set():
        with_timeout = rng.uniform(0.1, 0.5)
        try:
            await asyncio.wait_for(stop.wait(), with_timeout)
            return
        except TimeoutError:
            pass
        action = rng.choices(names, weights)[0]
        if action == "cut one at the client":
            proxy.cut_one("client")
        elif action == "cut one at the server":
            proxy.cut_one("server")
        elif action == "cut all":
            proxy.cut_all(rng.choice(["client", "server"]))
        elif action == "stall":
            await proxy.stall(rng.uniform(0.2, 1.5))
        elif action == "delay":
            proxy.delay = rng.choice([0.0, 0.0, 0.005, 0.02, 0.05])
            proxy.jitter = rng.choice([0.0, 0.01, 0.03])
        elif action == "abort a client socket":
            ws = desktops.apps[rng.choice(["alice", "bob"])].controller.client._ws
            if ws is not None:
                ws.transport.abort()
        elif action == "kill -9 and restart":
            server = rng.choice(servers)
            await server.kill9()
            await asyncio.sleep(rng.uniform(0.1, 1.0))  # the server stays down a while
            await server.start()
        elif action == "SIGTERM restart":
            server = rng.choice(servers)
            await server.stop()
            await server.start()
        elif action == "restart an app":
            if desktops.restarts >= APP_RESTARTS:
                continue
            await desktops.restart("bob")
        counts[action] = counts.get(action, 0) + 1


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    process = ServerProcess(tmp_path / "server", extra=("--commands-per-minute", "1000000"))
    await process.start()
    yield process
    await process.stop()


StoredCount = Callable[[], Awaitable[tuple[int, int, int]]]
"""(messages stored, distinct texts stored, friendship rows) read from the database."""


async def exchange_through_chaos(
    servers: list[ServerProcess],
    root: Path,
    per_sender: int,
    stored_counts: StoredCount,
    converge_within: float = 60.0,  # a hang guard: convergence takes about the 3 s TTL
) -> str:
    """The whole run against these instances; returns the report line."""
    rng = random.Random(SEED)
    proxy = ChaosProxy([s.port for s in servers], seed=SEED)
    await proxy.start()
    tally = Tally()
    desktops = Desktops(root / "apps", proxy.url, tally)
    # Whatever fails, the apps and the proxy are closed: a failed run must not
    # leave their sockets to the garbage collector of a later test.
    try:
        alice = await desktops.open("alice")
        bob = await desktops.open("bob")
        await alice.wait_online()
        await bob.wait_online()
        await befriend(alice, bob)
        desktops.ids = {"alice": alice.me, "bob": bob.me}

        started = time.monotonic()
        stop = asyncio.Event()
        counts: dict[str, int] = {}
        chaos_task = asyncio.ensure_future(chaos(stop, rng, proxy, servers, desktops, counts))
        try:
            await asyncio.gather(
                send_all(desktops, "alice", "bob", random.Random(1), per_sender),
                send_all(desktops, "bob", "alice", random.Random(2), per_sender),
            )
        finally:
            stop.set()
            await chaos_task
        sending = time.monotonic() - started

        # Calm returns: no delay, every connection free to come back.
        proxy.delay = proxy.jitter = 0.0
        expected = {
            "bob": [f"alice->bob #{i:04d}" for i in range(per_sender)],
            "alice": [f"bob->alice #{i:04d}" for i in range(per_sender)],
        }

        def complete() -> bool:
            return all(set(expected[u]) <= set(tally.arrivals[u]) for u in expected) and not any(
                a.controller.client.pending() for a in desktops.apps.values()
            )

        signals = [
            signal
            for app in desktops.apps.values()
            for signal in (app.state.message_received, app.controller.client.outbox_changed)
        ]
        try:
            await until(complete, *signals, within=120)
        except TimeoutError:
            missing = {u: len(set(expected[u]) - set(tally.arrivals[u])) for u in expected}
            links = {u: a.connection.current for u, a in desktops.apps.items()}
            raise AssertionError(f"not delivered: {missing}; connections {links}") from None
        drained = time.monotonic() - started

        report: dict[str, dict[str, int]] = {}
        for user, want in expected.items():
            arrivals = tally.arrivals[user]
            ids = tally.ids[user]
            first_seen: list[str] = []
            seen: set[str] = set()
            duplicates = 0
            for text, message_id in zip(arrivals, ids, strict=True):
                if text in seen:
                    duplicates += 1
                    # A repeat is only acceptable for a message the previous app instance
                    # had not yet written to disk when it quit (it was never acknowledged).
                    assert message_id not in tally.persisted_at_restart[user], text
                    continue
                seen.add(text)
                first_seen.append(text)
            assert first_seen == want, "lost or out of order"
            report[user] = {
                "sent to": len(want),
                "received": len(first_seen),
                "lost": len(set(want) - seen),
                "repeated after an app restart": duplicates,
                "duplicate frames absorbed by the app": tally.absorbed[user],
            }

        # The server stored each message exactly once; the friendship is intact.
        assert await stored_counts() == (2 * per_sender, 2 * per_sender, 2)

        # Friends and presence converge on both sides.
        alice, bob = desktops.apps["alice"], desktops.apps["bob"]
        await alice.wait_online()
        await bob.wait_online()
        alice.controller.set_status(Status.DND, None)
        bob.controller.set_activity(Activity(project="after-the-storm"))

        def converged() -> bool:
            a_sees = alice.state.friends.get(desktops.ids["bob"])
            b_sees = bob.state.friends.get(desktops.ids["alice"])
            return (
                a_sees is not None
                and b_sees is not None
                and b_sees.status is SeenStatus.DND
                and a_sees.status is SeenStatus.ONLINE
                and a_sees.activity is not None
                and a_sees.activity.project == "after-the-storm"
            )

        try:
            await until(
                converged,
                alice.state.friend_changed,
                bob.state.friend_changed,
                within=converge_within,
            )
        except TimeoutError:
            seen = {
                "alice sees bob": alice.state.friends.get(desktops.ids["bob"]),
                "bob sees alice": bob.state.friends.get(desktops.ids["alice"]),
            }
            raise AssertionError(f"presence did not converge: {seen}") from None
        assert alice.connection.current.link is Link.ONLINE
        starts = sum(s.starts for s in servers)
        return (
            f"{2 * per_sender} messages sent in {sending:.1f}s, all delivered after "
            f"{drained:.1f}s; {report}; server starts {starts}; actions {counts}; "
            f"connections cut {proxy.cuts}; seed {SEED}"
        )
    finally:
        await desktops.close()
        await proxy.close()


async def test_two_thousand_messages_through_chaos_arrive_exactly_once_in_order(
    server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = Path(server.database_url.removeprefix("sqlite+aiosqlite:///"))

    async def stored() -> tuple[int, int, int]:
        with sqlite3.connect(db) as conn:
            count, texts = conn.execute(
                "SELECT count(*), count(DISTINCT text) FROM messages"
            ).fetchone()
            friendships = conn.execute("SELECT count(*) FROM friendships").fetchone()[0]
        return count, texts, friendships

    line = await exchange_through_chaos([server], tmp_path, PER_SENDER, stored)
    with capsys.disabled():
        print(f"\nchaos (one instance, SQLite): {line}")
