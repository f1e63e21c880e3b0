"""Last seen of users going offline together is written in one statement per
loop turn (and stamp second), and nobody goes on before their write is done
(``Hub._stamp``): hypothesis over random sequences of turns of drops."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.clock import FakeClock
from tests.support.servers import on_last_seen_written
from tests.support.sessions import session_hub

Drop = tuple[int, int]  # (user id, the second it is stamped with)
turns = st.lists(
    st.lists(st.tuples(st.integers(1, 40), st.integers(1_000, 1_003)), min_size=1, max_size=30),
    min_size=1,
    max_size=6,
)


async def run(sequence: list[list[Drop]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with session_hub(Path(tmp) / "p.sqlite3", FakeClock()) as hub:
            written: list[tuple[frozenset[int], int]] = []
            done: set[tuple[int, int]] = set()

            def note(ids: list[int], when: int) -> None:
                written.append((frozenset(ids), when))
                done.update((uid, when) for uid in ids)

            on_last_seen_written(hub.store, note)
            expected_writes = 0
            for turn in sequence:
                last: dict[int, int] = {}
                for uid, when in turn:
                    last[uid] = when  # a second drop of a user in one turn: the later stamp

                async def drop(uid: int, when: int, final: dict[int, int] = last) -> None:
                    await hub._stamp(uid, when)
                    # Back only once the user's newest stamp of the turn is stored.
                    assert (uid, final[uid]) in done

                await asyncio.gather(*(drop(uid, when) for uid, when in turn))
                expected_writes += len(set(last.values()))
            assert len(written) == expected_writes
            # Every write holds distinct users; one statement per turn and second.
            assert all(ids for ids, _ in written)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(sequence=turns)
def test_drops_of_one_turn_share_one_write_per_second(sequence: list[list[Drop]]) -> None:
    asyncio.run(run(sequence))
