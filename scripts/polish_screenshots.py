"""Screenshots of issue 18's states, from the real app on a virtual screen.

The demo's server and simulated friends run in a separate process (so the
server can be frozen with SIGSTOP, as a dead server would be); the real
``presence-desktop`` starts with no server set, as on a first run, and is
driven with xdotool like a person would:

- ``first-run.png``: the popup's first page, asking for the server;
- ``first-run-sign-in.png``: the methods that server offers (a loopback dev
  server: sign in with a name; no GitHub button, it has no GitHub);
- ``keyboard-focus.png``: signed in, the popup reopened, Down twice: the
  current friend's focus ring;
- ``offline.png``: the server frozen, noticed by the keepalive: dimmed rows
  marked "Last known", the header saying what is wrong;
- ``dark.png``: the same app started with a dark desktop (``GTK_THEME``);
- ``hidpi-x2-popup.png`` and ``hidpi-x2-settings.png``: ``QT_SCALE_FACTOR=2``
  on a 1600×1000 screen, where the popup and Settings used to run off it.

    uv run python scripts/polish_screenshots.py [--out docs/screenshots]

Needs what scripts/screenshots.py needs (xvfb, trayer, imagemagick, xdotool,
dbus, dunst). The waits here are for other processes' windows (polled) and,
where nothing outside the app can be observed, short settle times.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import screenshots as shots  # noqa: E402

from tests.desktop.ui.xdesktop import Desktop, missing, virtual_desktop  # noqa: E402

SCENE = """
import asyncio, sys
from pathlib import Path
from presence_desktop.demo import start_demo

