"""Per-connection TCP counters read from the kernel with ``ss -ti``.

The kernel counts, for every socket, the payload bytes and the segments in
each direction (``tcp_info``). Reading them from the server's side of a
connection measures exactly what crossed the wire for that client, keepalive
pings included, without a proxy in the path and without touching either
program.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess

IP_TCP_HEADER_BYTES = 52
"""IPv4 (20) + TCP with the timestamp option Linux uses by default (32), per segment."""

_FIELD = re.compile(r"\b(bytes_acked|bytes_received|segs_out|segs_in):(\d+)")


@dataclasses.dataclass(frozen=True, slots=True)
class Counters:
    bytes_out: int
    bytes_in: int
    segs_out: int
    segs_in: int

    def __sub__(self, other: Counters) -> Counters:
        return Counters(
            self.bytes_out - other.bytes_out,
            self.bytes_in - other.bytes_in,
            self.segs_out - other.segs_out,
            self.segs_in - other.segs_in,
        )

    @property
    def payload(self) -> int:
        """Bytes of WebSocket frames, both directions."""
        return self.bytes_out + self.bytes_in

    @property
    def on_the_wire(self) -> int:
        """Payload plus IPv4 and TCP headers of every segment (pure ACKs included)."""
        return self.payload + IP_TCP_HEADER_BYTES * (self.segs_out + self.segs_in)


def server_side(port: int) -> list[Counters]:
    """Counters of every established connection whose local port is ``port``."""
    out = subprocess.run(
        ["ss", "-tinH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    found = []
    for block in out.split("\n"):
        fields = dict(_FIELD.findall(block))
        if "segs_out" in fields:
            found.append(
                Counters(
                    int(fields.get("bytes_acked", 0)),
                    int(fields.get("bytes_received", 0)),
                    int(fields["segs_out"]),
                    int(fields["segs_in"]),
                )
            )
    return found
