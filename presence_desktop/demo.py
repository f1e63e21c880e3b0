"""The demo: a real presence server and simulated friends, all in this process.

``presence-desktop --demo`` must show a populated popup and a notification
within seconds, with no server, account or configuration. So the demo starts
an embedded ``presence_server`` on a free loopback port (SQLite in a work
directory, development login), makes six friends for the demo user, and runs
them as real protocol clients (``PresenceClient``, the same code the app uses)
on the running loop. A script then moves them around gently, forever.

Friendships are made before the app signs in — each friend sends a request and
a short-lived second device of the demo user accepts it (and signs out) — so
the first snapshot already lists everyone. The demo user also has two other
devices signed in ("work-desktop", "old-laptop"), so Settings → Devices shows
something to sign out. The first notifications are a message, a
friend request from a stranger and "erin is online" within about fifteen
seconds of the app connecting. The two friends who start offline are given a
last-seen time hours in the past (the demo owns its server), so their return
is news under the flapping rule rather than a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from presence_protocol import (
    Activity,
    ActivityKind,
    FriendAccept,
    FriendRequest,
    SeenStatus,
    SetPresence,
    Status,
)
from presence_server import RunningServer, ServerConfig, start_server

from .core.api import ConnectionEvents, Link
from .core.credentials import MemoryCredentials
from .core.events import Signal
from .core.state import InboxMessage, PresenceState
from .net.client import PresenceClient

log = logging.getLogger(__name__)

DEMO_LOGIN = "mona"
"""The person trying the demo signs in as this user."""

SETUP_TIMEOUT = 20.0

STRANGER = "zoe"

OTHER_DEVICES = (("work-desktop", 12 * 86_400, 2 * 3600), ("old-laptop", 41 * 86_400, 38 * 86_400))
"""The demo user's other signed-in devices: name, signed in and last used that
many seconds ago, so Settings → Devices shows a list worth looking at."""


@dataclasses.dataclass(frozen=True, slots=True)
class Persona:
    login: str
    language: str
    project: str
    kind: ActivityKind = ActivityKind.CODING
    other_language: str = "Python"
    other_project: str = "scratch"


PERSONAS: Sequence[Persona] = (
    Persona("alice", "Rust", "ray-tracer", other_language="WGSL", other_project="shaders"),
    Persona("bob", "TypeScript", "docs-site", ActivityKind.READING, "Python", "data-pipeline"),
    Persona("carol", "Go", "api-gateway", ActivityKind.DEBUGGING, "SQL", "migrations"),
    Persona("dave", "Kotlin", "android-app", other_language="Swift", other_project="ios-app"),
    Persona("erin", "TypeScript", "web-app", other_language="CSS", other_project="design-system"),
    Persona("frank", "C++", "game-engine", other_language="Lua", other_project="modding-api"),
)

MESSAGES = (
    ("alice", "Hi! We are simulated friends. Watch the list: we code, switch projects, go away."),
    ("carol", "Found the bug. It was a missing await, as always."),
    ("bob", "Lunch in 10?"),
    ("dave", "Pushed the release branch, have a look when you can."),
)

ANSWERS = {
    "alice": "Great, see you there!",
    "bob": "Perfect, I'll grab a table.",
}
"""What a friend answers the first time the demo user writes to them (issue 17:
a conversation has two sides even in the demo)."""


async def _until(check: Callable[[], bool], *signals: Signal[Any], within: float | None) -> None:
    """Wait until ``check()`` holds, re-checking whenever one of ``signals`` fires."""
    if check():
        return
    done = asyncio.get_running_loop().create_future()

    def evaluate(_: object) -> None:
        if not done.done() and check():
            done.set_result(None)

    for signal in signals:
        signal.connect(evaluate)
    try:
        await asyncio.wait_for(done, within)
    finally:
        for signal in signals:
            signal.disconnect(evaluate)


class Bot:
    """One simulated person: a real protocol client signed in by development login."""

    def __init__(self, url: str, login: str) -> None:
        self.login = login
        self.state = PresenceState()
        self.connection = ConnectionEvents()
        self.client = PresenceClient(
            url,
            self.state,
            self.connection,
            MemoryCredentials(),
            dev_login=login,
            device="demo",
        )

    async def connect(self) -> None:
        self.client.start()
        await _until(
            lambda: self.connection.current.link is Link.ONLINE,
            self.connection.changed,
            within=SETUP_TIMEOUT,
        )

    async def disconnect(self) -> None:
        await self.client.stop()

    @property
    def user_id(self) -> int:
        assert self.state.me is not None
        return self.state.me.id

    def show(self, status: Status, activity: Activity | None = None) -> None:
        self.client.set_presence(SetPresence(status=status, activity=activity))

    def work(self, kind: ActivityKind, language: str, project: str, minutes: int) -> None:
        since = int(time.time()) - minutes * 60
        self.show(
            Status.ONLINE, Activity(kind=kind, language=language, project=project, since=since)
        )

    def friend_id(self, login: str) -> int | None:
        for friend in self.state.friends.values():
            if friend.login == login:
                return friend.user_id
        return None


class Demo:
    """A running demo; ``stop()`` ends the script, the friends and the server."""

    def __init__(self, server: RunningServer, bots: dict[str, Bot]) -> None:
        self.server = server
        self.login = DEMO_LOGIN
        self.bots = bots
        self._script: asyncio.Task[None] | None = None

    @property
    def server_url(self) -> str:
        return self.server.url

    def start_script(self) -> None:
        self._script = asyncio.get_running_loop().create_task(self._run(), name="demo-script")
        self._answered: set[str] = set()
        for login in ANSWERS:
            self.bots[login].state.message_received.connect(functools.partial(self._answer, login))

    def _answer(self, login: str, message: InboxMessage) -> None:
        if message.sender_login != DEMO_LOGIN or login in self._answered:
            return
        self._answered.add(login)
        asyncio.get_running_loop().call_later(2.0, self._answer_now, login)

    def _answer_now(self, login: str) -> None:
        bot = self.bots[login]
        to = bot.friend_id(DEMO_LOGIN)
        if to is not None and bot.client.running:
            bot.client.send_message(to, ANSWERS[login])

    async def stop(self) -> None:
        if self._script is not None:
            self._script.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._script
        for bot in self.bots.values():
            await bot.disconnect()
        await self.server.stop()

    # ---------------------------------------------------------- the script

    def _persona_bot(self, login: str) -> tuple[Persona, Bot]:
        persona = next(p for p in PERSONAS if p.login == login)
        return persona, self.bots[login]

    async def _demo_user_online(self) -> None:
        """The script plays to an audience: wait until the app has signed in."""
        watcher = self.bots["alice"]

        def online() -> bool:
            uid = watcher.friend_id(DEMO_LOGIN)
            return uid is not None and watcher.state.friends[uid].status is not SeenStatus.OFFLINE

        await _until(online, watcher.state.friend_changed, watcher.state.reset, within=None)

    async def _run(self) -> None:
        try:
            await self._demo_user_online()
            log.info("demo user is online; the script starts")
            await self._opening()
            cycle = 0
            while True:
                await self._cycle(cycle)
                cycle += 1
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the demo script stopped")

    async def _say(self, login: str, text: str) -> None:
        bot = self.bots[login]
        to = bot.friend_id(DEMO_LOGIN)
        if to is not None:
            bot.client.send_message(to, text)

    async def _opening(self) -> None:
        await asyncio.sleep(3)
        await self._say(*MESSAGES[0])
        await asyncio.sleep(3)
        stranger = self.bots[STRANGER]
        await stranger.connect()
        stranger.work(ActivityKind.CODING, "Elixir", "chat-server", 40)
        stranger.client.send(FriendRequest(login=DEMO_LOGIN))
        await asyncio.sleep(2)
        await self._say(*MESSAGES[2])
        await asyncio.sleep(2)
        persona, erin = self._persona_bot("erin")
        await erin.connect()
        erin.work(persona.kind, persona.language, persona.project, 0)
        await asyncio.sleep(6)
        persona, bob = self._persona_bot("bob")
        bob.work(ActivityKind.CODING, persona.other_language, persona.other_project, 1)
        await asyncio.sleep(6)
        persona, dave = self._persona_bot("dave")
        dave.work(persona.kind, persona.language, persona.project, 0)
        await asyncio.sleep(10)
        persona, carol = self._persona_bot("carol")
        carol.work(persona.kind, persona.language, persona.project, 25)

    async def _cycle(self, n: int) -> None:
        """One gentle round (about 80 s): moods change, someone comes or goes."""
        names = [p.login for p in PERSONAS[:4]]
        mover = names[n % len(names)]
        persona, bot = self._persona_bot(mover)
        await asyncio.sleep(20)
        bot.show(Status.AWAY)
        await asyncio.sleep(20)
        switch = n % 2 == 0
        bot.work(
            persona.kind,
            persona.other_language if switch else persona.language,
            persona.other_project if switch else persona.project,
            0,
        )
        await asyncio.sleep(20)
        if n % 3 == 1:
            await self._say(*MESSAGES[1 + (n // 3) % (len(MESSAGES) - 1)])
        # erin and frank take turns being offline for about five minutes, so
        # their return is news and shows an "is online" notification.
        if n % 4 == 3:
            for login in ("erin", "frank"):
                p, b = self._persona_bot(login)
                if b.client.running:
                    await b.disconnect()
                else:
                    await b.connect()
                    b.work(p.kind, p.language, p.project, 0)
        await asyncio.sleep(20)


async def start_demo(workdir: Path) -> Demo:
    """Start the server and the friends; returns once the friendships exist.

    The app then signs in with ``Demo.login`` (development login) at
    ``Demo.server_url``; the script begins when it comes online.
    """
    os.makedirs(workdir, exist_ok=True)  # instant; no need for a thread
    server = await start_server(
        ServerConfig(
            host="127.0.0.1",
            port=0,
            database_url=f"sqlite+aiosqlite:///{workdir / 'demo.sqlite'}",
            dev_login=True,
            trusted_proxies=("none",),  # the demo's clients connect directly
        )
    )
    bots = {p.login: Bot(server.url, p.login) for p in PERSONAS}
    bots[STRANGER] = Bot(server.url, STRANGER)
    demo = Demo(server, bots)
    me = Bot(server.url, DEMO_LOGIN)
    try:
        await me.connect()
        await _befriend_all(me, [bots[p.login] for p in PERSONAS])
        await _set_the_scene(bots)
        await _backdate_absent_friends(server, me, [bots["erin"], bots["frank"]])
        await _seed_other_devices(server, me.user_id)
        await me.client.sign_out()  # the set-up device is no device of the person's
    except BaseException:
        await demo.stop()
        raise
    finally:
        await me.disconnect()
    demo.start_script()
    return demo


async def _befriend_all(me: Bot, friends: list[Bot]) -> None:
    """Each friend asks; a set-up device of the demo user accepts (idempotent)."""
    for bot in friends:
        await bot.connect()
        if bot.friend_id(DEMO_LOGIN) is None:
            bot.client.send(FriendRequest(login=DEMO_LOGIN))
    wanted = {bot.user_id for bot in friends}

    def accept_new(_: object = None) -> None:
        for uid in set(me.state.incoming) & wanted:
            if uid not in accepted:
                accepted.add(uid)
                me.client.send(FriendAccept(user_id=uid))

    accepted: set[int] = set()
    me.state.requests_changed.connect(accept_new)
    accept_new()
    await _until(
        lambda: wanted <= set(me.state.friends),
        me.state.friend_added,
        me.state.reset,
        within=SETUP_TIMEOUT,
    )
    me.state.requests_changed.disconnect(accept_new)
    for bot in friends:
        await _until(
            _knows_demo_user(bot), bot.state.friend_added, bot.state.reset, within=SETUP_TIMEOUT
        )


async def _backdate_absent_friends(server: RunningServer, me: Bot, absent: list[Bot]) -> None:
    """Make friends who start offline look long gone, so their return is news.

    Waits until the server has stamped their disconnect (the set-up device sees
    them offline), then overwrites that stamp with a time hours ago.
    """
    ids = [bot.user_id for bot in absent]
    await _until(
        lambda: all(me.state.friends[uid].status is SeenStatus.OFFLINE for uid in ids),
        me.state.friend_changed,
        within=SETUP_TIMEOUT,
    )
    now = int(time.time())
    for hours, uid in zip((3, 26), ids, strict=False):
        await server.hub.store.set_last_seen([uid], now - hours * 3600)


async def _seed_other_devices(server: RunningServer, user_id: int) -> None:
    """Sessions of the demo user on other devices, each once however often the demo
    starts in one directory; their times are set as if they had been used."""
    store = server.hub.store
    live = {row.device for row in await store.list_sessions_page(user_id, None, 100)}
    now = int(time.time())
    for name, signed_in, used in OTHER_DEVICES:
        if name not in live:
            _session_id, token = await store.create_session(user_id, name, now - signed_in)
            await store.resume_session(token, now - used)  # records that use


def _knows_demo_user(bot: Bot) -> Callable[[], bool]:
    return lambda: bot.friend_id(DEMO_LOGIN) is not None


async def _set_the_scene(bots: dict[str, Bot]) -> None:
    """Who is doing what when the app first looks."""
    for login, minutes in (("alice", 12), ("bob", 47)):
        persona, bot = next(p for p in PERSONAS if p.login == login), bots[login]
        bot.work(persona.kind, persona.language, persona.project, minutes)
    since = int(time.time()) - 5 * 60
    bots["carol"].show(
        Status.DND,
        Activity(kind=ActivityKind.DEBUGGING, language="Go", project="api-gateway", since=since),
    )
    bots["dave"].show(Status.AWAY)
    for login in ("erin", "frank"):
        await bots[login].disconnect()
