"""``presence-desktop --self-test``: prove a build has everything it needs.

A frozen binary fails in ways the source tree never does: a Qt plugin left
out, a keyring backend whose entry point was not collected, an SSL bundle
missing. Each check here exercises one such dependency for real (a rendered
icon, a WebSocket round trip over loopback, a local-socket echo) and the
report says which part broke. Runs the same frozen and from source, on any
Qt platform; exits 0 when nothing failed (warnings allowed), 1 otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import os
import platform
import ssl
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO, TypeVar

from presence_desktop import __version__
from presence_desktop.platform import bundle
from presence_desktop.preflight import Problem

T = TypeVar("T")

CHECK_TIMEOUT = 10.0
"""Seconds any single check may take; a hang is reported as a failure."""

TRAY_TIMEOUT = 5.0
"""How long a tray host gets to give the icon a place."""


class Outcome(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    name: str
    outcome: Outcome
    detail: str


@dataclasses.dataclass(slots=True)
class Report:
    header: str
    checks: list[Check] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    footer: str = ""
    """Advice printed after the verdict (how to fix a failed display check)."""

    @property
    def passed(self) -> bool:
        return all(c.outcome is not Outcome.FAIL for c in self.checks)

    def render(self) -> str:
        width = max((len(c.name) for c in self.checks), default=0)
        lines = [self.header]
        lines += [f"  {c.name:<{width}}  {c.outcome.value:<4}  {c.detail}" for c in self.checks]
        counts = {o: sum(c.outcome is o for c in self.checks) for o in Outcome}
        verdict = "passed" if self.passed else "FAILED"
        lines.append(
            f"{verdict}: {counts[Outcome.OK]} ok, {counts[Outcome.WARN]} warnings, "
            f"{counts[Outcome.FAIL]} failed ({self.seconds:.2f} s)"
        )
        if self.footer:
            lines += ["", self.footer.rstrip()]
        return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ checks


def _opaque_pixels(image: object) -> int:
    from PySide6.QtGui import QImage

    assert isinstance(image, QImage)
    img = image.convertToFormat(QImage.Format.Format_ARGB32)
    return sum(
        1 for y in range(img.height()) for x in range(img.width()) if img.pixelColor(x, y).alpha()
    )


def app_icon_path() -> Path:
    return bundle.resources_dir() / "icons" / "presence.svg"


def check_qt() -> Check:
    """Render the tray icon with every badge, as the tray does: QtSvg, the svg
    icon engine and the art must all be in the build."""
    from PySide6.QtGui import QGuiApplication, QIcon

    from presence_desktop.ui.icons import IconFactory
    from presence_desktop.ui.present import Badge

    platform_name = QGuiApplication.platformName()
    try:
        factory = IconFactory()
    except FileNotFoundError as exc:
        return Check("qt", Outcome.FAIL, f"platform {platform_name!r}; {exc}")
    empty = [
        badge.value
        for badge in (None, *Badge)
        if not _opaque_pixels(factory.icon(badge).pixmap(32, 32).toImage())
    ]
    # Window icons and the About box load the SVG through QIcon directly,
    # which needs the svg icon-engine plugin rather than QtSvg alone.
    via_engine = _opaque_pixels(QIcon(str(app_icon_path())).pixmap(32, 32).toImage())
    if empty or not via_engine:
        problem = f"badges {', '.join(map(str, empty))} rendered empty" if empty else ""
        problem = problem or "QIcon drew nothing from the SVG (svg icon engine missing?)"
        return Check("qt", Outcome.FAIL, f"platform {platform_name!r}; {problem}")
    return Check(
        "qt",
        Outcome.OK,
        f"platform {platform_name!r}, tray icon rendered with {len(Badge)} badges "
        f"({via_engine} px at 32x32)",
    )


def check_widgets() -> Check:
    """Menus and the popup draw text: fonts must be found and a widget must paint ink."""
    from PySide6.QtGui import QFontDatabase, QImage
    from PySide6.QtWidgets import QLabel

    families = QFontDatabase.families()
    if not families:
        return Check("widgets", Outcome.FAIL, "no fonts found: menus would draw without text")
    label = QLabel("Presence self-test")
    label.adjustSize()
    image = label.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    label.deleteLater()
    background = image.pixel(0, 0)
    ink = sum(
        1
        for y in range(image.height())
        for x in range(image.width())
        if image.pixel(x, y) != background
    )
    if not ink:
        return Check(
            "widgets", Outcome.FAIL, f"{len(families)} font families but a label drew nothing"
        )
    return Check(
        "widgets", Outcome.OK, f"{len(families)} font families, a label drew {ink} px of text"
    )


async def check_tray() -> Check:
    """Show a real tray icon when a tray host exists; report, not fail, when none does."""
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QSystemTrayIcon

    if not QSystemTrayIcon.isSystemTrayAvailable():
        return Check(
            "tray",
            Outcome.OK,
            f"no tray host on {QGuiApplication.platformName()!r}; icon rendered only",
        )
    from presence_desktop.ui.icons import IconFactory
    from presence_desktop.ui.present import Badge

    tray = QSystemTrayIcon(IconFactory().icon(Badge.ONLINE))
    tray.setToolTip("presence-desktop self-test")
    tray.show()
    try:
        deadline = time.monotonic() + TRAY_TIMEOUT
        # QSystemTrayIcon has no "embedded" signal; its geometry appears once
        # the host has docked it, so poll that on the running loop.
        while not tray.geometry().isValid() or tray.geometry().width() == 0:
            if time.monotonic() > deadline:
                return Check(
                    "tray", Outcome.FAIL, f"tray host present but icon not shown in {TRAY_TIMEOUT}s"
                )
            await asyncio.sleep(0.02)
        g = tray.geometry()
        return Check("tray", Outcome.OK, f"tray icon shown at {g.width()}x{g.height()}")
    finally:
        tray.hide()
        tray.deleteLater()


async def check_qasync() -> Check:
    """A Qt timer must resolve an asyncio future: the two loops are one."""
    from PySide6.QtCore import QTimer

    loop = asyncio.get_running_loop()
    kind = type(loop).__module__.split(".")[0]
    if kind != "qasync":
        return Check("qasync", Outcome.FAIL, f"running loop is {type(loop).__qualname__}")
    fut: asyncio.Future[float] = loop.create_future()
    start = time.perf_counter()
    QTimer.singleShot(0, lambda: fut.set_result(time.perf_counter()))
    done = await fut
    return Check(
        "qasync",
        Outcome.OK,
        f"Qt timer resolved an asyncio future in {(done - start) * 1e3:.2f} ms",
    )


async def check_websockets() -> Check:
    """A presence.v1 request and its reply over loopback, through the real codec."""
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.typing import Subprotocol

    from presence_protocol import Ok, SetPresence, Status, decode_client, decode_server, encode_text
    from presence_protocol.limits import SUBPROTOCOL

    async def answer(ws: ServerConnection) -> None:
        async for frame in ws:
            request = decode_client(frame)
            await ws.send(encode_text(Ok(id=request.id)))

    sub = [Subprotocol(SUBPROTOCOL)]
    async with serve(answer, "127.0.0.1", 0, subprotocols=sub) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", subprotocols=sub) as ws:
            start = time.perf_counter()
            await ws.send(encode_text(SetPresence(id="self-test", status=Status.ONLINE)))
            reply = decode_server(await ws.recv())
            elapsed = time.perf_counter() - start
    if not isinstance(reply, Ok) or reply.id != "self-test":
        return Check("websockets", Outcome.FAIL, f"unexpected reply {reply!r}")
    return Check(
        "websockets",
        Outcome.OK,
        f"{SUBPROTOCOL} round trip over 127.0.0.1:{port} in {elapsed * 1e3:.1f} ms",
    )


def check_tls() -> Check:
    """wss:// and the GitHub sign-in need CA certificates; frozen builds can lose them."""
    ctx = ssl.create_default_context()
    system = ctx.cert_store_stats()["x509_ca"]
    try:
        import certifi

        bundled = Path(certifi.where())
        certifi_note = "certifi bundle present" if bundled.is_file() else "certifi bundle MISSING"
        ok = bundled.is_file()
    except ImportError:
        certifi_note, ok = "no certifi", True
    if not ok:
        return Check("tls", Outcome.FAIL, f"{system} system CA certificates; {certifi_note}")
    if system == 0 and sys.platform.startswith("linux"):
        return Check(
            "tls",
            Outcome.WARN,
            f"no system CA certificates found by OpenSSL; {certifi_note}",
        )
    return Check("tls", Outcome.OK, f"{system} system CA certificates; {certifi_note}")


