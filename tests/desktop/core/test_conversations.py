"""The conversation model (issue 17) without Qt or a server: a real history file,
PresenceState fed with protocol messages as the net client would."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from presence_desktop.core.conversations import (
    COUNTER_FROM,
    Bubble,
    Conversations,
    DayHeader,
    counter_text,
    linkify,
    rows_for,
)
from presence_desktop.core.history import Delivery, HistoryEntry, history_path
from presence_desktop.core.notify_rules import NotifyRules, watch_state
from presence_desktop.core.settings import Settings
from presence_desktop.core.state import PresenceState
from presence_protocol import (
    Friend,
    MarkRead,
    Message,
    MessageCopy,
    MessageDelivered,
    MessageSent,
    ReadMarker,
    ReadReceipt,
    Snapshot,
    TypingHint,
    User,
    limits,
)

ME = User(id=1, login="me")
ALICE = User(id=2, login="alice")
UTC = dt.UTC
NOON = dt.datetime(2026, 3, 12, 12, 0, tzinfo=UTC).timestamp()


class Model:
    def __init__(self, root: Path, receipts: bool = False) -> None:
        self.now = NOON
        self.receipts = receipts
        self.state = PresenceState()
        self.book = Conversations(
            self.state,
            data_dir=root,
            server_key=lambda: "wss://presence.example",
            send_receipts=lambda: self.receipts,
            clock=lambda: self.now,
        )
        self.markers: list[MarkRead] = []
        self.book.mark_read_wanted.connect(self.markers.append)
        self.seq = 0

    def sign_in(self) -> None:
        self.state.apply_snapshot(Snapshot(me=ME, friends=[Friend(user=ALICE)]))

    def receive(self, text: str, at: float | None = None) -> str:
        self.seq += 1
        mid = str(100 + self.seq)
        self.state.add_message(
            Message(
                seq=self.seq,
                message_id=mid,
                sender=ALICE.id,
                text=text,
                sent_at=int(at or self.now),
            )
        )
        return mid

    def thread_entries(self) -> list[HistoryEntry]:
        return self.book.messages(ALICE.id)

    def thread(self) -> list[tuple[bool, str, Delivery, bool]]:
        return [(e.outgoing, e.text, e.delivery, e.read) for e in self.book.messages(ALICE.id)]


@pytest.fixture
def model(tmp_path: Path) -> Model:
    m = Model(tmp_path)
    m.sign_in()
    return m


def test_nothing_is_kept_before_sign_in_and_history_opens_per_account(tmp_path: Path) -> None:
    m = Model(tmp_path)
    assert m.book.store is None and m.book.messages(ALICE.id) == []
    m.sign_in()
    assert m.book.store is not None
    m.receive("hi")
    m.state.clear()  # signed out: closed, but kept for the next sign-in
    assert m.book.store is None
    m.sign_in()
    assert [t for _o, t, _d, _r in m.thread()] == ["hi"]


def test_the_history_file_is_opened_by_its_first_use_not_by_signing_in(tmp_path: Path) -> None:
    """A start with nothing to store or read never opens (or creates) the file (issue 18)."""
    m = Model(tmp_path)
    m.sign_in()
    assert not list(tmp_path.rglob("*.sqlite3"))
    assert m.book.unread(ALICE.id) == 0  # a question that needs it opens it
    assert len(list(tmp_path.rglob("*.sqlite3"))) == 1
    m.state.clear()
    m.sign_in()
    m.receive("hi")  # so does a message to keep
    assert [t for _o, t, _d, _r in m.thread()] == ["hi"]


def test_a_history_that_cannot_be_opened_is_said_once_and_retried_at_the_next_sign_in(
    tmp_path: Path,
) -> None:
    m = Model(tmp_path)
    failures: list[str] = []
    m.book.failed.connect(failures.append)
    m.sign_in()
    path = history_path(tmp_path, "wss://presence.example", ME.id)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a database" * 100)
    m.receive("hi")
    m.receive("again")
    assert m.book.store is None and m.book.messages(ALICE.id) == []
    assert len(failures) == 1 and "Cannot open the conversation history" in failures[0]
    assert m.state.unread_count() == 2  # the messages themselves are not lost
    path.unlink()
    m.state.clear()
    m.sign_in()
    m.receive("later")
    assert [t for _o, t, _d, _r in m.thread()] == ["later"]
    assert len(failures) == 1


def test_a_sent_message_goes_pending_sent_delivered_read(model: Model) -> None:
    model.book.record_pending(ALICE.id, "c-1", "lunch?")
    model.book.on_sent(MessageSent(message_id="55", client_msg_id="c-1", sent_at=int(NOON) + 1))
    model.book.on_delivered(MessageDelivered(to=ALICE.id, message_ids=["55"]))
    assert model.thread() == [(True, "lunch?", Delivery.DELIVERED, True)]
    model.book.on_receipt(ReadReceipt(reader=ALICE.id, message_id="55", sent_at=int(NOON) + 1))
    assert model.thread()[0][2] is Delivery.READ


def test_failed_then_retried_keeps_its_place_and_id(model: Model) -> None:
    model.book.record_pending(ALICE.id, "c-1", "are you there?")
    model.book.on_failed("c-1")
    [bubble] = [r for r in model.book.rows(ALICE.id, UTC) if isinstance(r, Bubble)]
    assert bubble.can_retry and bubble.mark == "⚠ not sent"
    entry = model.book.retry("c-1")
    assert entry is not None and entry.client_msg_id == "c-1"
    assert model.thread() == [(True, "are you there?", Delivery.PENDING, True)]


def test_a_copy_from_my_other_device_joins_and_the_own_copy_only_confirms(model: Model) -> None:
    model.book.on_copy(
        MessageCopy(
            message_id="7", client_msg_id="x", to=ALICE.id, text="from laptop", sent_at=int(NOON)
        )
    )
    model.book.record_pending(ALICE.id, "c-2", "from here")
    model.book.on_copy(
        MessageCopy(
            message_id="8",
            client_msg_id="c-2",
            to=ALICE.id,
            text="from here",
            sent_at=int(NOON) + 5,
        )
    )
    assert model.thread() == [
        (True, "from laptop", Delivery.SENT, True),
        (True, "from here", Delivery.SENT, True),
    ]


def test_opening_reads_it_and_syncs_a_marker_receipt_only_when_chosen(tmp_path: Path) -> None:
    for receipts in (False, True):
        m = Model(tmp_path / str(receipts), receipts=receipts)
        m.sign_in()
        m.receive("one")
        mid = m.receive("two")
        assert m.book.unread() == 2 and m.state.unread_count() == 2
        m.book.open(ALICE.id)
        assert m.book.unread() == 0 and m.state.unread_count() == 0
        assert m.markers == [
            MarkRead(peer=ALICE.id, message_id=mid, sent_at=int(NOON), receipt=receipts)
        ]
        m.book.open(ALICE.id)
        assert len(m.markers) == 1  # nothing new read: nothing to say


def test_while_focused_new_messages_are_read_at_once_and_not_announced(model: Model) -> None:
    rules = NotifyRules(Settings(), clock=lambda: model.now)
    rules.is_focused = lambda uid: model.book.focused == uid
    watch_state(rules, model.state, lambda _deadline: None)
    model.book.open(ALICE.id)
    model.receive("while you look")
    assert model.book.unread() == 0 and model.state.unread_count() == 0
    assert rules.next_flush() is None
    model.book.unfocus()
    model.receive("while away")
    assert model.book.unread() == 1
    assert rules.next_flush() is not None


def test_a_marker_from_another_device_clears_unread_without_an_echo(model: Model) -> None:
    first = model.receive("one", NOON)
    model.receive("two", NOON + 60)
    model.book.on_read_marker(ReadMarker(peer=ALICE.id, message_id=first, sent_at=int(NOON)))
    assert model.book.unread() == 1 and model.state.unread_count() == 1
    assert model.markers == []


def test_the_conversation_list_follows_activity(model: Model) -> None:
    bob = User(id=3, login="bob")
    model.receive("from alice", NOON)
    model.state.add_message(
        Message(seq=9, message_id="900", sender=bob.id, text="from bob", sent_at=int(NOON) + 10)
    )
    assert [(s.peer, s.unread) for s in model.book.summaries()] == [(3, 1), (2, 1)]
    model.book.record_pending(ALICE.id, "c-1", "newest")
    model.now += 20
    model.book.record_pending(ALICE.id, "c-2", "newer still")
    assert [s.peer for s in model.book.summaries()] == [2, 3]


def test_clear_history_empties_conversations_and_unread(model: Model) -> None:
    model.receive("one")
    model.book.clear_history()
    assert model.book.summaries() == [] and model.state.unread_count() == 0


def _entry(at: float, text: str = "x", outgoing: bool = False) -> HistoryEntry:
    return HistoryEntry(
        local_id=int(at),
        peer=2,
        outgoing=outgoing,
        text=text,
        at=int(at),
        message_id=None,
        client_msg_id=None,
        delivery=Delivery.SENT if outgoing else Delivery.RECEIVED,
        read=True,
    )


def test_rows_are_grouped_by_local_day_with_times() -> None:
    day = 86400
    entries = [
        _entry(NOON - 40 * day),
        _entry(NOON - 3 * day),
        _entry(NOON - day),
        _entry(NOON - day + 60),
        _entry(NOON, outgoing=True),
    ]
    rows = rows_for(entries, NOON + 3600, UTC)
    labels = [r.label for r in rows if isinstance(r, DayHeader)]
    assert labels == ["31 January", "Monday", "Yesterday", "Today"]
    bubbles = [r for r in rows if isinstance(r, Bubble)]
    assert [b.time for b in bubbles] == ["12:00", "12:00", "12:00", "12:01", "12:00"]
    assert [b.mark for b in bubbles] == ["", "", "", "", "✓ sent"]
    old = rows_for([_entry(NOON - 400 * day)], NOON, UTC)[0]
    assert isinstance(old, DayHeader) and old.label == "5 February 2025"


def test_links_are_clickable_and_everything_else_is_text() -> None:
    assert linkify("see https://example.org/a?b=1&c=2.") == (
        'see <a href="https://example.org/a?b=1&amp;c=2">https://example.org/a?b=1&amp;c=2</a>.'
    )
    assert linkify("<b>hi</b>\nfile:///etc/passwd javascript:alert(1)") == (
        "&lt;b&gt;hi&lt;/b&gt;<br>file:///etc/passwd javascript:alert(1)"
    )


@given(st.text(max_size=300))
def test_linkify_never_lets_markup_through(text: str) -> None:
    out = linkify(text)
    stripped = out.replace("<br>", "")
    # The only tags are the links it made.
    import re

    stripped = re.sub(r'<a href="https?://[^"<>]*">[^<>]*</a>', "", stripped)
    assert "<" not in stripped and ">" not in stripped


def test_the_counter_appears_near_the_limit() -> None:
    assert counter_text("x" * (COUNTER_FROM - 1)) == ""
    assert counter_text("x" * COUNTER_FROM) == "100"
    assert counter_text("x" * (limits.MAX_MESSAGE_CHARS + 3)) == "-3"


def test_an_alert_waiting_to_be_shown_is_dropped_once_the_conversation_is_open(
    model: Model,
) -> None:
    rules = NotifyRules(Settings(), clock=lambda: model.now)
    rules.is_focused = lambda uid: model.book.focused == uid
    watch_state(rules, model.state, lambda _deadline: None)
    model.receive("are you there?")
    deadline = rules.next_flush()
    assert deadline is not None
    model.book.open(ALICE.id)
    model.now = deadline
    assert rules.flush() == []


def test_typing_hints_are_paced_shown_for_a_while_and_ended_by_the_message(
    model: Model,
) -> None:
    book = model.book
    assert book.composing(ALICE.id) is True
    model.now += limits.TYPING_EVERY_SECONDS - 0.5
    assert book.composing(ALICE.id) is False  # paced
    model.now += 0.5
    assert book.composing(ALICE.id) is True
    book.record_pending(ALICE.id, "c-1", "sent")
    assert book.composing(ALICE.id) is True  # a new message hints again at once

    book.on_typing(TypingHint(user_id=ALICE.id))
    assert book.is_typing(ALICE.id)
    model.now += limits.TYPING_SHOWN_SECONDS + 0.1
    assert not book.is_typing(ALICE.id)
    book.on_typing(TypingHint(user_id=ALICE.id))
    model.receive("here it is")
    assert not book.is_typing(ALICE.id)


_device_ops = st.lists(
    st.one_of(
        st.tuples(st.just("receive"), st.integers(0, 3)),  # a message; its sent_at step
        st.tuples(st.just("read_on"), st.sampled_from(["laptop", "desktop"])),
    ),
    max_size=25,
)


@pytest.mark.slow
@given(ops=_device_ops)
def test_two_devices_agree_on_unread_once_markers_are_delivered(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, object]]
) -> None:
    """Whatever the order of messages and reads on either device: once each read
    marker reaches the other device, both show the same unread messages, and a
    device never reads a message it had not received when the marker was made."""
    root = tmp_path_factory.mktemp("devices")
    devices = {name: Model(root / name) for name in ("laptop", "desktop")}
    for m in devices.values():
        m.sign_in()
    at = int(NOON)
    for n, (op, arg) in enumerate(ops):
        if op == "receive":
            at += int(arg)  # type: ignore[call-overload]
            for m in devices.values():
                m.state.add_message(
                    Message(seq=n + 1, message_id=f"r{n}", sender=ALICE.id, text="t", sent_at=at)
                )
        else:
            here = devices[str(arg)]
            other = devices["desktop" if arg == "laptop" else "laptop"]
            here.markers.clear()
            here.book.open(ALICE.id)
            here.book.unfocus()
            for marker in here.markers:  # the server echoes it to every device
                other.book.on_read_marker(
                    ReadMarker(
                        peer=marker.peer, message_id=marker.message_id, sent_at=marker.sent_at
                    )
                )
        unread = {
            name: [e.message_id for e in m.thread_entries() if not e.read]
            for name, m in devices.items()
        }
        assert unread["laptop"] == unread["desktop"]
        for m in devices.values():
            assert m.book.unread() == m.state.unread_count() == len(unread["laptop"])
    for m in devices.values():
        m.book.close()
