"""Whole desktop apps minus the ui: a Controller with its own settings directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from presence_desktop.controller import Controller
from presence_desktop.core.api import Alert, ConnectionEvents, Link, UserError
from presence_desktop.core.credentials import MemoryCredentials
from presence_desktop.core.settings import SettingsStore
from presence_desktop.core.state import PresenceState
from presence_desktop.paths import AppPaths

from ..desktop.net.helpers import fast_backoff, until


class App:
    def __init__(
        self,
        root: Path,
        url: str,
        login: str | None,
        *,
        credentials: MemoryCredentials | None = None,
        **kwargs: Any,
    ) -> None:
        self.paths = AppPaths.under(root)
        self.settings = SettingsStore(self.paths.config_dir, self.paths.state_dir)
        self.state = PresenceState()
        self.connection = ConnectionEvents()
        self.credentials = credentials or MemoryCredentials()
        kwargs.setdefault("backoff", fast_backoff)
        kwargs.setdefault("data_dir", self.paths.data_dir)
        self.controller = Controller(
            state=self.state,
            connection=self.connection,
            settings=self.settings,
            credentials=self.credentials,
            server_url=url,
            dev_login=login,
            device="test",
            **kwargs,
        )
        self.alerts: list[Alert] = []
        self.errors: list[UserError] = []
        self.controller.alerts.connect(self.alerts.append)
        self.controller.errors.connect(self.errors.append)

    async def start(self) -> None:
        await self.controller.start()
        await self.wait_online()

    async def wait_online(self) -> None:
        await until(lambda: self.connection.current.link is Link.ONLINE, self.connection.changed)

    @property
    def me(self) -> int:
        assert self.state.me is not None
        return self.state.me.id


async def befriend(a: App, b: App) -> None:
    assert b.state.me is not None
    a.controller.add_friend(b.state.me.login)
    await until(lambda: a.me in b.state.incoming, b.state.requests_changed)
    b.controller.accept_friend(a.me)
    await until(lambda: b.me in a.state.friends, a.state.friend_added)
    await until(lambda: a.me in b.state.friends, b.state.friend_added)