_PLAINTEXT_MODULES = ("keyrings.alt",)


def describe_keyring(backend: object) -> Check:
    """Judge the keychain keyring chose: real store ok, none a warning, plaintext a failure.

    No keychain is survivable (sign-in just is not remembered and the app
    says so); a plaintext file silently holding the session token is not.
    """
    from keyring.backends import chainer, fail

    members = (
        list(getattr(backend, "backends", []))
        if isinstance(backend, chainer.ChainerBackend)
        else []
    )
    candidates = members or [backend]
    names = [f"{type(b).__module__}.{type(b).__qualname__}" for b in candidates]
    label = ", ".join(names)
    if any(type(b).__module__.startswith(_PLAINTEXT_MODULES) for b in candidates):
        return Check("keychain", Outcome.FAIL, f"{label}: plaintext backend, secrets unprotected")
    if isinstance(backend, fail.Keyring) or not candidates:
        return Check(
            "keychain", Outcome.WARN, f"{label}: no keychain found; sign-in will not be remembered"
        )
    return Check("keychain", Outcome.OK, label)


NATIVE_BACKENDS: dict[str, tuple[str, tuple[str, ...]]] = {
    # platform: (keyring entry point, modules the backend needs at run time)
    "linux": ("SecretService", ("secretstorage", "jeepney", "cryptography")),
    "win32": ("Windows", ("win32ctypes.pywin32.win32cred",)),
    "darwin": ("macOS", ("keyring.backends.macOS",)),
}


