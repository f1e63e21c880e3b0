"""Bridge version 2 in the sans-I/O session: who may send commands, and when.

Rule (hypothesis, random line sequences): commands come out only on a
connection whose first accepted ``hello`` announced version 2, only after it,
and in the order sent; a version-1 connection never yields one (each gets
``unknown_type``); ``joined`` is reported exactly once, for version 2 only;
a later ``hello`` never changes the version.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from presence_desktop.net.bridge_protocol import BridgeSession, ErrorCode

HELLO = st.builds(
    lambda v: {"type": "hello", "bridge": v, "editor": "E"}, st.sampled_from([1, 2, 3])
)
COMMAND = st.one_of(
    st.builds(lambda n: {"type": "set_status", "status": "away", "id": str(n)}, st.integers(0, 99)),
    st.builds(
        lambda n: {"type": "send_message", "to": 2, "text": "hi", "id": str(n)}, st.integers(0, 99)
    ),
    st.builds(lambda n: {"type": "open_popup", "id": str(n)}, st.integers(0, 99)),
    st.just({"type": "github_session", "error": "cancelled"}),
)
ACTIVITY = st.just({"type": "activity", "workspace": "w"})
LINES = st.lists(st.one_of(HELLO, COMMAND, ACTIVITY), max_size=15)


@settings(max_examples=400, deadline=None)
@given(LINES)
def test_commands_only_after_a_version_2_hello(lines: list[dict[str, Any]]) -> None:
    session = BridgeSession(clock=lambda: 0.0)  # a frozen clock: the burst allowance is 20
    version = 0
    expected: list[str] = []
    got: list[str] = []
    joined = 0
    unknown = 0
    refused_v1 = 0
    for line in lines:
        out = session.feed(json.dumps(line).encode() + b"\n")
        got += [type(c).__struct_config__.tag for c in out.commands]
        joined += out.joined
        errors = [json.loads(r) for r in out.replies if b'"error"' in r]
        unknown += sum(e["code"] == ErrorCode.UNKNOWN_TYPE for e in errors)
        if line["type"] == "hello" and version == 0 and line["bridge"] <= 2:
            version = line["bridge"]
        elif line["type"] not in ("hello", "activity") and version == 2:
            expected.append(line["type"])
        elif line["type"] not in ("hello", "activity") and version == 1:
            assert errors and errors[-1]["code"] == ErrorCode.UNKNOWN_TYPE
            refused_v1 += 1
    assert got == expected
    assert session.version == version
    assert joined == (1 if version == 2 else 0)
    assert unknown == refused_v1
