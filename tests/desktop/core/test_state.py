from presence_desktop.core.state import InboxMessage, PresenceChange, PresenceState
from presence_protocol import (
    Activity,
    Friend,
    Message,
    Presence,
    PresenceUpdate,
    Relation,
    RelationUpdate,
    SeenStatus,
    Snapshot,
    Status,
    User,
)

ME = User(id=1, login="me")


def friend(uid: int, login: str, status: SeenStatus, **kw: object) -> Friend:
    return Friend(user=User(id=uid, login=login), presence=Presence(status=status, **kw))  # type: ignore[arg-type]


def recorder(state: PresenceState) -> list[tuple[str, object]]:
    events: list[tuple[str, object]] = []
    for name in (
        "reset",
        "friend_changed",
        "friend_added",
        "friend_removed",
        "presence_changed",
        "requests_changed",
        "message_received",
        "my_status_changed",
    ):
        getattr(state, name).connect(lambda v, n=name: events.append((n, v)))
    return events


def test_snapshot_fills_the_state_and_marks_its_changes_as_initial() -> None:
    state = PresenceState()
    events = recorder(state)
    state.apply_snapshot(
        Snapshot(
            me=ME,
            friends=[friend(2, "alice", SeenStatus.ONLINE), friend(3, "bob", SeenStatus.OFFLINE)],
            incoming=[User(id=4, login="carol")],
            outgoing=[User(id=5, login="dave")],
        )
    )
    assert state.me == ME
    assert set(state.friends) == {2, 3}
    assert set(state.incoming) == {4} and set(state.outgoing) == {5}
    assert state.online_count() == 1
    changes = [v for n, v in events if n == "presence_changed"]
    assert len(changes) == 1
    assert isinstance(changes[0], PresenceChange) and changes[0].initial
    assert events[0] == ("reset", None)


def test_snapshot_keeps_my_chosen_status() -> None:
    state = PresenceState()
    state.set_my_status(Status.DND, 5000)
    state.apply_snapshot(Snapshot(me=ME, status=Status.ONLINE))
    assert (state.my_status, state.my_status_until) == (Status.DND, 5000)


def test_my_status_changes_are_announced_once() -> None:
    state = PresenceState()
    events = recorder(state)
    state.set_my_status(Status.AWAY, 100)
    state.set_my_status(Status.AWAY, 100)
    state.set_my_status(Status.AWAY, None)
    assert [v for n, v in events if n == "my_status_changed"] == [Status.AWAY, Status.AWAY]


def test_presence_delta_updates_one_friend_and_reports_the_transition() -> None:
    state = PresenceState()
    state.apply_snapshot(Snapshot(me=ME, friends=[friend(2, "alice", SeenStatus.OFFLINE)]))
    events = recorder(state)
    act = Activity(language="Rust")
    state.apply_presence(PresenceUpdate(user_id=2, status=SeenStatus.ONLINE, activity=act))
    state.apply_presence(PresenceUpdate(user_id=2, status=SeenStatus.ONLINE, activity=None))
    state.apply_presence(PresenceUpdate(user_id=99, status=SeenStatus.ONLINE))  # not a friend
    assert [n for n, _ in events] == ["friend_changed", "presence_changed", "friend_changed"]
    change = events[1][1]
    assert isinstance(change, PresenceChange)
    assert (change.before, change.after, change.initial) == (
        SeenStatus.OFFLINE,
        SeenStatus.ONLINE,
        False,
    )
    assert state.friends[2].activity is None


def test_sorting_by_status_then_recent_activity_then_name() -> None:
    state = PresenceState()
    state.apply_snapshot(
        Snapshot(
            me=ME,
            friends=[
                friend(2, "zed", SeenStatus.OFFLINE, last_seen=100),
                friend(3, "yan", SeenStatus.OFFLINE, last_seen=900),
                friend(4, "xia", SeenStatus.AWAY),
                friend(5, "bea", SeenStatus.ONLINE, activity=Activity(since=10)),
                friend(6, "ann", SeenStatus.ONLINE, activity=Activity(since=500)),
                friend(7, "cat", SeenStatus.DND),
            ],
        )
    )
    assert [f.login for f in state.sorted_friends()] == ["ann", "bea", "cat", "xia", "yan", "zed"]


def test_relations_move_users_between_lists() -> None:
    state = PresenceState()
    state.apply_snapshot(Snapshot(me=ME, friends=[friend(2, "alice", SeenStatus.ONLINE)]))
    events = recorder(state)
    bob = User(id=3, login="bob")
    state.apply_relation(RelationUpdate(user=bob, relation=Relation.INCOMING))
    assert 3 in state.incoming
    state.apply_relation(
        RelationUpdate(
            user=bob, relation=Relation.FRIEND, presence=Presence(status=SeenStatus.AWAY)
        )
    )
    assert 3 not in state.incoming and state.friends[3].status is SeenStatus.AWAY
    state.apply_relation(RelationUpdate(user=User(id=2, login="alice"), relation=Relation.BLOCKED))
    assert 2 not in state.friends and 2 in state.blocked
    state.apply_relation(RelationUpdate(user=User(id=2, login="alice"), relation=Relation.NONE))
    assert 2 not in state.blocked
    names = [n for n, _ in events]
    assert names.count("friend_added") == 1 and names.count("friend_removed") == 1


def test_messages_are_deduplicated_by_id_and_read_state_tracked() -> None:
    state = PresenceState()
    state.apply_snapshot(Snapshot(me=ME, friends=[friend(2, "alice", SeenStatus.ONLINE)]))
    msg = Message(seq=1, message_id="m1", sender=2, text="hi", sent_at=5)
    first = state.add_message(msg)
    assert first is not None and first.sender_login == "alice"
    assert state.add_message(msg) is None
    assert state.unread_count() == 1
    state.mark_read()
    assert state.unread_count() == 0


def test_a_reused_message_id_is_still_a_new_message() -> None:
    """An older server gave a deleted message's id to the next one (issue 14):
    a new seq, or another sender, is a new message, never a silent duplicate."""
    state = PresenceState()
    state.load_inbox([InboxMessage("2", 1, 3, "dave", "from dave", 5)])
    reused = state.add_message(Message(seq=2, message_id="2", sender=4, text="erin", sent_at=6))
    assert reused is not None and reused.text == "erin"
    again = state.add_message(Message(seq=3, message_id="2", sender=3, text="dave", sent_at=7))
    assert again is not None
    assert [m.text for m in state.inbox] == ["from dave", "erin", "dave"]
    replay = Message(seq=2, message_id="2", sender=4, text="erin", sent_at=6)
    assert state.add_message(replay) is None


def test_a_restored_inbox_counts_as_seen_without_announcing() -> None:
    state = PresenceState()
    events = recorder(state)
    cached = InboxMessage("m1", 1, 2, "alice", "hi", 5, read=False)
    state.load_inbox([cached])
    assert state.unread_count() == 1
    assert (
        state.add_message(Message(seq=1, message_id="m1", sender=2, text="hi", sent_at=5)) is None
    )
    assert [n for n, _ in events if n == "message_received"] == []


def test_clear_forgets_everything() -> None:
    state = PresenceState()
    state.apply_snapshot(Snapshot(me=ME, friends=[friend(2, "alice", SeenStatus.ONLINE)]))
    state.add_message(Message(seq=1, message_id="m1", sender=2, text="hi", sent_at=5))
    state.clear()
    assert state.me is None and state.friends == {} and state.inbox == []
    assert state.add_message(Message(seq=1, message_id="m1", sender=2, text="hi", sent_at=5))
