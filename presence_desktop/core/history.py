"""The conversation history on this computer: one SQLite file per account and server.

The server forgets a message soon after it is delivered (its retention rules
do not change), so the only lasting copy of a conversation is here. One file
per (server, account) means switching servers or people never mixes two
histories, and removing an account is deleting one file. The file name is a
hash, so the data directory does not list who talked to whom.

Synchronous ``sqlite3`` on purpose: every call touches a few rows of a
local file (well under a millisecond with WAL), which is cheaper than a
thread hop per message and keeps ordering trivially right on the one asyncio
loop. Pure logic and file I/O only: no Qt, no network.

``sqlite3`` (with its 1.3 MiB library) is imported when a store is opened,
not with this module: the tray imports this module at start, and the store
opens with the first conversation (``core/conversations.py``; issue 18).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from presence_protocol import limits

if TYPE_CHECKING:
    import sqlite3

SCHEMA_VERSION = 1
HISTORY_DIR = "history"
MAX_SEARCH_RESULTS = 200
MAX_SEARCH_CHARS = 200


class HistoryError(ValueError):
    """Input the store refuses; nothing was changed."""


class Delivery(enum.StrEnum):
    """Where a message stands, as its sender sees it (received ones are ``RECEIVED``)."""

    PENDING = "pending"
    """Written here, not yet confirmed stored by the server (offline, or in flight)."""
    SENT = "sent"
    """Stored on the server (``message_sent`` or a carbon from another device)."""
    DELIVERED = "delivered"
    """A device of the friend acknowledged it (``message_delivered``)."""
    READ = "read"
    """The friend read it (only if they chose to send read receipts)."""
    FAILED = "failed"
    """Refused by the server or expired undelivered; can be retried."""
    RECEIVED = "received"


_RANK = {
    Delivery.PENDING: 0,
    Delivery.FAILED: 0,
    Delivery.SENT: 1,
    Delivery.DELIVERED: 2,
    Delivery.READ: 3,
}
"""Marks only move forward: a late ``message_delivered`` never undoes ``read``."""


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryEntry:
    local_id: int
    peer: int
    """The friend: recipient of a message I sent, sender of one I received."""
    outgoing: bool
    text: str
    at: int
    """Unix seconds: the server's ``sent_at``, or the local time while pending."""
    message_id: str | None
    client_msg_id: str | None
    delivery: Delivery
    read: bool
    """For received messages: I have seen it (outgoing ones are always read)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ConversationSummary:
    peer: int
    last: HistoryEntry
    unread: int


_COLUMNS = "id, peer, outgoing, text, at, message_id, client_msg_id, delivery, read"
_M_COLUMNS = ", ".join(f"m.{c} AS {c}" for c in _COLUMNS.split(", "))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    peer INTEGER NOT NULL,
    outgoing INTEGER NOT NULL,
    text TEXT NOT NULL,
    at INTEGER NOT NULL,
    message_id TEXT,
    client_msg_id TEXT,
    delivery TEXT NOT NULL,
    read INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_server_id ON messages (outgoing, message_id);
CREATE UNIQUE INDEX IF NOT EXISTS messages_client_id ON messages (client_msg_id);
CREATE INDEX IF NOT EXISTS messages_peer_at ON messages (peer, at, id);
CREATE INDEX IF NOT EXISTS messages_unread ON messages (peer) WHERE outgoing = 0 AND read = 0;
"""


def history_path(data_dir: Path, server_key: str, user_id: int) -> Path:
    """The file of one account on one server (named by a hash, not by the login)."""
    digest = hashlib.sha256(f"{server_key}\0{user_id}".encode()).hexdigest()[:32]
    return data_dir / HISTORY_DIR / f"{digest}.sqlite3"


