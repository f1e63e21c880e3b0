"""The batch's own RESP packing says exactly what redis-py would (no services needed).

``redis_batch.pack`` replaces redis-py's ``pack_commands`` on the hot path;
Redis must not be able to tell the difference, whatever the arguments.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio.connection import Connection

from presence_server.cluster.redis_batch import Command, Template, pack

argument = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=100),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
)
command = st.tuples(
    st.sampled_from(["EVALSHA", "PUBLISH", "SET", "GET", "PING"]),
    st.lists(argument, max_size=10),
).map(lambda c: (c[0], *c[1]))


def _as_commands(commands: list[tuple[object, ...]]) -> list[Command]:
    return commands  # type: ignore[return-value]  # what the strategy draws


@given(st.lists(command, max_size=20))
def test_pack_matches_redis_py_byte_for_byte(commands: list[tuple[object, ...]]) -> None:
    typed = _as_commands(commands)
    expected = b"".join(bytes(part) for part in Connection().pack_commands(typed))
    assert pack(typed) == expected


@pytest.mark.parametrize("bad", [True, None, ["x"], object()])
def test_an_argument_redis_cannot_take_is_refused_with_a_clear_error(bad: object) -> None:
    with pytest.raises(TypeError, match="bytes, str, int or float"):
        pack([("SET", "k", bad)])  # type: ignore[list-item]


slot = st.one_of(st.none(), argument)


@given(st.lists(slot, min_size=1, max_size=12), st.data())
def test_a_template_packs_exactly_what_pack_makes_of_the_whole_command(
    template_args: list[object], data: st.DataObject
) -> None:
    # Fixed arguments of every kind (a '%' among them must not be taken for a
    # format), open slots filled with random bytes.
    template = Template(*template_args)  # type: ignore[arg-type]
    values = [data.draw(st.binary(max_size=300)) for arg in template_args if arg is None]
    filled = iter(values)
    whole = tuple(next(filled) if arg is None else arg for arg in template_args)
    assert template.slots == len(values)
    assert template(*values) == pack(_as_commands([whole]))
    # Taken as is among other commands of the same write.
    assert pack([("PING",), template(*values)]) == pack(_as_commands([("PING",), whole]))


def test_a_template_called_with_the_wrong_number_of_values_says_so() -> None:
    template = Template(b"EVALSHA", b"sha", 0, None, None)
    with pytest.raises(TypeError, match="2 open arguments, got 1"):
        template(b"only one")
