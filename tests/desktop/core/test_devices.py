"""The Devices page's rules (``core.devices``): the server's order, each device once,
a failure that changes nothing but the status line, a sign-out that removes one row."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from presence_desktop.core.api import UserError
from presence_desktop.core.devices import (
    OFFLINE_TEXT,
    SIGNED_OUT_TEXT,
    Device,
    DeviceList,
    DeviceSignedOut,
    DeviceSignOutFailed,
    Phase,
    exact_time,
    last_used_text,
    signed_in_text,
)

IDS = st.sampled_from([f"s{i}" for i in range(6)])
DEVICES = st.builds(
    Device,
    session_id=IDS,
    name=st.sampled_from(["laptop", "work-desktop", "", "  "]),
    created_at=st.integers(0, 2**31),
    last_used_at=st.integers(0, 2**31),
    current=st.booleans(),
)
CODES = st.sampled_from(["signed_out", "offline", "rate_limited", "internal_error"])
EVENTS = st.one_of(
    st.tuples(st.just("loading")),
    st.tuples(st.just("listed"), st.lists(DEVICES, max_size=8)),
    st.tuples(st.just("failed"), CODES),
    st.tuples(st.just("signed_out"), IDS, st.booleans()),
    st.tuples(st.just("sign_out_failed"), IDS, CODES),
)


@given(st.lists(EVENTS, max_size=30))
def test_rows_follow_the_server_and_only_what_happened_changes_them(
    events: list[tuple[object, ...]],
) -> None:
    model = DeviceList()
    for event in events:
        before = list(model.devices)
        kind = event[0]
        if kind == "loading":
            model.loading()
            assert model.devices == before  # the old rows stay until the answer
            assert model.phase is Phase.LOADING
        elif kind == "listed":
            listed = event[1]
            assert isinstance(listed, list)
            model.listed(listed)
            first: dict[str, Device] = {}
            for device in listed:
                first.setdefault(device.session_id, device)
            assert model.devices == list(first.values())  # server order, each once
            assert model.phase is Phase.LOADED
        elif kind == "failed":
            code = str(event[1])
            model.failed(UserError("Cannot list", f"server said {code}", code))
            if code == "signed_out":
                assert (model.devices, model.status) == ([], SIGNED_OUT_TEXT)
            elif code == "offline":
                assert (model.devices, model.status) == ([], OFFLINE_TEXT)
            else:
                assert model.devices == before
                assert model.status == f"server said {code}" and model.status_is_error
        elif kind == "signed_out":
            session_id, gone = str(event[1]), bool(event[2])
            model.signed_out(DeviceSignedOut(session_id, already_gone=gone))
            assert model.devices == [d for d in before if d.session_id != session_id]
            assert ("already" in model.status) is gone
        else:
            session_id, code = str(event[1]), str(event[2])
            error = UserError("Not signed out", f"server said {code}", code)
            model.sign_out_failed(DeviceSignOutFailed(session_id, error))
            if code in ("signed_out", "offline"):
                assert model.devices == []
            else:
                assert model.devices == before
                assert model.status.endswith(f"server said {code}") and model.status_is_error
        ids = [d.session_id for d in model.devices]
        assert len(ids) == len(set(ids))
        assert model.others == [d for d in model.devices if not d.current]
        if model.phase in (Phase.SIGNED_OUT, Phase.OFFLINE):
            assert model.devices == []


def test_a_failed_first_load_is_not_a_loaded_empty_list() -> None:
    model = DeviceList()
    model.loading()
    model.failed(UserError("Cannot list", "Try later.", "rate_limited"))
    assert model.phase is Phase.NOT_LOADED and model.status == "Try later."


def test_row_texts() -> None:
    utc = dt.UTC
    now = dt.datetime(2026, 12, 6, 15, 0, tzinfo=utc).timestamp()
    at = int(dt.datetime(2026, 12, 6, 9, 5, tzinfo=utc).timestamp())
    assert signed_in_text(at, now, utc) == "today 09:05"
    assert signed_in_text(at - 86_400, now, utc) == "yesterday 09:05"
    assert signed_in_text(at - 30 * 86_400, now, utc) == "2026-11-06"
    assert exact_time(at, utc) == "2026-12-06 09:05:00 UTC"
    other = Device("a", "laptop", at, at)
    assert last_used_text(other, now) == "Last used 5 h ago"
    # This computer is connected now, whatever the (sweep-aged) record says.
    assert last_used_text(Device("b", "pc", at, at, current=True), now) == "In use now"
    assert Device("c", "  ", at, at).label == "Unnamed device"
