"""The two-way bridge (version 2): friends, status and unread out; commands in.

Real ``EditorBridge`` on a real local socket, a real ``PresenceState`` fed
with protocol messages, and fake editors speaking JSON lines. The actions
are recorded (they are the controller's job, tested elsewhere); the sign-in
hand-over against a real server is in ``tests/e2e/test_vscode_sign_in.py``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from presence_desktop.core import editor_view
from presence_desktop.core.activity import ActivityMerger
from presence_desktop.core.api import ConnectionEvents, ConnectionInfo, Link, UserError
from presence_desktop.core.state import InboxMessage, PresenceState
from presence_desktop.net.bridge import EditorBridge
from presence_desktop.net.editor_link import EditorLink
from presence_protocol import (
    Activity,
    Friend,
    Presence,
    PresenceUpdate,
    SeenStatus,
    Snapshot,
    Status,
    User,
)

from .editor_client import Editor

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="Unix socket tests")

ME = User(id=1, login="ada", name="Ada")
BOB = User(id=2, login="bob")
CY = User(id=3, login="cy", name="Cy")


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def set_status(self, status: Status, until: int | None) -> None:
        self.calls.append(("set_status", status, until))

    def send_message(self, user_id: int, text: str) -> None:
        self.calls.append(("send_message", user_id, text))

    def sign_in(self) -> None:
        self.calls.append(("sign_in",))


class FakeClient:
    url = "ws://127.0.0.1:9/"


class World:
    def __init__(self, bridge: EditorBridge) -> None:
        self.bridge = bridge
        self.state = PresenceState()
        self.connection = ConnectionEvents()
        self.actions = Recorder()
        self.errors: list[UserError] = []
        self.probes: list[str] = []

        async def accepts(url: str) -> bool:
            self.probes.append(url)
            return True

        self.link = EditorLink(
            bridge,
            self.state,
            self.connection,
            self.actions,
            lambda: FakeClient(),  # type: ignore[arg-type, return-value]
            accepts_editor=accepts,
            clock=lambda: 1_000.0,
        )
        self.link.errors.connect(self.errors.append)

    def sign_in(self) -> None:
        self.connection.set(ConnectionInfo(Link.ONLINE))
        self.state.apply_snapshot(
            Snapshot(
                me=ME,
                friends=[
                    Friend(
                        user=BOB,
                        presence=Presence(
                            status=SeenStatus.ONLINE,
                            activity=Activity(language="Python", project="api", since=900),
                        ),
                    ),
                    Friend(user=CY, presence=Presence(status=SeenStatus.OFFLINE, last_seen=500)),
                ],
            )
        )


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    merger = ActivityMerger(asyncio.get_running_loop())
    bridge = EditorBridge(merger, str(tmp_path / "run" / "bridge.sock"))
    bridge.start()
    w = World(bridge)
    yield w
    await w.link.aclose()
    bridge.close()


async def connect_v2(bridge: EditorBridge) -> Editor:
    editor = await Editor.connect(bridge.address, hello=False)
    await editor.send({"type": "hello", "bridge": 2, "editor": "Visual Studio Code"})
    hello = await editor.receive()
    assert hello["type"] == "hello" and hello["bridge"] == 2
    assert "friends" in hello["features"] and "github_session" in hello["features"]
    return editor


async def next_of(editor: Editor, kind: str) -> dict[str, Any]:
    """The next line of ``kind`` (other kinds in between are skipped)."""
    while True:
        line = await editor.receive()
        if line["type"] == kind:
            return line


async def test_a_v2_editor_gets_the_popup_list_then_deltas(world: World) -> None:
    world.sign_in()
    editor = await connect_v2(world.bridge)
    friends = await next_of(editor, "friends")
    assert [f["login"] for f in friends["friends"]] == ["bob", "cy"]  # the popup's order
    bob = friends["friends"][0]
    assert bob["section"] == "online" and bob["activity"]["project"] == "api"
    assert friends["friends"][1]["section"] == "offline"
    assert friends["friends"][1]["last_seen"] == 500
    state = await next_of(editor, "state")
    assert state["signed_in"] and state["me"]["login"] == "ada"
    assert (state["online"], state["friends"], state["unread"]) == (1, 2, 0)

    world.state.apply_presence(PresenceUpdate(user_id=3, status=SeenStatus.AWAY))
    delta = await next_of(editor, "friend")
    assert delta["friend"]["login"] == "cy" and delta["friend"]["section"] == "away"
    state = await next_of(editor, "state")
    assert state["online"] == 2

    world.state.load_inbox(
        [InboxMessage("m1", 1, 2, "bob", "hi", 950), InboxMessage("m2", 2, 2, "bob", "yo", 960)]
    )
    assert (await next_of(editor, "state"))["unread"] == 2
    world.state.set_my_status(Status.DND, None)
    assert (await next_of(editor, "state"))["status"] == "dnd"


async def test_signing_out_empties_the_editors_list(world: World) -> None:
    world.sign_in()
    editor = await connect_v2(world.bridge)
    assert len((await next_of(editor, "friends"))["friends"]) == 2
    world.connection.set(ConnectionInfo(Link.SIGNED_OUT))  # the state itself is left as it was
    assert (await next_of(editor, "friends"))["friends"] == []
    state = await next_of(editor, "state")
    assert not state["signed_in"] and state["me"] is None and state["friends"] == 0


async def test_a_v1_editor_is_answered_in_v1_and_gets_no_state(world: World) -> None:
    world.sign_in()
    old = await Editor.connect(world.bridge.address)  # announces bridge 1
    new = await connect_v2(world.bridge)
    await next_of(new, "state")
    await old.send({"type": "set_status", "status": "away"})
    error = await old.receive()  # the first line it gets is this error: no friends, no state
    assert error == {
        "type": "error",
        "code": "unknown_type",
        "message": "'set_status' needs bridge version 2",
    }
    assert world.actions.calls == []


async def test_commands_do_what_the_tray_does_and_bad_ones_change_nothing(world: World) -> None:
    editor = await connect_v2(world.bridge)
    await next_of(editor, "state")
    await editor.send({"type": "set_status", "id": "a", "status": "away"})
    refused = await next_of(editor, "error")
    assert refused["code"] == "not_signed_in" and refused["id"] == "a"

    world.sign_in()
    await next_of(editor, "friends")
    await editor.send({"type": "set_status", "id": "b", "status": "away", "until": 5_000})
    assert await next_of(editor, "result") == {"type": "result", "id": "b", "ok": True}
    await editor.send({"type": "send_message", "id": "c", "to": 2, "text": "lunch?"})
    assert (await next_of(editor, "result"))["id"] == "c"
    await editor.send({"type": "send_message", "id": "d", "to": 99, "text": "who?"})
    assert (await next_of(editor, "error"))["code"] == "refused"
    await editor.send({"type": "set_status", "id": "e", "status": "away", "until": 10})
    assert (await next_of(editor, "error"))["message"] == "that time has passed"
    await editor.send({"type": "set_status", "status": "sleeping"})
    assert (await next_of(editor, "error"))["code"] == "invalid"
    await editor.send({"type": "send_message", "to": 2, "text": "x" * 501})
    assert (await next_of(editor, "error"))["code"] == "invalid"
    await editor.send({"type": "send_message", "to": 2, "text": ""})
    assert (await next_of(editor, "error"))["code"] == "invalid"
    assert world.actions.calls == [
        ("set_status", Status.AWAY, 5_000),
        ("send_message", 2, "lunch?"),
    ]
    # The connection survived all of it.
    await editor.send({"type": "sign_in", "id": "f"})
    assert (await next_of(editor, "result"))["id"] == "f"


async def test_open_popup_and_sign_in_commands(world: World) -> None:
    opened: list[None] = []
    editor = await connect_v2(world.bridge)
    await editor.send({"type": "open_popup", "id": "1"})
    assert (await next_of(editor, "error"))["code"] == "refused"  # no ui attached
    world.link.open_popup = lambda: opened.append(None)
    await editor.send({"type": "open_popup", "id": "2"})
    await next_of(editor, "result")
    await editor.send({"type": "sign_in", "id": "3"})
    await next_of(editor, "result")
    assert opened == [None] and world.actions.calls == [("sign_in",)]


async def test_the_tray_asks_the_latest_editor_for_its_session(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    offers: list[bool] = []
    world.link.offer_changed.connect(offers.append)
    assert not world.link.can_offer_editor_sign_in  # no editor yet
    editor = await connect_v2(world.bridge)
    state = await next_of(editor, "state")
    while not state["editor_sign_in"]:  # the server probe answers
        state = await next_of(editor, "state")
    assert world.link.can_offer_editor_sign_in and offers == [True]
    assert world.probes == [FakeClient.url]

    assert world.link.request_editor_sign_in()
    request = await next_of(editor, "sign_in_request")
    # A made-up request id is refused; the person cancelling in VS Code changes nothing.
    await editor.send({"type": "github_session", "request": "nope", "access_token": "gho_x"})
    assert (await next_of(editor, "error"))["code"] == "refused"
    await editor.send({"type": "github_session", "request": request["request"], "error": "no"})
    state = await next_of(editor, "state")
    while state["waiting_for_editor"]:
        state = await next_of(editor, "state")
    assert world.link.can_offer_editor_sign_in and world.errors == []
    assert "gho_x" not in caplog.text

    world.sign_in()
    state = await next_of(editor, "state")
    assert state["signed_in"] and not state["editor_sign_in"]
    assert not world.link.request_editor_sign_in()


async def test_an_unreachable_server_is_asked_once_not_in_a_loop(world: World) -> None:
    from presence_desktop.net.oauth import SignInError

    asked: list[str] = []

    async def unreachable(url: str) -> bool:
        asked.append(url)
        raise SignInError(UserError("Cannot reach the server", "down", "server_unreachable"))

    world.link._accepts_editor = unreachable
    editor = await connect_v2(world.bridge)
    state = await next_of(editor, "state")
    for _ in range(3):  # more editors and connection changes come and go
        other = await connect_v2(world.bridge)
        await next_of(other, "state")
        await other.close()
        world.connection.set(ConnectionInfo(Link.SIGNED_OUT))
    await editor.send({"type": "sign_in", "id": "x"})  # a round trip: the probe has finished
    await next_of(editor, "result")
    assert asked == [FakeClient.url]
    assert not state["editor_sign_in"] and not world.link.can_offer_editor_sign_in


async def test_many_editors_all_follow_and_leaving_ones_are_skipped(world: World) -> None:
    world.sign_in()
    editors = [await connect_v2(world.bridge) for _ in range(3)]
    for e in editors:
        await next_of(e, "state")
    await editors[0].close()
    world.state.apply_presence(PresenceUpdate(user_id=2, status=SeenStatus.OFFLINE, last_seen=990))
    for e in editors[1:]:
        line = await next_of(e, "friend")
        assert line["friend"]["section"] == "offline"


# ---------------------------------------------------------------- the delta rule

_rows = st.dictionaries(
    st.integers(1, 8),
    st.fixed_dictionaries(
        {
            "status": st.sampled_from(["online", "away", "dnd", "offline"]),
            "last_seen": st.none() | st.integers(0, 10),
            "sort": st.lists(st.integers(0, 3), min_size=1, max_size=3),
        }
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_rows, min_size=1, max_size=8))
def test_deltas_replay_to_exactly_the_new_list(versions: list[dict[int, dict[str, Any]]]) -> None:
    """Rule: a client applying every delta holds exactly the desktop's list, and
    unchanged friends are never re-sent."""
    held: dict[int, dict[str, Any]] = {}
    before: dict[int, dict[str, Any]] = {}
    for version in versions:
        rows = {uid: {"id": uid, **row} for uid, row in version.items()}
        lines = editor_view.deltas(before, rows)
        held = editor_view.apply(held, lines)
        assert held == rows
        changed = {line["friend"]["id"] for line in lines if line["type"] == "friend"}
        assert changed == {uid for uid in rows if before.get(uid) != rows[uid]}
        before = rows
    assert editor_view.apply({}, [editor_view.friends_line(before)]) == before


def test_sections_match_the_popup() -> None:
    from presence_desktop.ui.present import section_of

    for status in SeenStatus:
        assert editor_view.section_of(status) == section_of(status).name.lower()