async def main() -> None:
    demo = await start_demo(Path(sys.argv[1]))
    print(demo.server_url, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""

KEEPALIVE_NOTICE_S = 17.0
"""Longer than the client's 15 s bound (10 s ping interval + 5 s pong timeout)."""


def start_scene(scratch: Path) -> tuple[subprocess.Popen[str], str]:
    scene = subprocess.Popen(
        [sys.executable, "-c", SCENE, str(scratch / "scene")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert scene.stdout is not None
    url = scene.stdout.readline().strip()
    if not url.startswith("ws://"):
        raise RuntimeError("the demo scene did not start")
    return scene, url


def app_env(desktop: Desktop, home: Path, **extra: str) -> dict[str, str]:
    env = dict(desktop.env)
    for var in ("CONFIG", "DATA", "STATE", "CACHE"):
        (home / var.lower()).mkdir(parents=True, exist_ok=True)
        env[f"XDG_{var}_HOME"] = str(home / var.lower())
    env["PRESENCE_BRIDGE_SOCKET"] = str(home / "bridge.sock")
    # The session is kept for the life of the process (no keychain daemon here).
    env["PYTHON_KEYRING_BACKEND"] = "benchmarks._keyring.EnvKeyring"
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def start_app(
    desktop: Desktop, env: dict[str, str], log: Path, *args: str
) -> tuple[subprocess.Popen[bytes], int, int]:
    before = shots.tray_panel(desktop)
    assert before is not None
    mark = log.stat().st_size if log.exists() else 0
    with log.open("a") as out:
        app = subprocess.Popen(
            [sys.executable, "-m", "presence_desktop", "--verbose", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    panel = shots.wait_for(
        lambda: (p := shots.tray_panel(desktop)) and p[2] > before[2] + 8 and p,
        "the tray icon to dock",
    )
    # The early icon docks before the ui is built; clicks count once it is.
    shots.wait_for(lambda: "ui up in" in log.read_text()[mark:], "the ui to start")
    assert isinstance(panel, tuple)
    icon_x, icon_y = panel[0] + panel[2] - panel[3] // 2 - 2, panel[1] + panel[3] // 2
    return app, icon_x, icon_y


def click(desktop: Desktop, x: int, y: int, button: int = 1) -> None:
    subprocess.run(
        ["xdotool", "mousemove", str(x), str(y), "click", str(button)],
        env=desktop.env,
        check=True,
    )


def open_popup(desktop: Desktop, x: int, y: int) -> tuple[int, int, int, int]:
    for _attempt in range(4):
        if shots.named(desktop, "Presence friends") is not None:
            break
        time.sleep(0.5)  # past the popup's "that click closed me" guard
        click(desktop, x, y)
        try:
            shots.wait_for(lambda: shots.named(desktop, "Presence friends"), "the popup", 3.0)
        except TimeoutError:
            continue
    popup = shots.wait_for(lambda: shots.named(desktop, "Presence friends"), "the popup")
    assert isinstance(popup, tuple)
    time.sleep(0.6)  # the popup fits itself to its content once laid out
    popup = shots.named(desktop, "Presence friends")
    assert popup is not None
    return popup


def focus_popup(desktop: Desktop) -> None:
    # No window manager: give the popup the keyboard explicitly, as a WM would.
    subprocess.run(
        ["xdotool", "search", "--name", "^Presence friends$", "windowfocus", "--sync"],
        env=desktop.env,
        check=False,
        timeout=10,
    )


def shoot_popup(desktop: Desktop, path: Path, screen: tuple[int, int, int, int]) -> None:
    # Notifications (bottom right) would overlap a tall popup's crop.
    subprocess.run(["dunstctl", "close-all"], env=desktop.env, check=False)
    time.sleep(0.2)
    popup = shots.named(desktop, "Presence friends")
    panel = shots.tray_panel(desktop)
    assert popup is not None and panel is not None
    shots.save(desktop, path, shots.clamp(shots.union(popup, panel), screen))


def sign_in_as(desktop: Desktop, name: str) -> None:
    """On the methods page: replace the suggested name and press Enter."""
    focus_popup(desktop)
    shots.keys(desktop, "ctrl+a")
    shots.type_text(desktop, name)
    shots.keys(desktop, "Return")


def stop(app: subprocess.Popen[bytes]) -> None:
    if app.poll() is None:
        app.send_signal(signal.SIGTERM)
        try:
            app.wait(timeout=20)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()


def with_dunst(desktop: Desktop, scratch: Path) -> subprocess.Popen[bytes]:
    (scratch / "dunstrc").write_text(shots.DUNSTRC)
    return subprocess.Popen(["dunst", "-config", str(scratch / "dunstrc")], env=desktop.env)


def light_and_dark(out: Path, scratch: Path, url: str, scene: subprocess.Popen[str]) -> None:
    screen = (0, 0, 1280, 800)
    log = scratch / "app.log"
    with virtual_desktop("1280x800x24", keep_bus=True) as desktop:
        dunst = with_dunst(desktop, scratch)
        home = scratch / "home"
        try:
            env = app_env(desktop, home)
            app, x, y = start_app(desktop, env, log)
            try:
                open_popup(desktop, x, y)
                shoot_popup(desktop, out / "first-run.png", screen)
                focus_popup(desktop)
                shots.type_text(desktop, url)
                shots.keys(desktop, "Return")
                time.sleep(2.0)  # one hello over loopback, then the page changes
                shoot_popup(desktop, out / "first-run-sign-in.png", screen)
                sign_in_as(desktop, "mona")
                time.sleep(3.0)  # snapshot in, the scene's friends on the list
                # Reopen: a fresh popup starts in an empty search; Down walks the rows.
                if shots.named(desktop, "Presence friends") is not None:
                    click(desktop, x, y)
                    shots.wait_for(
                        lambda: shots.named(desktop, "Presence friends") is None,
                        "the popup to close",
                    )
                open_popup(desktop, x, y)
                focus_popup(desktop)
                shots.keys(desktop, "Down", "Down")
                time.sleep(0.4)
                shoot_popup(desktop, out / "keyboard-focus.png", screen)
                shots.keys(desktop, "Escape")  # leaves the list as it was

                os.kill(scene.pid, signal.SIGSTOP)  # a frozen server: sockets open, no answers
                try:
                    time.sleep(KEEPALIVE_NOTICE_S)
                    open_popup(desktop, x, y)
                    shoot_popup(desktop, out / "offline.png", screen)
                finally:
                    os.kill(scene.pid, signal.SIGCONT)
            finally:
                stop(app)

            # The same app on a dark desktop; the server address was saved.
            env = app_env(desktop, home, GTK_THEME="Adwaita:dark")
            app, x, y = start_app(desktop, env, log)
            try:
                open_popup(desktop, x, y)
                time.sleep(2.0)  # the saved server is asked how to sign in
                sign_in_as(desktop, "mona")
                time.sleep(4.0)  # back online, the friends drawn
                open_popup(desktop, x, y)
                shoot_popup(desktop, out / "dark.png", screen)
            finally:
                stop(app)
        finally:
            dunst.terminate()
            dunst.wait(timeout=5)


def hidpi(out: Path, scratch: Path, url: str) -> None:
    screen = (0, 0, 1600, 1000)
    log = scratch / "app.log"
    with virtual_desktop("1600x1000x24", keep_bus=True) as desktop:
        dunst = with_dunst(desktop, scratch)
        try:
            env = app_env(desktop, scratch / "home-x2", QT_SCALE_FACTOR="2")
            app, x, y = start_app(desktop, env, log, "--server", url)
            try:
                open_popup(desktop, x, y)
                time.sleep(2.0)
                sign_in_as(desktop, "mona")
                time.sleep(4.0)
                popup = open_popup(desktop, x, y)
                print(f"  popup at ×2 on 1600×1000: {popup}")
                shoot_popup(desktop, out / "hidpi-x2-popup.png", screen)
                shots.open_settings(desktop, x, y)
                time.sleep(0.8)
                settings = shots.named(desktop, "Presence settings")
                assert settings is not None
                print(f"  settings at ×2 on 1600×1000: {settings}")
                shots.save(desktop, out / "hidpi-x2-settings.png", shots.clamp(settings, screen))
            finally:
                stop(app)
        finally:
            dunst.terminate()
            dunst.wait(timeout=5)


def inner(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="presence-polish-"))
    scene, url = start_scene(scratch)
    try:
        print(f"  demo scene at {url}")
        light_and_dark(out, scratch, url, scene)
        hidpi(out, scratch, url)
    finally:
        scene.terminate()
        scene.wait(timeout=20)
        if args.keep_log:
            shutil.copy(scratch / "app.log", out.parent / "polish-screenshots-app.log")
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--keep-log", action="store_true")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    gone = missing("desktop", "dbus") + [
        p for p in ("import", "convert", "xdotool") if not shutil.which(p)
    ]
    if gone:
        print(f"missing programs: {', '.join(gone)}", file=sys.stderr)
        return 2
    if not args.inner:
        return subprocess.call(
            ["dbus-run-session", "--", sys.executable, __file__, "--inner", *sys.argv[1:]]
        )
    return inner(args)


if __name__ == "__main__":
    raise SystemExit(main())
