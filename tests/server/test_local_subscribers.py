"""The in-process fan-out's bookkeeping (``cluster.fanout.LocalSubscribers``).

A user's entry is the one subscriber itself until a second device
subscribes (it saves a set per idle connection), so the rule worth stating
is that the shape never shows: over any sequence of subscribes and
unsubscribes, the subscribers of a user are exactly those subscribed and not
unsubscribed since, each once, and the count of users is those with at least
one. And a publish reaches every subscriber of the moment exactly once, also
when delivering makes subscribers leave.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from presence_server.cluster.fanout import Event, InProcessFanout, LocalSubscribers


class Device:
    """A subscriber that records what it was handed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.events: list[Event] = []

    def deliver(self, event: Event) -> None:
        self.events.append(event)

    def __repr__(self) -> str:
        return f"Device({self.name})"


DEVICES = [Device(str(i)) for i in range(4)]

operations = st.lists(
    st.tuples(st.booleans(), st.integers(0, 2), st.sampled_from(DEVICES)), max_size=60
)


@given(operations)
def test_subscribers_are_those_added_and_not_discarded(ops: list[tuple[bool, int, Device]]) -> None:
    subs = LocalSubscribers()
    model: dict[int, set[Device]] = {}
    for add, user, device in ops:
        if add:
            subs.add(user, device)
            model.setdefault(user, set()).add(device)
        else:
            subs.discard(user, device)
            model.get(user, set()).discard(device)
        for uid in range(3):
            found = subs.of(uid)
            assert len(found) == len(set(found))  # each subscriber once
            assert set(found) == model.get(uid, set())
        assert len(subs) == sum(1 for devices in model.values() if devices)
    subs.clear()
    assert len(subs) == 0 and subs.of(0) == ()


async def test_a_publish_reaches_each_subscriber_of_the_moment_once() -> None:
    fanout = InProcessFanout()
    one, two, three = Device("one"), Device("two"), Device("three")
    alone = Device("alone")
    await fanout.subscribe(1, one)
    await fanout.subscribe(1, two)
    await fanout.subscribe(1, one)  # again: still one entry
    await fanout.subscribe(2, alone)

    class Leaver(Device):
        """Closes its connection on delivery: it and ``two`` unsubscribe meanwhile."""

        def deliver(self, event: Event) -> None:
            super().deliver(event)
            fanout._subscribers.discard(1, self)
            fanout._subscribers.discard(1, two)

    leaver = Leaver("leaver")
    await fanout.subscribe(1, leaver)
    event = Event(frame=b"{}")
    await fanout.publish([1, 1, 2], event)
    assert [len(d.events) for d in (one, two, leaver, alone)] == [1, 1, 1, 1]
    assert fanout.local_users == 2
    await fanout.subscribe(1, three)
    await fanout.publish([1], event)
    assert [len(d.events) for d in (one, two, leaver, three)] == [2, 1, 1, 1]
    await fanout.unsubscribe(1, one)
    await fanout.unsubscribe(1, three)
    await fanout.unsubscribe(2, alone)
    assert fanout.local_users == 0
