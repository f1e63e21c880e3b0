"""The friends list model: sections, sorting, search, and one-row updates."""

from __future__ import annotations

import random
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt

from presence_desktop.core.format import activity_line
from presence_desktop.core.state import PresenceState
from presence_desktop.ui.friends_model import FriendsModel, Role
from presence_desktop.ui.present import Section, section_of
from presence_protocol import Activity, Relation, RelationUpdate, SeenStatus, User

from .fakes import NOW, friend, presence, snapshot


class Recorder:
    """Every structural signal a model emits, in order."""

    def __init__(self, model: FriendsModel) -> None:
        self.events: list[tuple[Any, ...]] = []
        model.modelReset.connect(lambda: self.events.append(("reset",)))
        model.dataChanged.connect(
            lambda a, b, _roles=(): self.events.append(("changed", a.row(), b.row()))
        )
        model.rowsMoved.connect(lambda _p, s, e, _d, dest: self.events.append(("moved", s, dest)))
        model.rowsInserted.connect(lambda _p, s, e: self.events.append(("inserted", s, e)))
        model.rowsRemoved.connect(lambda _p, s, e: self.events.append(("removed", s, e)))

    def kinds(self) -> list[str]:
        return [e[0] for e in self.events]


def rows(model: FriendsModel) -> list[str]:
    out = []
    for r in range(model.rowCount()):
        idx = model.index(r)
        if idx.data(Role.KIND) == "header":
            out.append(f"[{idx.data(Qt.ItemDataRole.DisplayRole)} {idx.data(Role.COUNT)}]")
        else:
            out.append(idx.data(Role.FRIEND).login)
    return out


def make_state() -> PresenceState:
    state = PresenceState()
    state.apply_snapshot(
        snapshot(
            friend(2, "alice", language="Rust", project="tokio", since=NOW - 100),
            friend(3, "bob", SeenStatus.AWAY, language="Python", since=NOW - 50),
            friend(4, "carol", SeenStatus.DND, language="Go", since=NOW - 10),
            friend(5, "dave", SeenStatus.OFFLINE, last_seen=NOW - 3600),
            friend(6, "erin", SeenStatus.OFFLINE, last_seen=NOW - 60),
            friend(7, "frank", language="Rust", project="serde", since=NOW - 5),
        )
    )
    return state


def model_for(state: PresenceState) -> FriendsModel:
    return FriendsModel(state, activity_line, clock=lambda: NOW)


def test_sections_with_counts_sorted_by_status_then_login(qtmodeltester: Any) -> None:
    model = model_for(make_state())
    qtmodeltester.check(model)
    assert rows(model) == [
        "[Online 3]",
        "alice",  # online, by login: activity never decides the order
        "frank",
        "carol",  # do not disturb after online
        "[Away 1]",
        "bob",
        "[Offline 2]",
        "dave",
        "erin",
    ]
    assert model.index(1).data(Role.ACTIVITY) == "Coding · Rust · tokio · 1 min"
    assert model.index(7).data(Role.ACTIVITY) == "Last seen 1 h ago"
    assert not model.flags(model.index(0)) & Qt.ItemFlag.ItemIsSelectable
    assert model.flags(model.index(1)) & Qt.ItemFlag.ItemIsSelectable


def test_search_filters_by_login_name_or_activity_and_updates_counts() -> None:
    model = model_for(make_state())
    model.set_query("rust")
    assert rows(model) == ["[Online 2]", "alice", "frank"]  # empty sections have no header
    model.set_query("serde")
    assert rows(model) == ["[Online 1]", "frank"]
    model.set_query("nobody")
    assert model.rowCount() == 0
    model.set_query("")
    assert model.rowCount() == len(Section) + 6


def test_activity_change_in_place_updates_exactly_one_row() -> None:
    state = make_state()
    model = model_for(state)
    rec = Recorder(model)
    # alice changes project but keeps her place (her `since` is unchanged).
    state.apply_presence(
        presence(
            2, SeenStatus.ONLINE, activity=Activity(language="Rust", project="mio", since=NOW - 100)
        )
    )
    assert rec.events == [("changed", 1, 1)]
    assert model.index(1).data(Role.ACTIVITY) == "Coding · Rust · mio · 1 min"


