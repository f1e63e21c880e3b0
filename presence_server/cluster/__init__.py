"""Who is online where, and fan-out of events: in-process, or through Redis
for many instances."""
