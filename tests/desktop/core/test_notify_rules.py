import pytest

from presence_desktop.core.api import AlertKind
from presence_desktop.core.notify_rules import COALESCE_SECONDS, NotifyRules
from presence_desktop.core.settings import OnlineAlerts, Settings
from presence_protocol import (
    Activity,
    ActivityKind,
    Presence,
    Relation,
    RelationUpdate,
    SeenStatus,
    Snapshot,
    Status,
    User,
)

from .harness import ID, Harness

ON, OFF, AWAY, DND = SeenStatus.ONLINE, SeenStatus.OFFLINE, SeenStatus.AWAY, SeenStatus.DND
WINDOW = COALESCE_SECONDS[AlertKind.FRIEND_ONLINE]
RUST = Activity(kind=ActivityKind.CODING, language="Rust", project="engine")


def everyone_offline(h: Harness, ago: int | None = None) -> None:
    h.snapshot(**{n: (OFF, ago) if ago else OFF for n in ("alice", "bob", "carol", "dave", "erin")})


def test_the_snapshot_on_connect_announces_no_one() -> None:
    h = Harness()
    h.snapshot(alice=ON, bob=AWAY, carol=DND, dave=OFF)
    h.loop.advance(60)
    assert h.alerts == []
    assert h.timers_armed == 0


def test_a_friend_coming_online_is_announced_with_their_activity_after_the_window() -> None:
    h = Harness()
    everyone_offline(h)
    h.presence("alice", ON, RUST)
    h.loop.advance(WINDOW - 0.1)
    assert h.alerts == []
    h.loop.advance(0.1)
    [alert] = h.alerts
    assert alert.kind is AlertKind.FRIEND_ONLINE
    assert (alert.title, alert.body) == ("alice is online", "Coding · Rust · engine")
    assert alert.user_ids == (ID["alice"],)


def test_activity_arriving_inside_the_window_is_used() -> None:
    h = Harness()
    everyone_offline(h)
    h.online("alice")
    h.loop.advance(1)
    h.presence("alice", ON, RUST)
    h.loop.advance(WINDOW)
    assert h.alerts[0].body == "Coding · Rust · engine"


@pytest.mark.parametrize(
    ("logins", "starred", "title"),
    [
        (["alice", "bob"], set(), "alice and bob are online"),
        (["alice", "bob", "carol", "dave"], set(), "alice and 3 others are online"),
        (["alice", "bob", "carol", "dave"], {"dave"}, "dave and 3 others are online"),
        (["alice", "bob", "carol"], {"carol", "bob"}, "bob and 2 others are online"),
    ],
)
def test_several_at_once_coalesce_into_one_alert_starred_first(
    logins: list[str], starred: set[str], title: str
) -> None:
    h = Harness(Settings(starred=frozenset(ID[s] for s in starred)))
    everyone_offline(h)
    for i, login in enumerate(logins):
        h.online(login)
        h.loop.advance(0.5 * i / len(logins))
    h.loop.advance(WINDOW)
    [alert] = h.alerts
    assert alert.title == title
    assert len(alert.user_ids) == len(logins)
    assert {ID[s] for s in starred} == set(alert.user_ids[: len(starred)])
    assert h.timers_armed == 1  # one timer for the whole burst


def test_a_long_burst_body_names_three_and_counts_the_rest() -> None:
    h = Harness()
    everyone_offline(h)
    h.presence("alice", ON, RUST)
    h.online("bob", "carol", "dave", "erin")
    h.loop.advance(WINDOW)
    assert h.alerts[0].body.splitlines() == [
        "alice — Coding · Rust · engine",
        "bob",
        "carol",
        "and 2 more",
    ]


def test_events_after_the_window_make_a_second_alert() -> None:
    h = Harness()
    everyone_offline(h)
    h.online("alice")
    h.loop.advance(WINDOW + 1)
    h.online("bob")
    h.loop.advance(WINDOW + 1)
    assert h.titles() == ["alice is online", "bob is online"]


@pytest.mark.parametrize(
    ("offline_minutes", "flap_minutes", "announced"),
    [(2, 5, False), (4.9, 5, False), (5, 5, True), (30, 5, True), (0.1, 0, True), (20, 30, False)],
)
def test_coming_back_after_a_short_absence_is_not_news(
    offline_minutes: float, flap_minutes: int, announced: bool
) -> None:
    h = Harness(Settings(flap_minutes=flap_minutes))
    h.snapshot(alice=ON)
    h.offline("alice")
    h.loop.advance(offline_minutes * 60)
    h.online("alice")
    h.loop.advance(WINDOW)
    assert h.titles() == (["alice is online"] if announced else [])


