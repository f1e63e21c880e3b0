"""The export file joins an account record that the server spread over pages."""

from __future__ import annotations

from presence_desktop.core.account_export import assemble
from presence_protocol import (
    AccountData,
    AccountExport,
    AccountLists,
    Direction,
    ExportedMessage,
    ExportedRelation,
    SessionInfo,
    Status,
    User,
)


def relation(uid: int) -> ExportedRelation:
    return ExportedRelation(user=User(id=uid, login=f"u{uid}"), since=1)


def test_account_lists_continued_on_later_pages_are_in_the_file() -> None:
    first = AccountExport(
        account=AccountData(
            user=User(id=1, login="alice"), kind="dev", created_at=1, status=Status.ONLINE,
            friends=[relation(2)], incoming=[relation(3)],
        ),
        next="i3",
    )  # fmt: skip
    second = AccountExport(
        account_more=AccountLists(
            incoming=[relation(4)],
            blocked=[relation(5)],
            sessions=[SessionInfo(id="ab", device="laptop", created_at=1, last_used_at=1)],
        ),
        messages=[
            ExportedMessage(
                message_id="9", direction=Direction.SENT, peer=2, text="hi", sent_at=2, seq=1
            )
        ],
    )
    document = assemble([first, second], "wss://presence.example", 3)
    assert document.account is not None
    assert [r.user.id for r in document.account.friends] == [2]
    assert [r.user.id for r in document.account.incoming] == [3, 4]
    assert [r.user.id for r in document.account.blocked] == [5]
    assert [s.id for s in document.account.sessions] == ["ab"]
    assert [m.message_id for m in document.messages] == ["9"]
    assert first.account is not None and len(first.account.incoming) == 1  # pages untouched
