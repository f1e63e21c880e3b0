"""The file "Export my data" writes: every page the server sent, as one document.

The server pages its answer (``account_export``); a person wants one file.
It is written like every other file of the app (``save_atomic``: complete or
absent, readable by its owner only) since it holds private messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import msgspec

from presence_protocol import AccountData, AccountExport, ExportedMessage
from presence_protocol.paging import join_export

from .jsonfile import save_atomic

FORMAT = "presence-account-export"


class ExportDocument(msgspec.Struct, kw_only=True):
    format: str = FORMAT
    version: int = 1
    server: str
    """The server these data came from (an address, never a credential)."""
    exported_at: int
    account: AccountData | None
    messages: list[ExportedMessage]


def assemble(pages: Sequence[AccountExport], server: str, now: int) -> ExportDocument:
    """One document; an account record too long for one page is joined from its
    ``account_more`` continuations (the protocol's rule, ``paging.join_export``)."""
    if not pages or pages[0].account is None:
        raise ValueError("the first page of an export carries the account")
    account, messages = join_export(pages)
    return ExportDocument(server=server, exported_at=now, account=account, messages=messages)


def save(path: Path, document: ExportDocument) -> None:
    save_atomic(path, document)
