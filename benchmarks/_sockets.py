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


def server_side(port: int) -> dict[int, Counters]:
    """Counters of every established connection on local port ``port``, by peer port."""
    out = subprocess.run(
        ["ss", "-tinH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    found: dict[int, Counters] = {}
    peer: int | None = None
    for line in out.split("\n"):
        fields = dict(_FIELD.findall(line))
        if "segs_out" in fields and peer is not None:
            found[peer] = Counters(
                int(fields.get("bytes_acked", 0)),
                int(fields.get("bytes_received", 0)),
                int(fields["segs_out"]),
                int(fields["segs_in"]),
            )
            peer = None
        elif line.strip():
            # Recv-Q Send-Q Local:Port Peer:Port
            columns = line.split()
            if len(columns) >= 4 and ":" in columns[3]:
                peer = int(columns[3].rsplit(":", 1)[1])
    return found
