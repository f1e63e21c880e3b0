"""A blocking D-Bus method call with a short timeout, for tiny local queries.

Idle time and lock state are answered by the session's own compositor in
well under a millisecond; a short timeout bounds the worst case if it hangs.
``QDBusInterface`` is avoided because it introspects synchronously first.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtDBus import QDBus, QDBusConnection, QDBusMessage

CALL_TIMEOUT_MS = 500


def call(
    bus: QDBusConnection, service: str, path: str, interface: str, method: str, *args: Any
) -> list[Any] | None:
    """The reply's arguments, or None for any error (no service, no method, timeout)."""
    if not bus.isConnected():
        return None
    message = QDBusMessage.createMethodCall(service, path, interface, method)
    if args:
        message.setArguments(list(args))
    reply = bus.call(message, QDBus.CallMode.Block, CALL_TIMEOUT_MS)
    if reply.type() is not QDBusMessage.MessageType.ReplyMessage:
        return None
    return list(reply.arguments())