def delete_files(path: Path) -> None:
    """Remove a history file and SQLite's companions (write-ahead log, shared memory)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _entry(row: sqlite3.Row) -> HistoryEntry:
    return HistoryEntry(
        local_id=row["id"],
        peer=row["peer"],
        outgoing=bool(row["outgoing"]),
        text=row["text"],
        at=row["at"],
        message_id=row["message_id"],
        client_msg_id=row["client_msg_id"],
        delivery=Delivery(row["delivery"]),
        read=bool(row["read"]),
    )


class HistoryStore:
    """All messages of one account with its friends, on this computer."""

    def __init__(self, path: Path) -> None:
        import sqlite3

        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.create_function("fold", 1, str.casefold, deterministic=True)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            self._db.close()
            raise HistoryError(
                f"the history file {path.name} was written by a newer version of the app"
            )
        # executescript commits on its own; the statements are idempotent.
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # ---------------------------------------------------------- life cycle

    def close(self) -> None:
        self._db.close()

    def delete(self) -> None:
        """Close and remove the file (the account is gone from this computer)."""
        self.close()
        delete_files(self.path)

    @contextmanager
    def _write(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _one(self, where: str, *args: object) -> HistoryEntry | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM messages WHERE {where}", args).fetchone()
        return None if row is None else _entry(row)

    def _by_local_id(self, local_id: int) -> HistoryEntry:
        found = self._one("id = ?", local_id)
        assert found is not None
        return found

    # ---------------------------------------------------------- writing

    def add_received(
        self, peer: int, message_id: str, text: str, sent_at: int, *, read: bool = False
    ) -> HistoryEntry | None:
        """A friend's message; None if this ``message_id`` is already here (a replay)."""
        _check_text(text)
        with self._write():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO messages (peer, outgoing, text, at, message_id, delivery,"
                " read) VALUES (?, 0, ?, ?, ?, ?, ?)",
                (peer, text, sent_at, message_id, Delivery.RECEIVED.value, int(read)),
            )
        if cur.rowcount == 0:
            return None
        assert cur.lastrowid is not None
        return self._by_local_id(cur.lastrowid)

    def add_pending(self, peer: int, client_msg_id: str, text: str, at: int) -> HistoryEntry:
        """A message I am sending, before the server confirmed it (idempotent per id)."""
        _check_text(text)
        if not client_msg_id:
            raise HistoryError("a sent message needs its client_msg_id")
        with self._write():
            self._db.execute(
                "INSERT OR IGNORE INTO messages (peer, outgoing, text, at, client_msg_id,"
                " delivery, read) VALUES (?, 1, ?, ?, ?, ?, 1)",
                (peer, text, at, client_msg_id, Delivery.PENDING.value),
            )
        found = self._one("client_msg_id = ?", client_msg_id)
        assert found is not None
        return found

    def add_copy(
        self, peer: int, message_id: str, client_msg_id: str, text: str, sent_at: int
    ) -> HistoryEntry | None:
        """A message I sent from this or another device (carbon); None if already known."""
        _check_text(text)
        existing = self._one("client_msg_id = ?", client_msg_id) or self._one(
            "outgoing = 1 AND message_id = ?", message_id
        )
        if existing is not None:
            self.mark_sent(client_msg_id, message_id, sent_at)
            return None
        with self._write():
            cur = self._db.execute(
                "INSERT INTO messages (peer, outgoing, text, at, message_id, client_msg_id,"
                " delivery, read) VALUES (?, 1, ?, ?, ?, ?, ?, 1)",
                (peer, text, sent_at, message_id, client_msg_id, Delivery.SENT.value),
            )
        assert cur.lastrowid is not None
        return self._by_local_id(cur.lastrowid)

    def mark_sent(self, client_msg_id: str, message_id: str, sent_at: int) -> HistoryEntry | None:
        """The server stored it: it gets its server id and time (pending/failed → sent)."""
        with self._write():
            self._db.execute(
                "UPDATE messages SET message_id = ?, at = ?, delivery = ? WHERE client_msg_id = ?"
                " AND delivery IN (?, ?)",
                (
                    message_id,
                    sent_at,
                    Delivery.SENT.value,
                    client_msg_id,
                    Delivery.PENDING.value,
                    Delivery.FAILED.value,
                ),
            )
        return self._one("client_msg_id = ?", client_msg_id)

    def mark_failed(self, client_msg_id: str) -> HistoryEntry | None:
        """Refused or expired: shown with Retry. A message already sent stays sent,
        except that expiry (never delivered, deleted by the server) always fails it."""
        with self._write():
            self._db.execute(
                "UPDATE messages SET delivery = ? WHERE client_msg_id = ? AND delivery IN (?, ?)",
                (Delivery.FAILED.value, client_msg_id, Delivery.PENDING.value, Delivery.SENT.value),
            )
        return self._one("client_msg_id = ?", client_msg_id)

    def retry(self, client_msg_id: str) -> HistoryEntry:
        """A failed message goes back to pending (the caller sends it again)."""
        entry = self._one("client_msg_id = ?", client_msg_id)
        if entry is None or entry.delivery is not Delivery.FAILED:
            raise HistoryError("only a message that failed can be retried")
        with self._write():
            self._db.execute(
                "UPDATE messages SET delivery = ? WHERE id = ?",
                (Delivery.PENDING.value, entry.local_id),
            )
        return self._by_local_id(entry.local_id)

    def advance(self, message_ids: Iterable[str], to: Delivery) -> list[HistoryEntry]:
        """Move my sent messages forward to ``DELIVERED`` or ``READ``; never back."""
        if to not in (Delivery.DELIVERED, Delivery.READ):
            raise HistoryError(f"cannot advance a message to {to}")
        lower = [d.value for d, rank in _RANK.items() if rank < _RANK[to] and rank > 0]
        changed: list[HistoryEntry] = []
        with self._write():
            for mid in message_ids:
                row = self._db.execute(
                    f"UPDATE messages SET delivery = ? WHERE outgoing = 1 AND message_id = ?"
                    f" AND delivery IN ({','.join('?' * len(lower))}) RETURNING {_COLUMNS}",
                    (to.value, mid, *lower),
                ).fetchone()
                if row is not None:
                    changed.append(_entry(row))
        return changed

    def read_by_peer(self, peer: int, message_id: str, sent_at: int) -> list[HistoryEntry]:
        """A read receipt: my messages to ``peer`` up to that one are read."""
        bound = self._bound(peer, True, message_id, sent_at)
        ids = [
            r[0]
            for r in self._db.execute(
                "SELECT message_id FROM messages WHERE peer = ? AND outgoing = 1"
                " AND message_id IS NOT NULL AND (at < ? OR (at = ? AND id <= ?))",
                (peer, bound[0], bound[0], bound[1]),
            )
        ]
        return self.advance(ids, Delivery.READ)

    def mark_read(
        self, peer: int, message_id: str | None = None, sent_at: int | None = None
    ) -> int:
        """Messages from ``peer`` up to ``message_id`` (or time ``sent_at``; all if both
        are None) are read. Returns how many changed."""
        where, args = "", tuple[int, ...]()
        if message_id is not None or sent_at is not None:
            at, local = self._bound(peer, False, message_id, sent_at)
            where, args = " AND (at < ? OR (at = ? AND id <= ?))", (at, at, local)
        with self._write():
            cur = self._db.execute(
                f"UPDATE messages SET read = 1 WHERE peer = ? AND outgoing = 0 AND read = 0{where}",
                (peer, *args),
            )
        return cur.rowcount

    def _bound(
        self, peer: int, outgoing: bool, message_id: str | None, sent_at: int | None
    ) -> tuple[int, int]:
        """(at, local id) of the named message, or of time ``sent_at`` when it is not here."""
        if message_id is not None:
            found = self._one(
                "peer = ? AND outgoing = ? AND message_id = ?", peer, int(outgoing), message_id
            )
            if found is not None:
                return found.at, found.local_id
        if sent_at is None:
            raise HistoryError("a read marker needs a known message or a time")
        return sent_at, 2**62

    def clear(self) -> None:
        """Forget every conversation ("Clear history" in Settings)."""
        with self._write():
            self._db.execute("DELETE FROM messages")
        self._db.execute("VACUUM")

    # ---------------------------------------------------------- reading

    def conversation(self, peer: int, limit: int = 500) -> list[HistoryEntry]:
        """The newest ``limit`` messages with ``peer``, oldest first."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE peer = ? ORDER BY at DESC, id DESC LIMIT ?",
            (peer, limit),
        ).fetchall()
        return [_entry(r) for r in reversed(rows)]

    def newest_received(self, peer: int) -> HistoryEntry | None:
        return self._one("peer = ? AND outgoing = 0 ORDER BY at DESC, id DESC LIMIT 1", peer)

    def entry(self, client_msg_id: str) -> HistoryEntry | None:
        return self._one("client_msg_id = ?", client_msg_id)

    def conversations(self) -> list[ConversationSummary]:
        """One row per friend I have messages with, most recent activity first."""
        # One indexed lookup per friend (newest message, unread count), not a scan
        # of the whole history: this runs whenever a message arrives.
        rows = self._db.execute(
            f"""
            SELECT {_M_COLUMNS},
                (SELECT COUNT(*) FROM messages u
                 WHERE u.peer = p.peer AND u.outgoing = 0 AND u.read = 0) AS unread
            FROM (SELECT DISTINCT peer FROM messages) p
            JOIN messages m ON m.id = (
                SELECT id FROM messages WHERE peer = p.peer ORDER BY at DESC, id DESC LIMIT 1
            )
            ORDER BY m.at DESC, m.id DESC
            """
        ).fetchall()
        return [ConversationSummary(r["peer"], _entry(r), r["unread"]) for r in rows]

    def unread(self, peer: int | None = None) -> int:
        if peer is None:
            row = self._db.execute(
                "SELECT COUNT(*) FROM messages WHERE outgoing = 0 AND read = 0"
            ).fetchone()
        else:
            row = self._db.execute(
                "SELECT COUNT(*) FROM messages WHERE outgoing = 0 AND read = 0 AND peer = ?",
                (peer,),
            ).fetchone()
        return int(row[0])

    def search(self, query: str, limit: int = MAX_SEARCH_RESULTS) -> list[HistoryEntry]:
        """Messages containing ``query`` (any case), newest first.

        A case-folded substring match (any script, not only ASCII as SQLite's
        LIKE), not a full-text index: histories are small (the
        friends limit times a few messages a day) and people search for bits of
        words, links and code that a tokenizer would split.
        """
        query = query.strip()
        if not query:
            return []
        if len(query) > MAX_SEARCH_CHARS:
            raise HistoryError(f"search for at most {MAX_SEARCH_CHARS} characters")
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE instr(fold(text), ?) > 0"
            " ORDER BY at DESC, id DESC LIMIT ?",
            (query.casefold(), limit),
        ).fetchall()
        return [_entry(r) for r in rows]


def _check_text(text: str) -> None:
    if not text or len(text) > limits.MAX_MESSAGE_CHARS:
        raise HistoryError(f"a message has 1 to {limits.MAX_MESSAGE_CHARS} characters")
