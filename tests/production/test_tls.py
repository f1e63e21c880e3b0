"""wss:// served directly by ``presence-server --certfile/--keyfile``."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage

from presence_protocol import Message, MessageSent, SendMessage
from tests.server.client import befriend, login_dev
from tests.support.processes import Spawn

pytestmark = pytest.mark.slow  # presence-server processes


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile = directory / "cert.pem"
    keyfile = directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    keyfile.chmod(0o600)
    return certfile, keyfile


async def test_wss_end_to_end_with_a_self_signed_certificate(tmp_path: Path, spawn: Spawn) -> None:
    certfile, keyfile = self_signed(tmp_path)
    server = await spawn(
        "--port", "0", "--dev-login", "--certfile", str(certfile), "--keyfile", str(keyfile)
    )
    await server.listening()
    assert server.url.startswith("wss://")
    trusting = ssl.create_default_context(cafile=str(certfile))

    alice = await login_dev(server.url, "alice", ssl=trusting)
    bob = await login_dev(server.url, "bob", ssl=trusting)
    await befriend(alice, bob)
    sent = await alice.request(SendMessage(to=bob.me, text="over tls", client_msg_id="t-1"))
    assert isinstance(sent, MessageSent)
    assert (await bob.expect(Message)).text == "over tls"
    assert (await server.get("/healthz", verify=trusting)).text == "ok\n"

    # A client that does not trust the certificate is refused by its own TLS check.
    with pytest.raises(ssl.SSLCertVerificationError):
        await connect(server.url, ssl=ssl.create_default_context(), open_timeout=10)
    # Plain ws:// on the TLS port gets no WebSocket handshake.
    with pytest.raises((InvalidMessage, EOFError, ConnectionError)):
        await connect(f"ws://127.0.0.1:{server.port}", open_timeout=10)

    await alice.close()
    await bob.close()
    assert await server.terminate() == 0, server.stderr


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"--certfile": "missing.pem"}, "no such file"),
        ({"--certfile": "garbage.pem"}, "cannot use the TLS certificate"),
        ({"--keyfile": "key.pem"}, "--keyfile needs --certfile"),
    ],
    ids=["missing", "garbage", "key-only"],
)
async def test_unusable_tls_settings_stop_the_server_with_the_reason(
    tmp_path: Path, spawn: Spawn, files: dict[str, str], message: str
) -> None:
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    (tmp_path / "key.pem").write_text("not a key\n")
    args = [arg for flag, name in files.items() for arg in (flag, str(tmp_path / name))]
    server = await spawn("--port", "0", *args)
    assert await server.wait() == 2
    assert message in server.stderr
