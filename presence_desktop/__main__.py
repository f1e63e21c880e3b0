"""``presence-desktop``: the tray app's entry point.

One QApplication on one qasync event loop; every I/O task (the server
connection, avatars, notifications, the demo server) runs on that loop. A
second launch hands over to the running instance and exits.
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import logging  # noqa: E402
import logging.handlers  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

from . import __version__  # noqa: E402
from .paths import AppPaths  # noqa: E402

if TYPE_CHECKING:
    import tempfile

# asyncio (with ssl, inspect and subprocess), qasync and tempfile are imported
# after the tray icon shows: nothing before it needs them, and on a busy
# machine they were the largest part of the wait (issue 18: cold start).

log = logging.getLogger("presence_desktop")

LOG_FILE = "presence-desktop.log"
LOG_BYTES = 1_000_000
LOG_BACKUPS = 3

_SECRET = re.compile(
    r"""(?ix)
    (["']?(?:session|token|access_token|refresh_token|code_verifier|client_secret|code)["']?
     \s*[:=]\s*["']?)
    ([^"'\s,&}]{6,})"""
)


class RedactSecrets(logging.Filter):
    """Masks anything shaped like ``token=…`` or ``"session": "…"`` before it is written.

    Code should never log a secret in the first place; this is the second
    line of defence for messages that embed a frame or a URL.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRET.sub(lambda m: m.group(1) + "***", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="presence-desktop",
        description="Tray companion that shows which friends are coding.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument(
        "--server", metavar="URL", help="presence server address (wss://…), overrides Settings"
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="run against an embedded server with simulated friends (no account needed)",
    )
    parser.add_argument(
        "--keychain-helper", action="store_true", help=argparse.SUPPRESS
    )  # internal: one keychain request on stdin (platform/keychain_process.py)
    parser.add_argument("--verbose", action="store_true", help="also log to stderr, with debug")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check that this build has everything it needs, print a report and exit",
    )
    return parser.parse_args(argv)


def setup_logging(log_dir: Path, *, verbose: bool) -> Path | None:
    """Rotating file in the platform log dir (and stderr with --verbose)."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact = RedactSecrets()
    path: Path | None = None
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            log_dir / LOG_FILE, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
        )
        handler.setFormatter(fmt)
        handler.addFilter(redact)
        root.addHandler(handler)
        path = log_dir / LOG_FILE
    except OSError as exc:
        print(f"presence-desktop: cannot write logs to {log_dir}: {exc}", file=sys.stderr)
    if verbose:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(fmt)
        stream.addFilter(redact)
        root.addHandler(stream)
    # Third-party debug chatter would drown our own lines.
    for noisy in (
        "websockets",
        "httpx",
        "httpcore",
        "asyncio",
        "dbus_fast",
        "aiosqlite",
        "sqlalchemy",
        "alembic",
    ):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.WARNING)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.keychain_helper:
        from .platform.keychain_process import serve

        return serve()
    if args.version:
        print(f"presence-desktop {__version__}")
        return 0
    from .preflight import EXIT_NO_DISPLAY, check

    problem = check()  # imports PySide6.QtCore: from here on PySide6 sees every import
    from .platform.memory import read_sources_uncached

    read_sources_uncached()  # ~9 MiB less: see platform/memory.py
    if args.self_test:
        from .selftest import run

        # The report is printed in every case: without a usable display the
        # checks run on Qt's offscreen platform and the display is the failure.
        return run(display_problem=problem)
    if problem is not None:
        print(problem.render(), file=sys.stderr, end="")
        return EXIT_NO_DISPLAY

    paths = AppPaths.platform()
    log_path = setup_logging(paths.log_dir, verbose=args.verbose)
    log.info("presence-desktop %s starting (log: %s)", __version__, log_path)

    from PySide6.QtWidgets import QApplication

    from .ui.single_instance import SingleInstance, instance_name

    app = QApplication(sys.argv[:1])
    app.setApplicationName("presence-desktop")
    app.setApplicationDisplayName("Presence")
    app.setDesktopFileName("presence-desktop")
    app.setQuitOnLastWindowClosed(False)

    instance = SingleInstance(instance_name("demo" if args.demo else ""))
    if not instance.claim():
        log.info("already running: asked the running instance to show itself")
        print("presence-desktop is already running; it was asked to show its window.")
        return 0
    early_icon = show_early_icon(app)
    from .ui.theme import apply as apply_theme

    apply_theme(app)  # the OS light/dark scheme, followed while running (after the icon shows)
    import asyncio

    import qasync

    try:
        with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
            return runner.run(run_app(args, paths, instance, early_icon))
    finally:
        instance.close()


EARLY_DOCK_WAIT_S = 0.5


def show_early_icon(app: Any) -> Any:
    """The tray icon, shown before the rest of the app is imported and built.

    Loading the core, the network client and the ui takes most of a second;
    the icon (the plain glyph, drawn by Qt's SVG icon engine at the size the
    tray asks for) shows at once and ``DesktopUi`` adopts it. Events are
    processed until the tray host has docked it (bounded: docking has no
    signal) so it is painted now, not when the event loop first runs.
    """
    from PySide6.QtCore import QDeadlineTimer, QEventLoop
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QSystemTrayIcon

    from .platform.bundle import resources_dir

    if not QSystemTrayIcon.isSystemTrayAvailable():
        return None
    icon = QSystemTrayIcon(QIcon(str(resources_dir() / "icons" / "presence.svg")))
    icon.setToolTip("Presence\nStarting…")
    icon.show()
    deadline = QDeadlineTimer(round(EARLY_DOCK_WAIT_S * 1000))
    while not deadline.hasExpired():
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 10)
        rect = icon.geometry()
        if rect.isValid() and (rect.x(), rect.y()) != (0, 0):
            app.processEvents()  # the expose that follows docking: paint now
            break
    return icon


async def run_app(
    args: argparse.Namespace, paths: AppPaths, instance: Any, early_icon: Any = None
) -> int:
    """Build core and ui, run until Quit (or SIGINT/SIGTERM), then shut down in order."""
    import asyncio
    import tempfile

    from .controller import Controller
    from .core.api import ConnectionEvents, ConnectionInfo, Link, UserError
    from .core.credentials import Credentials, MemoryCredentials
    from .core.settings import SettingsError, SettingsStore, normalize_server_url
    from .core.state import PresenceState
    from .net.editor_activity import EditorActivity
    from .net.editor_link import EditorLink
    from .ui.app import DesktopUi, early_tray_icon
    from .ui.extension import ExtensionInstaller
    from .ui.icons import IconFactory

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)

    icons = IconFactory()
    demo: Any = None
    scratch: tempfile.TemporaryDirectory[str] | None = None
    credentials: Credentials
    dev_login: str | None = None
    server_url: str | None = None
    if args.demo:
        from .demo import start_demo

        # The embedded server takes a few seconds to start: show the icon now.
        if early_icon is not None:
            early_icon.setToolTip("Presence\nStarting the demo…")
        else:
            early_icon = early_tray_icon(icons, "Presence\nStarting the demo…")
        scratch = tempfile.TemporaryDirectory(prefix="presence-demo-")
        root = Path(scratch.name)
        try:
            demo = await start_demo(root / "server")
        except Exception as exc:
            log.exception("the demo could not start")
            print(f"presence-desktop: the demo could not start: {exc}", file=sys.stderr)
            scratch.cleanup()
            return 1
        app_paths = AppPaths.under(root / "app")
        server_url, dev_login = demo.server_url, demo.login
        credentials = MemoryCredentials()
        log.info("demo server at %s, signed in as %s", server_url, dev_login)
    else:
        app_paths = paths
        settings_probe = SettingsStore(app_paths.config_dir, app_paths.state_dir)
        raw = args.server or settings_probe.settings.server_url
        try:
            server_url = normalize_server_url(raw) if raw else None
        except SettingsError as exc:
            log.error("--server refused: %s", exc)
            print(f"presence-desktop: {exc}", file=sys.stderr)
            return 2
        credentials = _credentials_for(server_url)

    settings = SettingsStore(app_paths.config_dir, app_paths.state_dir)
    state = PresenceState()
    connection = ConnectionEvents()
    # Only --server (or the demo) pins the address for this run; otherwise the
    # Settings field decides, and a change there switches server and keychain entry.
    pinned = demo is not None or bool(args.server)
    controller = Controller(
        state=state,
        connection=connection,
        settings=settings,
        credentials=credentials,
        credentials_for=None if demo is not None else _credentials_for,
        server_url=server_url if pinned else None,
        dev_login=dev_login,
        data_dir=app_paths.data_dir,
    )
    # Editor activity, idle and privacy (issue 5); saved settings re-apply at once.
    editors = EditorActivity(
        state,
        controller.set_editor_presence,
        privacy=settings.settings.privacy,
        idle=settings.settings.idle,
        activity=settings.settings.activity,
    )
    settings.changed.connect(lambda s: editors.apply_settings(s.privacy, s.idle, s.activity))
    # The bridge's other direction (issue 19): friends and status out, commands and
    # VS Code's GitHub session in.
    editor_link = EditorLink(
        editors.bridge,
        state,
        connection,
        controller,
        lambda: controller.client,
        device=socket.gethostname(),
        errors=controller.errors,
    )
    ui = DesktopUi(
        controller,
        controller,
        cache_dir=app_paths.cache_dir,
        settings=settings,
        server_locked=(
            "The demo runs its own server."
            if demo is not None
            else "Set by --server for this run."
            if args.server
            else ""
        ),
        icons=icons,
        tray_icon=early_icon,
        editors=editors,
        extension=ExtensionInstaller(),
        chat=controller,
        editor_sign_in=editor_link,
    )
    editor_link.open_popup = ui.open_friends
    controller.quit_requested.connect(lambda _none: stop.set())
    ui.quit_requested.connect(stop.set)
    instance.show_requested.connect(ui.on_show_requested)
    for problem in settings.load_problems:
        log.warning("settings: %s", problem.problem)

    if demo is not None:
        # A first-time user should see a populated popup, once, when the demo is ready.
        def open_when_online(info: ConnectionInfo) -> None:
            if info.link is Link.ONLINE:
                connection.changed.disconnect(open_when_online)
                opener = loop.create_task(ui.open_friends_when_placed())
                tasks.add(opener)
                opener.add_done_callback(tasks.discard)

        connection.changed.connect(open_when_online)

    ui.start()
    log.info(
        "ui up in %.0f ms (%s)",
        (time.perf_counter() - _STARTED) * 1000,
        "tray icon" if ui.tray is not None else "window, no system tray",
    )
    try:
        await controller.start()
        editors.start()
        for trouble in editors.problems:
            controller.errors.emit(UserError(trouble.title, trouble.message, "bridge"))
        if demo is None:
            # Start at login follows the setting; the demo's settings are temporary.
            from .platform.autostart import AutostartSync

            autostart = AutostartSync(errors=controller.errors)
            autostart.start(settings.settings.autostart)
            settings.changed.connect(autostart.on_settings)
        # Once settled (the first snapshot drawn, or a while without one), give
        # start-up's freed memory back to the OS (issue 18: RSS).
        trim = loop.call_later(SETTLE_TRIM_S, _trim_heap)

        def trim_when_online(info: ConnectionInfo) -> None:
            if info.link is Link.ONLINE:
                connection.changed.disconnect(trim_when_online)
                trim.cancel()
                loop.call_later(ONLINE_TRIM_S, _trim_heap)

        if connection.current.link is not Link.ONLINE:
            connection.changed.connect(trim_when_online)
        await stop.wait()
        trim.cancel()
    finally:
        log.info("shutting down")
        await editor_link.aclose()
        await editors.aclose()
        await controller.stop()
        await ui.aclose()
        if demo is not None:
            await demo.stop()
        if scratch is not None:
            scratch.cleanup()
    return 0


SETTLE_TRIM_S = 10.0
"""Seconds after start-up before the heap is trimmed when no snapshot arrived."""
ONLINE_TRIM_S = 0.5
"""Seconds after the first snapshot (the popup's model built) before the trim."""


def _trim_heap() -> None:
    from .platform.memory import trim_heap

    trim_heap()


def _credentials_for(server_url: str | None) -> Any:
    """The keychain entry of ``server_url``, read by a helper process (started now).

    Not ``CredentialStore`` itself: that would import keyring into the tray
    for good (see platform/keychain_process.py).
    """
    from .core.credentials import MemoryCredentials

    if not server_url:
        return MemoryCredentials()
    from .platform.keychain_process import ChildCredentialStore

    store = ChildCredentialStore(server_url)  # the helper's CredentialStore normalizes it
    store.prefetch()
    return store


if __name__ == "__main__":
    sys.exit(main())