def native_backend_problem(platform_name: str = sys.platform) -> str | None:
    """Why this OS's keychain backend could never be chosen by this build.

    With no keychain daemon running (CI) keyring falls back to its fail
    backend, which says nothing about the build. A frozen build breaks in
    two quieter ways: the backend's dependencies were not collected, or
    keyring's entry-point metadata was not, so it finds no backends at all.
    """
    import importlib
    from importlib.metadata import entry_points

    key = "linux" if platform_name.startswith("linux") else platform_name
    if key not in NATIVE_BACKENDS:
        return None
    name, needed = NATIVE_BACKENDS[key]
    registered = {ep.name for ep in entry_points(group="keyring.backends")}
    if name not in registered:
        return f"keyring backend {name!r} not registered (keyring metadata missing?)"
    for module in needed:
        try:
            importlib.import_module(module)
        except Exception as exc:  # a broken native module can raise more than ImportError
            return f"{name} backend needs {module}, which is missing ({exc})"
    return None


def check_keychain() -> Check:
    import keyring

    found = describe_keyring(keyring.get_keyring())
    problem = native_backend_problem()
    if problem is not None:
        return Check("keychain", Outcome.FAIL, f"{problem}; chosen: {found.detail}")
    return found


def check_keychain_helper() -> Check:
    """The app reads and writes the keychain through ``--keychain-helper`` children.

    A frozen build must run itself in that mode; this starts one and asks
    which backend it chose (no entry is read, so no unlock prompt).
    """
    from .platform.keychain_process import KeychainError, helper_backend

    try:
        backend = helper_backend()
    except KeychainError as exc:
        return Check("keychain-helper", Outcome.FAIL, exc.title)
    return Check("keychain-helper", Outcome.OK, f"answered; its backend: {backend}")


def _bridge_address(scratch: Path) -> str:
    """A private endpoint, so the check never meets a running app's bridge."""
    if sys.platform == "win32":
        return rf"\\.\pipe\presence-self-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return str(scratch / "bridge" / "bridge.sock")


async def check_bridge() -> Check:
    """An editor's hello and activity through the app's real EditorBridge into the merger."""
    from PySide6.QtNetwork import QLocalSocket

    from presence_desktop.core.activity import ActivityMerger, Current
    from presence_desktop.net.bridge import EditorBridge

    loop = asyncio.get_running_loop()
    merger = ActivityMerger(loop)
    reported: asyncio.Future[Current | None] = loop.create_future()

    def on_change(current: Current | None) -> None:
        if not reported.done():
            reported.set_result(current)

    merger.changed.connect(on_change)
    greeted: asyncio.Future[bytes] = loop.create_future()
    client = QLocalSocket()

    def received() -> None:
        if client.canReadLine() and not greeted.done():
            greeted.set_result(bytes(client.readLine().data()))

    client.readyRead.connect(received)
    # Short base path: Unix socket paths are limited to about 100 bytes.
    with tempfile.TemporaryDirectory(prefix="pdst-") as scratch:
        bridge = EditorBridge(merger, _bridge_address(Path(scratch)))
        bridge.start()
        try:
            start = time.perf_counter()
            client.connectToServer(bridge.address)
            client.write(b'{"type":"hello","bridge":1,"editor":"self-test"}\n')
            hello = await greeted
            client.write(b'{"type":"activity","language":"python","focused":true}\n')
            current = await reported
            elapsed = time.perf_counter() - start
        finally:
            client.abort()
            bridge.close()
    if b'"type":"hello"' not in hello:
        return Check("bridge", Outcome.FAIL, f"bridge answered {hello[:80]!r}")
    if current is None:
        return Check("bridge", Outcome.FAIL, "the report did not reach the activity merger")
    return Check(
        "bridge", Outcome.OK, f"editor hello and report via the bridge in {elapsed * 1e3:.1f} ms"
    )