@pytest.mark.parametrize(("last_seen_ago", "announced"), [(60, False), (3600, True), (None, True)])
def test_last_seen_from_the_snapshot_counts_for_flapping(
    last_seen_ago: int | None, announced: bool
) -> None:
    h = Harness()
    everyone_offline(h, ago=last_seen_ago)
    h.online("alice")
    h.loop.advance(WINDOW)
    assert h.titles() == (["alice is online"] if announced else [])


def test_nothing_while_i_am_in_do_not_disturb_and_nothing_stale_afterwards() -> None:
    h = Harness()
    everyone_offline(h)
    h.state.set_my_status(Status.DND)
    h.online("alice")
    h.request_from("zoe")
    h.message("bob", "hi", seq=1)
    h.loop.advance(60)
    h.state.set_my_status(Status.ONLINE)
    h.loop.advance(60)
    assert h.alerts == []
    # alice is not announced late; the next real arrival is.
    h.presence("alice", ON, RUST)
    h.online("carol")
    h.loop.advance(WINDOW)
    assert h.titles() == ["carol is online"]


def test_switching_to_do_not_disturb_drops_pending_alerts() -> None:
    h = Harness()
    everyone_offline(h)
    h.online("alice")
    h.loop.advance(1)
    h.state.set_my_status(Status.DND)
    h.loop.advance(WINDOW)
    assert h.alerts == []


@pytest.mark.parametrize("my_status", [Status.AWAY, Status.INVISIBLE])
def test_away_and_invisible_still_get_alerts(my_status: Status) -> None:
    h = Harness()
    everyone_offline(h)
    h.state.set_my_status(my_status)
    h.online("alice")
    h.loop.advance(WINDOW)
    assert h.titles() == ["alice is online"]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (Settings(), ["alice and 2 others are online"]),
        (Settings(muted=frozenset({ID["bob"]})), ["alice and carol are online"]),
        (
            Settings(online_alerts=OnlineAlerts.STARRED, starred=frozenset({ID["carol"]})),
            ["carol is online"],
        ),
        (Settings(online_alerts=OnlineAlerts.STARRED), []),
        (Settings(online_alerts=OnlineAlerts.OFF, starred=frozenset({ID["carol"]})), []),
        (Settings(notifications=False), []),
        (
            Settings(muted=frozenset({ID["carol"]}), starred=frozenset({ID["carol"]})),
            ["alice and bob are online"],
        ),
    ],
)
def test_mute_star_and_switches(settings: Settings, expected: list[str]) -> None:
    h = Harness(settings)
    everyone_offline(h)
    h.online("alice", "bob", "carol")
    h.loop.advance(WINDOW)
    assert h.titles() == expected


def test_muting_during_the_window_takes_effect() -> None:
    h = Harness()
    everyone_offline(h)
    h.online("alice", "bob")
    h.rules.set_settings(Settings(muted=frozenset({ID["alice"]})))
    h.loop.advance(WINDOW)
    assert h.titles() == ["bob is online"]


def test_a_friend_who_leaves_again_inside_the_window_is_dropped() -> None:
    h = Harness()
    everyone_offline(h)
    h.online("alice", "bob")
    h.offline("bob")
    h.loop.advance(WINDOW)
    assert h.titles() == ["alice is online"]


def test_appearing_away_then_turning_online_is_announced_once() -> None:
    h = Harness()
    everyone_offline(h)
    h.presence("alice", AWAY)
    h.loop.advance(600)
    assert h.alerts == []
    h.online("alice")
    h.loop.advance(WINDOW)
    h.presence("alice", AWAY)
    h.online("alice")
    h.presence("alice", DND)
    h.online("alice")
    h.loop.advance(60)
    assert h.titles() == ["alice is online"]


def test_away_to_online_of_someone_present_at_connect_is_not_news() -> None:
    h = Harness()
    h.snapshot(alice=AWAY, bob=DND)
    h.online("alice", "bob")
    h.loop.advance(60)
    assert h.alerts == []


def test_a_reconnect_snapshot_does_not_announce_friends_who_came_meanwhile() -> None:
    h = Harness()
    h.snapshot(alice=OFF, bob=ON)
    h.snapshot(alice=ON, bob=ON)  # second connection, alice arrived while I was away
    h.loop.advance(60)
    assert h.alerts == []
    h.offline("alice")
    h.loop.advance(600)
    h.online("alice")
    h.loop.advance(WINDOW)
    assert h.titles() == ["alice is online"]


