"""Fast regression tests, one per defect the attack suite found (see each docstring)."""

from __future__ import annotations

import pytest

from presence_desktop.net import bridge_protocol as bp


@pytest.mark.parametrize("depth", [100, 4000])
def test_bridge_deep_json_in_an_unknown_field_is_a_bad_line(depth: int) -> None:
    """Found by the bridge fuzz: a known type whose fields fail validation sent the
    line to the envelope decoder, which recursed through a deeply nested unknown
    field and raised RecursionError out of the Qt slot instead of answering."""
    line = b'{"type":"activity","workspace":1,"x":' + b"[" * depth + b"]" * depth + b"}"
    with pytest.raises(bp.LineError) as err:
        bp.decode_line(line)
    assert err.value.code in (bp.ErrorCode.BAD_LINE, bp.ErrorCode.INVALID)
    session = bp.BridgeSession()
    session.feed(b'{"type":"hello","bridge":1,"editor":"e"}\n')
    out = session.feed(line + b"\n" + b'{"type":"activity","workspace":"after"}\n')
    assert [r.workspace for r in out.reports] == ["after"]
