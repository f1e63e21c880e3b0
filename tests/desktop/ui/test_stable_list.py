"""The list holds still: activity never reorders it, a row moves only when its
status or star changes, never while the pointer is over the list; starred
friends come first; empty sections are not shown."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt

from presence_desktop.core.format import activity_line
from presence_desktop.core.state import PresenceState
from presence_desktop.ui.friends_model import FriendsModel, Role
from presence_protocol import Activity, Relation, RelationUpdate, SeenStatus, User

from .fakes import NOW, friend, presence, snapshot
from .test_friends_model import Recorder, rows

UIDS = list(range(2, 12))


def _state() -> PresenceState:
    state = PresenceState()
    state.apply_snapshot(
        snapshot(*(friend(uid, f"user{uid:02}", SeenStatus.ONLINE, since=NOW) for uid in UIDS))
    )
    return state


def test_activity_changes_never_reorder_rows() -> None:
    state = _state()
    model = FriendsModel(state, activity_line, clock=lambda: NOW)
    before = rows(model)
    rec = Recorder(model)
    for i, uid in enumerate(reversed(UIDS)):
        state.apply_presence(
            presence(uid, SeenStatus.ONLINE, activity=Activity(language="Go", since=NOW - i))
        )
    assert rows(model) == before
    assert set(rec.kinds()) == {"changed"}


def test_starred_friends_are_pinned_first_and_starring_moves_at_once() -> None:
    state = _state()
    starred: set[int] = {9}
    model = FriendsModel(state, activity_line, is_starred=starred.__contains__, clock=lambda: NOW)
    assert rows(model)[:3] == ["[Online 10]", "user09", "user02"]
    assert model.index(1).data(Role.STARRED) is True
    starred.add(5)
    model.hold(True)  # starring is the user's own act: it moves even under the pointer
    model.refresh(5)
    assert rows(model)[:4] == ["[Online 10]", "user05", "user09", "user02"]


def test_empty_sections_have_no_header_and_appear_with_their_first_friend(
    qtmodeltester: Any,
) -> None:
    state = _state()
    model = FriendsModel(state, activity_line, clock=lambda: NOW)
    qtmodeltester.check(model)
    assert [r for r in rows(model) if r.startswith("[")] == ["[Online 10]"]
    rec = Recorder(model)
    state.apply_presence(presence(4, SeenStatus.AWAY))
    assert rows(model)[-2:] == ["[Away 1]", "user04"]
    assert ("inserted", 10, 11) in rec.events  # header and row together
    state.apply_presence(presence(4, SeenStatus.ONLINE))
    assert "[Away 1]" not in rows(model)
    assert ("removed", 10, 11) in rec.events
    state.apply_relation(RelationUpdate(user=User(id=99, login="zz"), relation=Relation.FRIEND))
    assert rows(model)[-2:] == ["[Offline 1]", "zz"]


def test_no_move_under_the_pointer_until_it_leaves() -> None:
    state = _state()
    model = FriendsModel(state, activity_line, clock=lambda: NOW)
    model.hold(True)
    before = rows(model)
    rec = Recorder(model)
    state.apply_presence(presence(2, SeenStatus.OFFLINE, last_seen=NOW))
    assert rows(model) == before  # still in place…
    assert set(rec.kinds()) == {"changed"}
    row = model.row_of(2)
    assert row is not None
    assert model.index(row).data(Role.FRIEND).status is SeenStatus.OFFLINE  # …but says offline
    model.hold(False)
    assert rows(model)[-2:] == ["[Offline 1]", "user02"]


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("presence"), st.sampled_from(UIDS), st.sampled_from(list(SeenStatus))),
        st.tuples(st.just("activity"), st.sampled_from(UIDS), st.integers(0, 5000)),
        st.tuples(st.just("star"), st.sampled_from(UIDS), st.booleans()),
        st.tuples(st.just("hold"), st.booleans(), st.none()),
        st.tuples(st.just("add"), st.integers(20, 25), st.none()),
        st.tuples(st.just("remove"), st.sampled_from([*UIDS, 20, 21]), st.none()),
    ),
    max_size=40,
)


@settings(max_examples=120, deadline=None)
@given(OPS)
def test_random_sequences_keep_the_rules(ops: list[tuple[str, Any, Any]]) -> None:
    state = _state()
    starred: set[int] = set()
    model = FriendsModel(state, activity_line, is_starred=starred.__contains__, clock=lambda: NOW)
    moved: list[int] = []
    model.rowsMoved.connect(lambda *_a: moved.append(1))
    for op, a, b in ops:
        # Which friend is on which row, before the operation.
        before = {
            QPersistentModelIndex(model.index(r)): model.index(r).data(Role.USER_ID)
            for r in range(model.rowCount())
        }
        moves = len(moved)
        status_before = {uid: f.status for uid, f in state.friends.items()}
        if op == "presence":
            state.apply_presence(presence(a, b, last_seen=NOW))
        elif op == "activity":
            current = state.friends.get(a)
            if current is not None:
                state.apply_presence(
                    presence(a, current.status, activity=Activity(language="Go", since=NOW - b))
                )
        elif op == "star":
            (starred.add if b else starred.discard)(a)
            model.refresh(a)
        elif op == "hold":
            model.hold(a)
        elif op == "add":
            state.apply_relation(
                RelationUpdate(user=User(id=a, login=f"new{a}"), relation=Relation.FRIEND)
            )
        elif op == "remove":
            state.apply_relation(
                RelationUpdate(user=User(id=a, login=f"x{a}"), relation=Relation.NONE)
            )
        # Persistent indexes still point at the same friend (Qt was told of every change).
        for pidx, uid in before.items():
            if pidx.isValid():
                assert pidx.data(Role.USER_ID) == uid
        if op == "activity" or (op == "presence" and status_before.get(a) == b):
            assert len(moved) == moves  # activity alone never moves a row
        if model.held and op in ("presence", "activity"):
            assert len(moved) == moves  # nothing moves under the pointer
    model.hold(False)
    fresh = FriendsModel(state, activity_line, is_starred=starred.__contains__, clock=lambda: NOW)
    assert rows(model) == rows(fresh)
    # No empty section shows; starred first within each section.
    assert all(not r.endswith(" 0]") for r in rows(model))
    for r in range(model.rowCount()):
        idx = model.index(r)
        if idx.data(Role.KIND) == "header":
            continue
        nxt = model.index(r + 1)
        if nxt.isValid() and nxt.data(Role.KIND) == "friend":
            assert idx.data(Role.STARRED) >= nxt.data(Role.STARRED)
    assert model.rowCount(model.index(0)) == 0
    assert model.data(QModelIndex(), Qt.ItemDataRole.DisplayRole) is None


def test_the_panel_holds_rows_while_the_pointer_is_over_the_list(qtbot: Any, tmp_path: Any) -> None:
    from PySide6.QtCore import QEvent, QPointF
    from PySide6.QtGui import QEnterEvent
    from PySide6.QtWidgets import QApplication

    from presence_desktop.ui.avatars import AvatarStore
    from presence_desktop.ui.delegate import FriendDelegate
    from presence_desktop.ui.panel import FriendsPanel

    from .fakes import FakeCore

    core = FakeCore()
    core.state.apply_snapshot(
        snapshot(*(friend(uid, f"user{uid:02}", SeenStatus.ONLINE) for uid in UIDS))
    )
    core.go_online()
    model = FriendsModel(core.state, activity_line)
    panel = FriendsPanel(
        core.state, core.connection, core.actions, model, FriendDelegate(AvatarStore(tmp_path))
    )
    qtbot.addWidget(panel)
    panel.show()
    viewport = panel.view.viewport()
    QApplication.sendEvent(viewport, QEnterEvent(QPointF(5, 5), QPointF(5, 5), QPointF(5, 5)))
    before = rows(model)
    core.state.apply_presence(presence(2, SeenStatus.AWAY))
    assert rows(model) == before
    QApplication.sendEvent(viewport, QEvent(QEvent.Type.Leave))
    assert rows(model)[-2:] == ["[Away 1]", "user02"]