def test_going_offline_moves_one_row_and_refreshes_both_headers() -> None:
    state = make_state()
    model = model_for(state)
    rec = Recorder(model)
    state.apply_presence(presence(2, SeenStatus.OFFLINE, last_seen=NOW))
    assert "reset" not in rec.kinds()
    assert rec.kinds().count("moved") == 1
    assert rows(model) == [
        "[Online 2]",
        "frank",
        "carol",
        "[Away 1]",
        "bob",
        "[Offline 3]",
        "alice",
        "dave",
        "erin",
    ]
    changed_rows = {e[1] for e in rec.events if e[0] == "changed"}
    # The Online and Offline headers (counts changed) and the moved row;
    # the Away header only shifted, it needs no repaint of its own.
    assert changed_rows == {0, 5, 6}
    assert model.index(5).data(Role.COUNT) == 3


def test_friend_added_and_removed_insert_and_remove_one_row() -> None:
    state = make_state()
    model = model_for(state)
    rec = Recorder(model)
    state.apply_relation(RelationUpdate(user=User(id=9, login="zed"), relation=Relation.FRIEND))
    assert rec.kinds()[0] == "inserted"
    assert rows(model)[-1] == "zed"
    rec.events.clear()
    state.apply_relation(RelationUpdate(user=User(id=3, login="bob"), relation=Relation.NONE))
    assert rec.kinds()[0] == "removed"
    assert "bob" not in rows(model)
    assert "reset" not in rec.kinds()


def test_delta_that_stops_matching_the_search_removes_the_row() -> None:
    state = make_state()
    model = model_for(state)
    model.set_query("tokio")
    assert rows(model) == ["[Online 1]", "alice"]
    state.apply_presence(
        presence(2, SeenStatus.ONLINE, activity=Activity(project="other", since=NOW - 100))
    )
    assert rows(model) == []


def test_snapshot_resets_the_model() -> None:
    state = make_state()
    model = model_for(state)
    rec = Recorder(model)
    state.apply_snapshot(snapshot(friend(2, "alice")))
    assert rec.kinds() == ["reset"]
    assert rows(model) == ["[Online 1]", "alice"]


@pytest.mark.parametrize(
    "seed",
    # One seed in the default tier; the model tester makes each run seconds long.
    [1, pytest.param(2, marks=pytest.mark.slow), pytest.param(3, marks=pytest.mark.slow)],
)
def test_random_deltas_keep_the_model_identical_to_a_fresh_sort(
    seed: int, qtmodeltester: Any
) -> None:
    rng = random.Random(seed)
    statuses = list(SeenStatus)
    state = PresenceState()
    state.apply_snapshot(
        snapshot(
            *(
                friend(
                    i,
                    f"user{i}",
                    rng.choice(statuses),
                    language=rng.choice(["Rust", "Python", None]),
                    since=NOW - rng.randrange(1, 5000),
                    last_seen=NOW - rng.randrange(1, 50000),
                )
                for i in range(2, 202)
            )
        )
    )
    model = model_for(state)
    qtmodeltester.check(model)
    resets: list[int] = []
    model.modelReset.connect(lambda: resets.append(1))
    for _ in range(500):
        uid = rng.randrange(2, 202)
        state.apply_presence(
            presence(
                uid,
                rng.choice(statuses),
                activity=Activity(language="Go", since=NOW - rng.randrange(1, 5000))
                if rng.random() < 0.7
                else None,
                last_seen=NOW - rng.randrange(1, 50000),
            )
        )
    assert resets == []
    fresh = model_for(state)
    assert rows(model) == rows(fresh)
    expected_order = [f.login for f in state.sorted_friends()]
    by_section = sorted(
        state.friends.values(), key=lambda f: (section_of(f.status), model.key_of(f))
    )
    assert [r for r in rows(model) if not r.startswith("[")] == [f.login for f in by_section]
    assert sorted(expected_order) == sorted(f.login for f in by_section)
    assert model.rowCount(model.index(0)) == 0
    assert model.data(QModelIndex()) is None