def test_friend_requests_are_announced_and_coalesced() -> None:
    h = Harness()
    h.snapshot(alice=ON)
    h.request_from("zoe")
    h.loop.advance(COALESCE_SECONDS[AlertKind.FRIEND_REQUEST])
    h.request_from("frank")
    h.request_from("erin")
    h.request_from("frank")
    h.loop.advance(10)
    assert [(a.kind, a.title, a.body) for a in h.alerts] == [
        (
            AlertKind.FRIEND_REQUEST,
            "zoe wants to be your friend",
            "Accept or decline in the friends list.",
        ),
        (AlertKind.FRIEND_REQUEST, "2 friend requests", "From frank and erin."),
    ]
    assert h.alerts[1].user_ids == (ID["frank"], ID["erin"])


def test_requests_already_pending_at_connect_are_not_announced() -> None:
    h = Harness()
    h.state.apply_snapshot(Snapshot(me=User(id=1, login="me"), incoming=[User(id=8, login="zoe")]))
    h.loop.advance(10)
    assert h.alerts == []


def test_request_alerts_can_be_switched_off() -> None:
    h = Harness(Settings(notify_on_requests=False))
    h.request_from("zoe")
    h.loop.advance(10)
    assert h.alerts == []


def test_messages_one_several_and_from_several_people() -> None:
    h = Harness()
    h.snapshot(alice=ON, bob=ON)
    h.message("alice", "lunch?", seq=1)
    h.loop.advance(5)
    h.message("alice", "one", seq=2)
    h.message("alice", "two", seq=3)
    h.loop.advance(5)
    h.message("alice", "x", seq=4)
    h.message("bob", "y", seq=5)
    h.message("alice", "z", seq=6)
    h.loop.advance(5)
    assert [(a.title, a.body) for a in h.alerts] == [
        ("Message from alice", "lunch?"),
        ("2 messages from alice", "two"),
        ("3 new messages", "From alice and bob."),
    ]
    assert h.alerts[2].user_ids == (ID["alice"], ID["bob"])
    assert all(a.kind is AlertKind.MESSAGE for a in h.alerts)


def test_a_replayed_message_is_not_announced_twice() -> None:
    h = Harness()
    h.snapshot(alice=ON)
    h.message("alice", "hello", seq=1, message_id="abc")
    h.loop.advance(5)
    h.message("alice", "hello", seq=1, message_id="abc")
    h.loop.advance(5)
    assert h.titles() == ["Message from alice"]


def test_long_messages_are_shortened_and_whitespace_folded() -> None:
    h = Harness()
    h.message("alice", "word\n\n  " + "x" * 400, seq=1)
    h.loop.advance(5)
    body = h.alerts[0].body
    assert body.startswith("word xxx") and body.endswith("…") and len(body) == 200


@pytest.mark.parametrize(
    "settings",
    [
        Settings(notify_on_messages=False),
        Settings(muted=frozenset({2})),
        Settings(notifications=False),
    ],
)
def test_message_alerts_respect_settings(settings: Settings) -> None:
    h = Harness(settings)
    h.message("alice", "hi", seq=1)
    h.loop.advance(5)
    assert h.alerts == []


def test_a_new_friend_is_not_an_online_event() -> None:
    h = Harness()
    h.snapshot(alice=ON)
    h.state.apply_relation(
        RelationUpdate(
            user=User(id=ID["bob"], login="bob"),
            relation=Relation.FRIEND,
            presence=Presence(status=ON),
        )
    )
    h.loop.advance(10)
    assert h.alerts == []
    h.offline("bob")
    h.loop.advance(600)
    h.online("bob")
    h.loop.advance(WINDOW)
    assert h.titles() == ["bob is online"]


def test_each_kind_has_its_own_window_and_next_flush_is_the_earliest() -> None:
    h = Harness()
    everyone_offline(h)
    start = h.loop.now
    h.online("alice")
    h.message("bob", "hi", seq=1)
    assert h.rules.next_flush() == start + COALESCE_SECONDS[AlertKind.MESSAGE]
    h.loop.advance(WINDOW)
    assert [a.kind for a in h.alerts] == [AlertKind.MESSAGE, AlertKind.FRIEND_ONLINE]
    assert h.rules.next_flush() is None


def test_clear_forgets_pending_alerts() -> None:
    h = Harness()
    everyone_offline(h)
    h.online("alice")
    h.rules.clear()
    h.loop.advance(WINDOW)
    assert h.alerts == []


def test_rules_work_without_a_state_too() -> None:
    rules = NotifyRules(clock=lambda: 100.0)
    assert rules.next_flush() is None
    assert rules.flush() == []


def test_a_friend_present_before_my_reconnect_is_not_announced_when_back_soon() -> None:
    h = Harness()
    h.snapshot(alice=ON)
    # My connection dropped; the server restarted and lost alice's last-seen time.
    h.snapshot(alice=OFF)
    h.loop.advance(30)
    h.online("alice")
    h.loop.advance(WINDOW)
    assert h.alerts == []
