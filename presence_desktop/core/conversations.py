"""Conversations with friends (issue 17): the model behind the conversation view,
the conversation list and the unread badge. Pure logic: no Qt, no sockets.

It keeps the local history (``core.history``) of the signed-in account and
turns what the net client hears (received messages, ``message_sent``,
carbons, delivery notices, read markers and receipts, refusals) into history
updates, and what the person does (open a conversation, send, retry) into
history updates plus ``mark_read`` commands for the controller to send.

Unread state lives in two places that move together: the history (per
conversation, lasting) and ``PresenceState.inbox`` (which the tray and the
panel already count). Every path that marks messages read updates both.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Callable
from pathlib import Path

from presence_protocol import (
    MarkRead,
    MessageCopy,
    MessageDelivered,
    MessageSent,
    ReadMarker,
    ReadReceipt,
    TypingHint,
    limits,
)

from .events import Signal
from .history import (
    ConversationSummary,
    Delivery,
    HistoryEntry,
    HistoryError,
    HistoryStore,
    delete_files,
    history_path,
)
from .state import InboxMessage, PresenceState

log = logging.getLogger(__name__)

COUNTER_FROM = limits.MAX_MESSAGE_CHARS - 100
"""The composer shows how many characters are left once this many are typed."""

_URL = re.compile(r"\bhttps?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]}]", re.IGNORECASE)


@dataclasses.dataclass(frozen=True, slots=True)
class DayHeader:
    """A separator above the first message of a local calendar day."""

    label: str
    day: dt.date


@dataclasses.dataclass(frozen=True, slots=True)
class Bubble:
    """One message as the view draws it."""

    entry: HistoryEntry
    time: str
    """Local ``HH:MM``."""
    mark: str
    """The delivery mark of a message I sent ('' for received ones)."""
    html: str
    """The text, escaped, with web links made clickable."""

    @property
    def can_retry(self) -> bool:
        return self.entry.delivery is Delivery.FAILED


Row = DayHeader | Bubble

MARKS = {
    Delivery.PENDING: "🕓 pending",
    Delivery.SENT: "✓ sent",
    Delivery.DELIVERED: "✓✓ delivered",
    Delivery.READ: "✓✓ read",
    Delivery.FAILED: "⚠ not sent",
    Delivery.RECEIVED: "",
}


def linkify(text: str) -> str:
    """HTML for a message: escaped, line breaks kept, http(s) links clickable.

    Only http and https: a ``file:`` or custom-scheme link in a friend's
    message must not become one click away from running something.
    """
    import html  # with the first message shown: its entity tables are not needed at start

    out: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        out.append(html.escape(text[last : match.start()]))
        url = match.group(0)
        out.append(f'<a href="{html.escape(url, quote=True)}">{html.escape(url)}</a>')
        last = match.end()
    out.append(html.escape(text[last:]))
    return "".join(out).replace("\n", "<br>")


def day_label(day: dt.date, today: dt.date) -> str:
    if day == today:
        return "Today"
    if day == today - dt.timedelta(days=1):
        return "Yesterday"
    if today - dt.timedelta(days=6) <= day < today:
        return day.strftime("%A")
    if day.year == today.year:
        return f"{day.day} {day.strftime('%B')}"
    return f"{day.day} {day.strftime('%B')} {day.year}"


def rows_for(entries: list[HistoryEntry], now: float, tz: dt.tzinfo | None = None) -> list[Row]:
    """Oldest first, a ``DayHeader`` before each new local day."""
    today = dt.datetime.fromtimestamp(now, tz).date()
    rows: list[Row] = []
    current: dt.date | None = None
    for entry in entries:
        when = dt.datetime.fromtimestamp(entry.at, tz)
        if when.date() != current:
            current = when.date()
            rows.append(DayHeader(day_label(current, today), current))
        rows.append(
            Bubble(
                entry=entry,
                time=when.strftime("%H:%M"),
                mark=MARKS[entry.delivery] if entry.outgoing else "",
                html=linkify(entry.text),
            )
        )
    return rows


def counter_text(text: str) -> str:
    """'' until the text nears the limit, then the characters left (negative: too long)."""
    n = len(text)
    if n < COUNTER_FROM:
        return ""
    return str(limits.MAX_MESSAGE_CHARS - n)


class Conversations:
    """The conversation history of the signed-in account, and what it shows."""

    def __init__(
        self,
        state: PresenceState,
        *,
        data_dir: Path | None,
        server_key: Callable[[], str],
        send_receipts: Callable[[], bool],
        clock: Callable[[], float],
    ) -> None:
        self._state = state
        self._data_dir = data_dir
        self._server_key = server_key
        self._send_receipts = send_receipts
        self._clock = clock
        self._store: HistoryStore | None = None
        self._unopened: Path | None = None
        """The signed-in account's history file, until its first use opens it."""
        self._owner: tuple[str, int] | None = None
        self._last_path: Path | None = None
        """The file of the account open last: a deletion arrives after the sign-out."""
        self._typing_until: dict[int, float] = {}
        """Friend → when their "typing…" hint stops showing."""
        self._typing_sent: dict[int, float] = {}
        """Friend → when I last sent them a typing hint (pacing)."""
        self.focused: int | None = None
        """The friend whose conversation is open and focused (no alerts, read at once)."""

        self.changed = Signal[int]()
        """A conversation's messages changed (the friend's user id)."""
        self.listing_changed = Signal[None]()
        """The conversation list changed (order, last message or unread counts)."""
        self.mark_read_wanted = Signal[MarkRead]()
        """A read marker for the controller to send to the server."""
        self.failed = Signal[str]()
        """Opening the history failed; the text is for the person."""

        state.reset.connect(lambda _none: self._sync_account())
        state.message_received.connect(self.on_received)

    # ---------------------------------------------------------- account

    @property
    def store(self) -> HistoryStore | None:
        """The signed-in account's history; None signed out or when it cannot be opened.

        Opened on first use, not at sign-in: a start with nothing to read or
        store (no new message, no conversation opened) then never loads
        SQLite (issue 18: RSS after start). A failure to open is reported
        then, once, and retried at the next sign-in.
        """
        if self._store is None and self._unopened is not None:
            path, self._unopened = self._unopened, None
            import sqlite3

            try:
                self._store = HistoryStore(path)
            except (OSError, HistoryError, sqlite3.Error) as exc:
                log.warning("cannot open the conversation history: %s", exc)
                self._owner = None
                self.failed.emit(f"Cannot open the conversation history: {exc}")
        return self._store

    def _sync_account(self) -> None:
        me = self._state.me
        owner = None if me is None else (self._server_key(), me.id)
        if owner == self._owner:
            return
        self.close()
        if owner is None or self._data_dir is None:
            return
        self._last_path = self._unopened = history_path(self._data_dir, *owner)
        self._owner = owner
        for message in self._state.inbox:  # what an older version kept only there
            self._add_received(message)
        self.listing_changed.emit(None)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        self._store = None
        self._unopened = None
        self._owner = None
        self.focused = None
        self.listing_changed.emit(None)

    def delete_history(self) -> None:
        """The account is gone: its history file goes too."""
        if self._store is not None:
            self._store.delete()
        elif self._last_path is not None:
            delete_files(self._last_path)
        self._store = None
        self._unopened = None
        self._owner = None
        self._last_path = None
        self.listing_changed.emit(None)

    def clear_history(self) -> None:
        """ "Clear history" in Settings: every conversation of this account, here only."""
        if self.store is not None:
            self.store.clear()
        self._state.mark_read()
        self.listing_changed.emit(None)
        for peer in list(self._state.friends):
            self.changed.emit(peer)

    # ---------------------------------------------------------- queries

    def messages(self, peer: int) -> list[HistoryEntry]:
        return [] if self.store is None else self.store.conversation(peer)

    def rows(self, peer: int, tz: dt.tzinfo | None = None) -> list[Row]:
        return rows_for(self.messages(peer), self._clock(), tz)

    def summaries(self) -> list[ConversationSummary]:
        return [] if self.store is None else self.store.conversations()

    def unread(self, peer: int | None = None) -> int:
        return 0 if self.store is None else self.store.unread(peer)

    def is_typing(self, peer: int) -> bool:
        return self._typing_until.get(peer, 0.0) > self._clock()

    def typing_left(self, peer: int) -> float:
        """Seconds until the hint of ``peer`` stops showing (0: not typing); the view
        re-checks then, on this model's clock."""
        return max(0.0, self._typing_until.get(peer, 0.0) - self._clock())

    def search(self, query: str) -> list[HistoryEntry]:
        return [] if self.store is None else self.store.search(query)

    # ---------------------------------------------------------- what the person does

    def open(self, peer: int, *, focused: bool = True) -> None:
        """The conversation is on screen: its messages are read (here and everywhere)."""
        if focused:
            self.focused = peer
        self.read(peer)

    def unfocus(self, peer: int | None = None) -> None:
        if peer is None or self.focused == peer:
            self.focused = None

    def read(self, peer: int) -> None:
        if self.store is None:
            self._inbox_read(lambda m: m.sender_id == peer)  # nothing kept, still read
            return
        newest = self.store.newest_received(peer)
        changed = self.store.mark_read(peer)
        self._inbox_read(lambda m: m.sender_id == peer)
        if changed:
            self.changed.emit(peer)
            self.listing_changed.emit(None)
        if changed and newest is not None and newest.message_id is not None:
            self.mark_read_wanted.emit(
                MarkRead(
                    peer=peer,
                    message_id=newest.message_id,
                    sent_at=newest.at,
                    receipt=self._send_receipts(),
                )
            )

    def record_pending(self, peer: int, client_msg_id: str, text: str) -> None:
        self._typing_sent.pop(peer, None)  # writing the next message hints again at once
        if self.store is None:
            return
        self.store.add_pending(peer, client_msg_id, text, int(self._clock()))
        self._changed(peer)

    def retry(self, client_msg_id: str) -> HistoryEntry | None:
        """Back to pending; the caller sends it again with the same client_msg_id."""
        if self.store is None:
            return None
        entry = self.store.retry(client_msg_id)
        self._changed(entry.peer)
        return entry

    def composing(self, peer: int) -> bool:
        """The person typed in ``peer``'s conversation: True when a hint is due (paced)."""
        now = self._clock()
        if now - self._typing_sent.get(peer, float("-inf")) < limits.TYPING_EVERY_SECONDS:
            return False
        self._typing_sent[peer] = now
        return True

    # ---------------------------------------------------------- what the server says

    def on_typing(self, hint: TypingHint) -> None:
        self._typing_until[hint.user_id] = self._clock() + limits.TYPING_SHOWN_SECONDS
        self.changed.emit(hint.user_id)

    def on_received(self, message: InboxMessage) -> None:
        self._typing_until.pop(message.sender_id, None)  # the message is what they typed
        if self.store is None:
            return
        if self._add_received(message) is None:
            return
        if self.focused == message.sender_id:
            self.read(message.sender_id)
        self._changed(message.sender_id)

    def _add_received(self, message: InboxMessage) -> HistoryEntry | None:
        assert self.store is not None
        try:
            return self.store.add_received(
                message.sender_id,
                message.message_id,
                message.text,
                message.sent_at,
                read=message.read,
            )
        except HistoryError as exc:
            log.warning("not keeping message %s: %s", message.message_id, exc)
            return None

    def on_sent(self, reply: MessageSent) -> None:
        if self.store is None:
            return
        entry = self.store.mark_sent(reply.client_msg_id, reply.message_id, reply.sent_at)
        if entry is not None:
            self._changed(entry.peer)

    def on_copy(self, copy: MessageCopy) -> None:
        if self.store is None:
            return
        try:
            self.store.add_copy(
                copy.to, copy.message_id, copy.client_msg_id, copy.text, copy.sent_at
            )
        except HistoryError as exc:
            log.warning("not keeping the copy of %s: %s", copy.message_id, exc)
            return
        self._changed(copy.to)

    def on_delivered(self, notice: MessageDelivered) -> None:
        if self.store is not None and self.store.advance(notice.message_ids, Delivery.DELIVERED):
            self.changed.emit(notice.to)

    def on_receipt(self, receipt: ReadReceipt) -> None:
        if self.store is None:
            return
        if self.store.read_by_peer(receipt.reader, receipt.message_id, receipt.sent_at):
            self.changed.emit(receipt.reader)

    def on_read_marker(self, marker: ReadMarker) -> None:
        """Read on another device (or the echo of our own): read here too, no echo back."""
        if self.store is None:
            return
        peer = marker.peer
        before = {e.message_id for e in self.store.conversation(peer) if not e.read}
        if not self.store.mark_read(peer, marker.message_id, marker.sent_at):
            return
        now_unread = {e.message_id for e in self.store.conversation(peer) if not e.read}
        done = before - now_unread
        self._inbox_read(lambda m: m.message_id in done)
        self._changed(peer)

    def on_failed(self, client_msg_id: str) -> None:
        if self.store is None:
            return
        entry = self.store.mark_failed(client_msg_id)
        if entry is not None:
            self._changed(entry.peer)

    # ---------------------------------------------------------- helpers

    def _changed(self, peer: int) -> None:
        self.changed.emit(peer)
        self.listing_changed.emit(None)

    def _inbox_read(self, which: Callable[[InboxMessage], bool]) -> None:
        ids = [m.message_id for m in self._state.inbox if not m.read and which(m)]
        if ids:
            self._state.mark_read(ids)
