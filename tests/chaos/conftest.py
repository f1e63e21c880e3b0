"""Chaos tests record the session tokens their apps receive (for the final secret scan)."""

from tests.security import issued

issued.install()
