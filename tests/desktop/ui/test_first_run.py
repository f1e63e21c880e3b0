"""First run without the demo: the popup asks for the server, checks how one
signs in there, and a loopback server with a development login is usable
from the app; a server without GitHub never offers "Sign in with GitHub"."""

from __future__ import annotations

import asyncio
from pathlib import Path

from presence_desktop.controller import Controller
from presence_desktop.core.api import ConnectionEvents, Link
from presence_desktop.core.credentials import MemoryCredentials
from presence_desktop.core.settings import SettingsStore
from presence_desktop.core.state import PresenceState
from presence_desktop.net.probe import ProbeError, offer_from_hello, probe_server
from presence_desktop.ui.app import DesktopUi
from presence_desktop.ui.notifications import LogBackend
from presence_protocol import GitHubConfig, Hello, LoginMethod
from tests.desktop.net.helpers import fast_backoff, until

from .realapps import start_server

HANG_GUARD = 30.0


def test_dev_login_is_offered_only_on_loopback() -> None:
    hello = Hello(login_methods=[LoginMethod.SESSION, LoginMethod.DEV])
    assert offer_from_hello("ws://127.0.0.1:8765", hello).dev_login
    assert not offer_from_hello("wss://presence.example.org", hello).dev_login
    assert not offer_from_hello("wss://presence.example.org", hello).usable


def test_github_needs_the_method_and_the_app_config() -> None:
    config = GitHubConfig(client_id="abc")
    with_github = Hello(login_methods=[LoginMethod.GITHUB_CODE], github=config)
    assert offer_from_hello("wss://p.example.org", with_github).github
    assert not offer_from_hello(
        "wss://p.example.org", Hello(login_methods=[LoginMethod.GITHUB_CODE])
    ).github


async def test_probe_reads_the_real_servers_hello(tmp_path: Path) -> None:
    server = await start_server(tmp_path / "server")
    try:
        offer = await probe_server(f"ws://127.0.0.1:{server.port}")
        assert offer.dev_login and not offer.github
    finally:
        await server.stop()


async def test_probe_of_nothing_says_it_cannot_reach() -> None:
    try:
        await probe_server("ws://127.0.0.1:9")
    except ProbeError as exc:
        assert "Can't reach ws://127.0.0.1:9" in str(exc)
    else:
        raise AssertionError("a closed port was probed without an error")


async def test_first_run_to_signed_in_with_a_loopback_dev_server(
    tmp_path: Path, app_stays_open: None
) -> None:
    server = await start_server(tmp_path / "server")
    settings = SettingsStore(tmp_path / "config", tmp_path / "state")
    state, connection = PresenceState(), ConnectionEvents()
    controller = Controller(
        state=state,
        connection=connection,
        settings=settings,
        credentials=MemoryCredentials(),
        credentials_for=lambda _url: MemoryCredentials(),
        device="test",
        backoff=fast_backoff,
    )
    ui = DesktopUi(
        controller,
        controller,
        cache_dir=tmp_path / "cache",
        settings=settings,
        tray_available=False,
        backends=[LogBackend()],
    )
    try:
        ui.start()
        await controller.start()
        panel = ui.panel
        first_run = panel.first_run
        assert first_run is not None
        assert panel.page == "signed_out"
        assert first_run.step == "server"
        assert panel.status_button.text() == "Signed out"
        assert panel.sign_in_button.isHidden()  # no GitHub button before a server is known

        # A bad address: plain words, and the text stays for correcting.
        first_run.address.setText("ftp://nowhere")
        first_run.continue_button.click()
        await until(lambda: first_run.error.isVisible(), controller.server_check_failed)
        assert "wss://" in first_run.error.text()
        assert first_run.address.text() == "ftp://nowhere"

        first_run.address.setText(f"ws://127.0.0.1:{server.port}")
        first_run.continue_button.click()
        await until(lambda: first_run.step == "methods", controller.server_checked)
        assert first_run.dev_box.isVisibleTo(first_run)
        assert not first_run.github_button.isVisibleTo(first_run)  # this server has no GitHub

        first_run.dev_login.setText("alice")
        first_run.dev_button.click()
        await asyncio.wait_for(
            until(lambda: connection.current.link is Link.ONLINE, connection.changed),
            HANG_GUARD,
        )
        assert state.me is not None and state.me.login == "alice"
        assert settings.settings.server_url == f"ws://127.0.0.1:{server.port}"
        assert panel.page == "friends"
    finally:
        await ui.aclose()
        await controller.stop()
        await server.stop()


async def test_the_popup_opens_with_the_address_field_focused(
    tmp_path: Path, app_stays_open: None
) -> None:
    settings = SettingsStore(tmp_path / "config", tmp_path / "state")
    state, connection = PresenceState(), ConnectionEvents()
    controller = Controller(
        state=state,
        connection=connection,
        settings=settings,
        credentials=MemoryCredentials(),
        device="test",
        backoff=fast_backoff,
    )
    ui = DesktopUi(
        controller,
        controller,
        cache_dir=tmp_path / "cache",
        settings=settings,
        tray_available=True,
        backends=[LogBackend()],
    )
    try:
        await controller.start()
        ui.open_friends()  # the popup, built now, on its first-run page
        popup = ui.popup
        assert popup is not None
        first_run = ui.panel.first_run
        assert first_run is not None
        # The window's focus (what typing reaches once it is active) is the address.
        assert popup.focusWidget() is first_run.address
    finally:
        await ui.aclose()
        await controller.stop()
