"""The session token goes to the keychain or nowhere, and failures read like advice."""

from __future__ import annotations

import keyring
import keyring.backend
import keyring.backends.chainer
import keyring.backends.fail
import keyring.errors
import pytest

from presence_desktop.platform.credentials import (
    CredentialError,
    CredentialStore,
    normalize_server_url,
)
from tests.conftest import MemoryKeyring


def test_round_trip_keyed_by_server(memory_keyring: MemoryKeyring) -> None:
    a = CredentialStore("wss://Presence.Example.com/")
    b = CredentialStore("wss://other.example:8443")
    assert a.get() is None
    a.set("tok-a")
    b.set("tok-b")
    assert (a.get(), b.get()) == ("tok-a", "tok-b")
    assert "wss://presence.example.com" in a.service
    assert "wss://presence.example.com" in a.account
    assert memory_keyring.items[(a.service, a.account)] == "tok-a"
    a.delete()
    assert a.get() is None and b.get() == "tok-b"
    a.delete()  # forgetting twice is fine


def test_same_server_spelled_differently_is_one_entry() -> None:
    CredentialStore("wss://HOST.example:443/path/").set("t")
    assert CredentialStore("WSS://host.example:443/path").get() == "t"
    assert normalize_server_url("ws://user:pw@[::1]:9000/") == "ws://[::1]:9000"


async def test_async_variants(memory_keyring: MemoryKeyring) -> None:
    store = CredentialStore("ws://127.0.0.1:1")
    await store.set_async("abc")
    assert await store.get_async() == "abc"
    await store.delete_async()
    assert await store.get_async() is None


def test_no_keychain_gives_the_fix_when_saving() -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())
    store = CredentialStore("ws://127.0.0.1:1")
    assert store.get() is None  # nothing can be stored, so nothing is
    store.delete()  # nothing to forget
    with pytest.raises(CredentialError) as err:
        store.set("x")
    assert err.value.error.title == err.value.title
    assert "GNOME Keyring" in err.value.message
    assert "KWallet" in err.value.message


class PlaintextKeyring(MemoryKeyring):
    """Stands in for keyrings.alt's file backends: same module prefix, same danger."""


PlaintextKeyring.__module__ = "keyrings.alt.file"


def test_plaintext_backend_is_refused_even_when_keyring_picks_it() -> None:
    ring = PlaintextKeyring()
    keyring.set_keyring(ring)
    ring.items[("x", "y")] = "planted"
    store = CredentialStore("ws://127.0.0.1:1")
    with pytest.raises(CredentialError) as err:
        store.set("secret-token")
    assert err.value.error.code == "no_keychain"
    assert ring.items == {("x", "y"): "planted"}


def test_chainer_skips_plaintext_members() -> None:
    plain, safe = PlaintextKeyring(), MemoryKeyring()

    class Chain(keyring.backends.chainer.ChainerBackend):
        @property
        def backends(self) -> list[keyring.backend.KeyringBackend]:  # type: ignore[override]
            return [plain, safe]

    keyring.set_keyring(Chain())
    CredentialStore("ws://127.0.0.1:1").set("tok")
    assert plain.items == {} and list(safe.items.values()) == ["tok"]


class LockedKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("locked")


class BrokenKeyring(MemoryKeyring):
    def set_password(self, service: str, username: str, password: str) -> None:
        raise RuntimeError(f"dbus exploded while storing {password}")


def test_locked_keychain_says_unlock() -> None:
    keyring.set_keyring(LockedKeyring())
    with pytest.raises(CredentialError) as err:
        CredentialStore("ws://127.0.0.1:1").get()
    assert "Unlock" in err.value.error.message


def test_backend_failure_is_a_message_without_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    keyring.set_keyring(BrokenKeyring())
    with pytest.raises(CredentialError) as err:
        CredentialStore("ws://127.0.0.1:1").set("very-secret-token")
    assert "very-secret-token" not in str(err.value.error)
    assert "very-secret-token" not in caplog.text
    assert err.value.error.code == "keychain_error"


def test_empty_token_is_refused(memory_keyring: MemoryKeyring) -> None:
    with pytest.raises(ValueError):
        CredentialStore("ws://127.0.0.1:1").set("")
    assert memory_keyring.items == {}


def test_without_a_keychain_the_session_lasts_this_run_only() -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())
    store = CredentialStore("ws://127.0.0.1:1")
    with pytest.raises(CredentialError) as err:
        store.set("session-token")
    assert err.value.error.code == "no_keychain"
    assert store.get() == "session-token"  # signed in until quit, as the message says
    store.delete()
    assert store.get() is None
