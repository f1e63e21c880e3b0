"""Fast regression tests, one per defect the attack suite found (see each docstring)."""

from __future__ import annotations

import pytest

from presence_desktop.net import bridge_protocol as bp
from presence_protocol import Ack, Message, SendMessage
from tests.server.client import befriend, login_dev
from tests.support.servers import StartServer


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


async def test_acks_that_record_nothing_new_never_reach_the_database(start: StartServer) -> None:
    """Found by the rate-limit suite: acks are outside the command limit, yet every
    one was a write transaction (5,000 acks kept the database busy for 5 s)."""
    server = await start()
    alice = await login_dev(server.url, "alice")
    bob = await login_dev(server.url, "bob")
    await befriend(alice, bob)
    writes: list[int] = []
    real = server.hub.store.ack

    async def counted(user_id: int, seq: int) -> int:
        writes.append(seq)
        return await real(user_id, seq)

    server.hub.store.ack = counted  # type: ignore[method-assign]
    for n in range(3):
        await alice.request(SendMessage(to=bob.me, text=f"m{n}", client_msg_id=f"m{n}"))
    for _ in range(3):
        await bob.expect(Message)
    for seq in [0, 1, 1, 1, 2, 99, 99, 3, 3, 10**9]:
        await bob.send(Ack(seq=seq))
    await bob.barrier()
    assert writes == [1, 2, 3]  # each new mark once; beyond what was sent is clamped
    snapshot = (await login_dev(server.url, "bob", "other")).snapshot
    assert snapshot is not None and snapshot.acked_seq == 3