def check_resources() -> Check:
    root = bundle.resources_dir()
    icons = root / "icons"
    if not app_icon_path().is_file():
        return Check("resources", Outcome.FAIL, f"no app icon under {root}")
    pngs = sorted(icons.glob("presence-[0-9]*.png"))
    parts = [f"{len(pngs)} PNG sizes"]
    for label, path in (("ico", icons / "presence.ico"), ("icns", icons / "presence.icns")):
        if path.is_file():
            parts.append(label)
    vsix = sorted(root.glob("**/*.vsix"))
    parts.append(f"{len(vsix)} .vsix")
    where = "bundled" if bundle.is_frozen() else "source tree"
    return Check("resources", Outcome.OK, f"{where}: " + ", ".join(parts))


# ------------------------------------------------------------------ runner


async def _guard(name: str, check: Awaitable[Check]) -> Check:
    try:
        return await asyncio.wait_for(check, CHECK_TIMEOUT)
    except TimeoutError:
        return Check(name, Outcome.FAIL, f"no answer within {CHECK_TIMEOUT:.0f} s")
    except Exception as exc:
        return Check(name, Outcome.FAIL, f"{type(exc).__name__}: {exc}")


async def _in_thread(name: str, fn: Callable[[], Check]) -> Check:
    """Run a blocking check (D-Bus probing in keyring) where a hang cannot stall the report.

    A daemon thread, not the loop's executor: an executor thread stuck in a
    D-Bus call would block interpreter exit.
    """
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Check] = loop.create_future()

    def work() -> None:
        try:
            result = fn()
        except Exception as exc:
            result = Check(name, Outcome.FAIL, f"{type(exc).__name__}: {exc}")

        def deliver() -> None:
            if not fut.done():
                fut.set_result(result)

        # After a timeout the loop may be closed: nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(deliver)

    threading.Thread(target=work, name=f"self-test-{name}", daemon=True).start()
    return await _guard(name, fut)


async def _sync(name: str, fn: Callable[[], Check]) -> Check:
    async def call() -> Check:
        return fn()

    return await _guard(name, call())


async def run_checks() -> list[Check]:
    return [
        await _sync("qt", check_qt),
        await _sync("widgets", check_widgets),
        await _guard("tray", check_tray()),
        await _guard("qasync", check_qasync()),
        await _guard("websockets", check_websockets()),
        await _sync("tls", check_tls),
        await _in_thread("keychain", check_keychain),
        await _in_thread("keychain-helper", check_keychain_helper),
        await _guard("bridge", check_bridge()),
        await _sync("resources", check_resources),
    ]


def _header() -> str:
    from PySide6 import __version__ as pyside_version

    how = "frozen" if bundle.is_frozen() else "from source"
    return (
        f"presence-desktop {__version__} self-test ({how}; Python {platform.python_version()}, "
        f"PySide6 {pyside_version}, {platform.system()} {platform.machine()})"
    )


def _emit(text: str, stream: TextIO | None) -> None:
    """Print the report; a windowed Windows binary has no stdout, so use a file there."""
    if stream is not None:
        stream.write(text)
        stream.flush()
        return
    target = Path(tempfile.gettempdir()) / "presence-desktop-self-test.txt"
    target.write_text(text, encoding="utf-8")


def run(stream: TextIO | None = None, *, display_problem: Problem | None = None) -> int:
    """Build a QApplication on the current Qt platform, run every check, report.

    Call before the app's own QApplication exists; the process should exit
    with the returned code afterwards. With ``display_problem`` (the
    preflight found no usable display) the checks run on the offscreen
    platform, so the report still says what else works, and the display is
    reported as the failure.
    """
    import qasync
    from PySide6.QtWidgets import QApplication

    if display_problem is not None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    started = time.perf_counter()
    out = stream if stream is not None else sys.stdout
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    report = Report(_header())
    with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
        report.checks = runner.run(run_checks())
    if display_problem is not None:
        detail = display_problem.title
        if display_problem.missing:
            detail += f" ({', '.join(display_problem.missing)})"
        report.checks.insert(0, Check("display", Outcome.FAIL, detail))
        report.footer = display_problem.message
    report.seconds = time.perf_counter() - started
    _emit(report.render(), out)
    return 0 if report.passed else 1
