"""The local conversation history (issue 17) on real SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from presence_desktop.core.history import (
    Delivery,
    HistoryError,
    HistoryStore,
    history_path,
)

ALICE, BOB, CAROL = 2, 3, 4


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    s = HistoryStore(history_path(tmp_path, "wss://presence.example", 1))
    yield s  # type: ignore[misc]
    s.close()


def texts(store: HistoryStore, peer: int) -> list[str]:
    return [e.text for e in store.conversation(peer)]


def test_history_survives_a_restart(tmp_path: Path) -> None:
    path = history_path(tmp_path, "wss://presence.example", 1)
    first = HistoryStore(path)
    first.add_received(ALICE, "10", "hi", 100)
    first.add_pending(ALICE, "c-1", "hello alice", 101)
    first.close()
    again = HistoryStore(path)
    assert texts(again, ALICE) == ["hi", "hello alice"]
    assert again.unread() == 1
    again.close()


def test_one_file_per_account_and_server_named_by_a_hash(tmp_path: Path) -> None:
    paths = {
        history_path(tmp_path, server, user)
        for server in ("wss://a.example", "wss://b.example")
        for user in (1, 2)
    }
    assert len(paths) == 4
    for path in paths:
        assert path.parent == tmp_path / "history"
        assert "example" not in path.name


def test_a_replayed_message_is_stored_once(store: HistoryStore) -> None:
    assert store.add_received(ALICE, "10", "hi", 100) is not None
    assert store.add_received(ALICE, "10", "hi", 100) is None
    assert texts(store, ALICE) == ["hi"]


def test_delivery_marks_move_forward_only(store: HistoryStore) -> None:
    pending = store.add_pending(ALICE, "c-1", "lunch?", 100)
    assert pending.delivery is Delivery.PENDING and pending.message_id is None
    sent = store.mark_sent("c-1", "55", 104)
    assert sent is not None and (sent.delivery, sent.message_id, sent.at) == (
        Delivery.SENT,
        "55",
        104,
    )
    assert [e.delivery for e in store.advance(["55"], Delivery.READ)] == [Delivery.READ]
    assert store.advance(["55"], Delivery.DELIVERED) == []  # a late delivery notice
    entry = store.entry("c-1")
    assert entry is not None and entry.delivery is Delivery.READ


def test_failed_then_retried(store: HistoryStore) -> None:
    store.add_pending(ALICE, "c-1", "are you there?", 100)
    failed = store.mark_failed("c-1")
    assert failed is not None and failed.delivery is Delivery.FAILED
    assert store.retry("c-1").delivery is Delivery.PENDING
    with pytest.raises(HistoryError):
        store.retry("c-1")  # only failed ones
    sent = store.mark_sent("c-1", "56", 101)
    assert sent is not None and sent.delivery is Delivery.SENT


def test_a_carbon_from_another_device_joins_the_conversation(store: HistoryStore) -> None:
    copy = store.add_copy(ALICE, "57", "other-device-1", "sent from my laptop", 100)
    assert copy is not None and copy.outgoing and copy.delivery is Delivery.SENT
    # The carbon of a message sent here only confirms it.
    store.add_pending(ALICE, "c-2", "sent here", 101)
    assert store.add_copy(ALICE, "58", "c-2", "sent here", 102) is None
    assert [(e.text, e.delivery) for e in store.conversation(ALICE)] == [
        ("sent from my laptop", Delivery.SENT),
        ("sent here", Delivery.SENT),
    ]


def test_conversation_list_newest_activity_first_with_unread_counts(
    store: HistoryStore,
) -> None:
    store.add_received(ALICE, "1", "a1", 100)
    store.add_received(BOB, "2", "b1", 110)
    store.add_received(BOB, "3", "b2", 120)
    store.add_pending(ALICE, "c-1", "to alice", 130)
    store.add_received(CAROL, "4", "c1", 90)
    rows = store.conversations()
    assert [(r.peer, r.last.text, r.unread) for r in rows] == [
        (ALICE, "to alice", 1),
        (BOB, "b2", 2),
        (CAROL, "c1", 1),
    ]
    assert store.unread() == 4 and store.unread(BOB) == 2


def test_read_marker_up_to_a_message_or_a_time(store: HistoryStore) -> None:
    store.add_received(ALICE, "1", "one", 100)
    store.add_received(ALICE, "2", "two", 100)
    store.add_received(ALICE, "3", "three", 105)
    assert store.mark_read(ALICE, "1", 100) == 1  # same second, but only up to "1"
    assert store.unread(ALICE) == 2
    assert store.mark_read(ALICE, "unknown-here", 100) == 1  # by time: "two"
    assert store.unread(ALICE) == 1
    assert store.mark_read(ALICE) == 1
    assert store.unread() == 0


def test_read_receipt_reads_my_messages_up_to_it(store: HistoryStore) -> None:
    for n in (1, 2, 3):
        store.add_pending(ALICE, f"c-{n}", f"m{n}", 100 + n)
        store.mark_sent(f"c-{n}", str(n), 100 + n)
    store.read_by_peer(ALICE, "2", 102)
    assert [e.delivery for e in store.conversation(ALICE)] == [
        Delivery.READ,
        Delivery.READ,
        Delivery.SENT,
    ]


def test_search_any_case_any_script_newest_first(store: HistoryStore) -> None:
    store.add_received(ALICE, "1", "See https://example.org/a_b%", 100)
    store.add_received(BOB, "2", "ÜBER straße", 101)
    store.add_pending(CAROL, "c-1", "über alles", 102)
    assert [e.text for e in store.search("über")] == ["über alles", "ÜBER straße"]
    assert [e.text for e in store.search("STRASSE")] == ["ÜBER straße"]
    assert [e.text for e in store.search("a_b%")] == ["See https://example.org/a_b%"]
    assert store.search("  ") == []
    with pytest.raises(HistoryError):
        store.search("x" * 201)


def test_clear_history_empties_everything(store: HistoryStore) -> None:
    store.add_received(ALICE, "1", "one", 100)
    store.add_pending(BOB, "c-1", "two", 101)
    store.clear()
    assert store.conversations() == [] and store.unread() == 0


def test_delete_removes_the_file(tmp_path: Path) -> None:
    path = history_path(tmp_path, "wss://presence.example", 1)
    store = HistoryStore(path)
    store.add_received(ALICE, "1", "one", 100)
    store.delete()
    assert list(path.parent.iterdir()) == []


def test_bad_input_is_refused_and_changes_nothing(store: HistoryStore) -> None:
    store.add_received(ALICE, "1", "one", 100)
    for bad in ("", "x" * 501):
        with pytest.raises(HistoryError):
            store.add_received(ALICE, "2", bad, 101)
        with pytest.raises(HistoryError):
            store.add_pending(ALICE, "c-9", bad, 101)
    with pytest.raises(HistoryError):
        store.add_pending(ALICE, "", "fine", 101)
    with pytest.raises(HistoryError):
        store.advance(["1"], Delivery.PENDING)
    assert texts(store, ALICE) == ["one"]


def test_a_file_from_a_newer_app_is_refused_untouched(tmp_path: Path) -> None:
    path = history_path(tmp_path, "wss://presence.example", 1)
    path.parent.mkdir(parents=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(HistoryError, match="newer version"):
        HistoryStore(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 99
    db.close()


# ---------------------------------------------------------------- rules over random sequences

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("recv"), st.sampled_from([ALICE, BOB]), st.integers(0, 30)),
        st.tuples(st.just("send"), st.sampled_from([ALICE, BOB]), st.integers(0, 30)),
        st.tuples(st.just("read"), st.sampled_from([ALICE, BOB]), st.integers(0, 30)),
        st.tuples(st.just("deliver"), st.sampled_from([ALICE, BOB]), st.integers(0, 30)),
    ),
    max_size=40,
)


@pytest.mark.slow
@settings(
    max_examples=60,
    deadline=None,
    # too_slow is a wall-clock bound: the suite's profile suppresses it, and a
    # list given here replaces the profile's.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=_ops)
def test_counts_and_order_agree_with_a_plain_model(
    tmp_path: Path, ops: list[tuple[str, int, int]]
) -> None:
    """Whatever happens: unread counts equal the unread received messages, each
    conversation is in time order, the list is sorted by last activity, a
    message id is stored once, and marks never move back."""
    path = tmp_path / f"h{abs(hash(tuple(ops)))}.sqlite3"
    store = HistoryStore(path)
    try:
        seen_rank: dict[str, int] = {}
        rank = {Delivery.PENDING: 0, Delivery.SENT: 1, Delivery.DELIVERED: 2, Delivery.READ: 3}
        for n, (op, peer, t) in enumerate(ops):
            if op == "recv":
                store.add_received(peer, f"r{t}", f"text {t}", t)
            elif op == "send":
                store.add_pending(peer, f"c{n}", f"mine {n}", t)
                store.mark_sent(f"c{n}", f"s{n}", t)
            elif op == "read":
                store.mark_read(peer, None, t)
            else:
                sent = [e.message_id for e in store.conversation(peer) if e.outgoing]
                store.advance([m for m in sent if m is not None][: t % 4], Delivery.DELIVERED)
            for peer_ in (ALICE, BOB):
                conv = store.conversation(peer_)
                assert [e.at for e in conv] == sorted(e.at for e in conv)
                assert store.unread(peer_) == sum(1 for e in conv if not e.outgoing and not e.read)
                ids = [e.message_id for e in conv if not e.outgoing]
                assert len(ids) == len(set(ids))
                for e in conv:
                    if e.outgoing and e.client_msg_id:
                        r = rank[e.delivery]
                        assert r >= seen_rank.get(e.client_msg_id, 0)
                        seen_rank[e.client_msg_id] = r
            summaries = store.conversations()
            lasts = [(s.last.at, s.last.local_id) for s in summaries]
            assert lasts == sorted(lasts, reverse=True)
            assert sum(s.unread for s in summaries) == store.unread()
    finally:
        store.delete()
