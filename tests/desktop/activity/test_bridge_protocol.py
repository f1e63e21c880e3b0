"""The bridge state machine without sockets: framing, hello, rate and errors."""

from __future__ import annotations

import json

from presence_desktop.net.bridge_protocol import (
    BURST_LINES,
    MAX_LINE_BYTES,
    REFILL_PER_SECOND,
    BridgeSession,
)
from presence_protocol import ActivityKind
from tests.support.clock import FakeClock

HELLO = b'{"type":"hello","bridge":1,"editor":"Neovim","version":"0.10","window":"1"}\n'


def codes(replies: list[bytes]) -> list[str]:
    return [json.loads(r).get("code", json.loads(r)["type"]) for r in replies]


def test_lines_split_across_reads_and_crlf() -> None:
    session = BridgeSession()
    out = session.feed(HELLO[:10])
    assert out.replies == []
    out = session.feed(HELLO[10:] + b'{"type":"activity","language":"lua"')
    assert codes(out.replies) == ["hello"]
    out = session.feed(b',"kind":"reading","future":[1]}\r\n\n   \n')
    assert [r.language for r in out.reports] == ["lua"]
    assert out.reports[0].kind is ActivityKind.READING
    assert out.reports[0].editor == "Neovim"


def test_overlong_line_without_newline_is_dropped_once() -> None:
    session = BridgeSession()
    session.feed(HELLO)
    first = session.feed(b"x" * (MAX_LINE_BYTES + 1))
    assert codes(first.replies) == ["line_too_long"]
    more = session.feed(b"y" * MAX_LINE_BYTES * 3)
    assert more.replies == []
    tail = session.feed(b'end of the long line\n{"type":"activity","file":"a.rs"}\n')
    assert tail.replies == []
    assert [r.file for r in tail.reports] == ["a.rs"]


def test_rate_refills_over_time() -> None:
    clock = FakeClock()
    session = BridgeSession(clock)
    line = b'{"type":"activity"}\n'
    out = session.feed(HELLO + line * (BURST_LINES + 5))
    assert len(out.reports) == BURST_LINES - 1
    assert codes(out.replies) == ["hello", "rate_limited"]
    clock.advance(10 / REFILL_PER_SECOND)
    out = session.feed(line * 3)
    assert len(out.reports) == 3 and out.replies == []


def test_hello_twice_updates_editor_without_a_second_reply() -> None:
    session = BridgeSession()
    session.feed(HELLO)
    out = session.feed(
        b'{"type":"hello","bridge":1,"editor":"Neovim nightly"}\n{"type":"activity"}\n'
    )
    assert out.replies == []
    assert out.reports[0].editor == "Neovim nightly"


def test_bye_before_hello_just_closes() -> None:
    out = BridgeSession().feed(b'{"type":"bye"}\n')
    assert out.bye and out.close and out.replies == []


def test_empty_editor_name_is_invalid() -> None:
    out = BridgeSession().feed(b'{"type":"hello","bridge":1,"editor":""}\n')
    assert codes(out.replies) == ["invalid"]
    assert not out.close
