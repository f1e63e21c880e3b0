"""Bad frames get the error docs/protocol.md §2 promises (issue 14, point 5)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from presence_protocol import ErrorCode, ProtocolError, SetPresence, decode_client

request_ids = st.integers(min_value=-(2**53), max_value=2**53) | st.text(max_size=64)


def refused(frame: str) -> ProtocolError:
    with pytest.raises(ProtocolError) as err:
        decode_client(frame)
    return err.value


@settings(max_examples=200, deadline=None)
@given(rid=request_ids, login=st.text(max_size=30), cut=st.integers(min_value=0, max_value=200))
def test_a_truncated_frame_reports_the_id_it_got_to(rid: int | str, login: str, cut: int) -> None:
    """Cut anywhere after the id's value: the error still carries the id. (A value
    that fails validation before the cut is ``invalid_message``, still with the id.)"""
    head = json.dumps({"type": "login_dev", "id": rid})[:-1]
    frame = head + ',"login":' + json.dumps(login) + "}"
    truncated = frame[: len(head) + min(cut, len(frame) - len(head) - 1)]
    error = refused(truncated)
    assert error.code in (ErrorCode.BAD_FRAME, ErrorCode.INVALID_MESSAGE)
    assert error.request_id == rid


def test_the_reported_example_keeps_its_id() -> None:
    error = refused('{"type":"login_dev","id":77,"login":')
    assert (error.code, error.request_id) == (ErrorCode.BAD_FRAME, 77)


def test_no_id_is_made_up() -> None:
    for frame in ('{"type":"login_dev","login":', '{"id":', '{"id":1e400', "[1,", '{"a":{"id":5'):
        assert refused(frame).request_id is None, frame


@settings(deadline=None)
@given(st.integers(min_value=2**53 + 1, max_value=2**70), st.sampled_from([1, -1]))
def test_request_ids_beyond_2_53_are_invalid(magnitude: int, sign: int) -> None:
    error = refused(json.dumps({"type": "ack", "id": sign * magnitude, "seq": 1}))
    assert error.code == ErrorCode.INVALID_MESSAGE
    assert error.request_id is None  # it cannot be echoed safely either


def test_request_ids_at_2_53_are_fine() -> None:
    for rid in (2**53, -(2**53)):
        assert decode_client(json.dumps({"type": "ack", "id": rid, "seq": 1})).id == rid


def test_a_lone_surrogate_is_named() -> None:
    error = refused('{"type":"login_dev","id":3,"login":"a\\ud800"}')
    assert error.code == ErrorCode.BAD_FRAME and error.request_id == 3
    assert "lone surrogate" in error.message and "truncated" not in error.message
    # A proper pair is ordinary text (here an emoji in a label).
    ok = decode_client(
        '{"type":"set_presence","status":"online","activity":{"editor":"\\ud83d\\ude00"}}'
    )
    assert isinstance(ok, SetPresence)


@pytest.mark.parametrize(
    "label",
    ["a\x00b", "two\nlines", "tab\there", "\u202eevil", "iso\u2066late", "rlm\u200f", "\x85"],
)
def test_labels_refuse_control_and_bidi_characters(label: str) -> None:
    frame = json.dumps(
        {"type": "set_presence", "id": 4, "status": "online", "activity": {"file": label}}
    )
    error = refused(frame)
    assert (error.code, error.request_id) == (ErrorCode.INVALID_MESSAGE, 4)
    assert "activity.file" in error.message


def test_labels_keep_ordinary_unicode() -> None:
    for label in ("main.py", "日本語", "👩\u200d💻 pairing", "Ünïcödé — fine"):
        frame = json.dumps(
            {"type": "set_presence", "status": "online", "activity": {"file": label}}
        )
        message = decode_client(frame)
        assert isinstance(message, SetPresence) and message.activity is not None
        assert message.activity.file == label
