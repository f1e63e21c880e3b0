"""Property tests: decoding never raises anything but ProtocolError."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import presence_protocol as p
from presence_protocol import ProtocolError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)

field_names = st.sampled_from(
    [
        "id",
        "seq",
        "status",
        "login",
        "user_id",
        "to",
        "text",
        "client_msg_id",
        "session",
        "activity",
        "until",
        "everywhere",
        "session_id",
        "code",
        "device",
    ]
)
frames = st.builds(
    lambda t, fields: {"type": t, **fields},
    st.sampled_from(sorted(p.CLIENT_TYPES | p.SERVER_TYPES)) | st.text(max_size=12),
    st.dictionaries(field_names, json_values, max_size=6),
)


def _decode(data: str | bytes) -> None:
    for decode in (p.decode_client, p.decode_server):
        try:
            decode(data)
        except ProtocolError as exc:
            assert exc.code in set(p.ErrorCode)
            assert exc.request_id is None or isinstance(exc.request_id, (int, str))


@settings(max_examples=100)
@given(frames)
def test_structured_frames_never_crash(frame: dict[str, Any]) -> None:
    _decode(json.dumps(frame))


@pytest.mark.slow
@settings(max_examples=2000)
@given(frames)
def test_structured_frames_never_crash_over_a_long_run(frame: dict[str, Any]) -> None:
    """The same property, twenty times the examples, in the slow tier."""
    _decode(json.dumps(frame))


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_random_text_never_crashes(text: str) -> None:
    _decode(text)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data: bytes) -> None:
    _decode(data)


@settings(max_examples=200)
@given(json_values)
def test_any_json_value_never_crashes(value: Any) -> None:
    _decode(msgspec.json.encode(value).decode())
