"""Screenshots of conversations (issue 17) in the real demo on a virtual screen.

Runs ``presence-desktop --demo`` on Xvfb (a display from :61–:69) with trayer
as the tray host and dunst as the notification daemon in a private D-Bus
session, waits for the demo's first message and friend request, then writes
to docs/screenshots/:

- ``tray-unread.png``: the tray icon with the unread count (enlarged 4×);
- ``notification-actions.png``: the friend request's notification, with the
  friend's avatar and its actions (dunst lists them in its context menu);
- ``conversation-list.png``: the inbox as the list of conversations, reached by
  clicking the red "Inbox · n" pill in the popup's header;
- ``conversation.png``: a conversation opened from that list by clicking its
  unread count, after typing a reply with the keyboard (Enter sends).

Widgets are found on screen the way a person finds them, by their colour
(the red unread pills), because the app runs in its own process.

    uv run python scripts/screenshots_conversations.py [--out docs/screenshots]

Needs: xvfb trayer imagemagick xdotool dbus dunst.
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

from screenshots import (  # noqa: E402
    DUNSTRC,
    BusWatch,
    Rect,
    clamp,
    named,
    save,
    tray_panel,
    union,
    wait_for,
)

from tests.desktop.ui.xdesktop import Desktop, _start_trayer  # noqa: E402

DISPLAYS = range(61, 70)
REPLY = "Sure! 12:30 at the usual place? Menu: https://example.org/lunch"


def start_xvfb(screen: str) -> tuple[subprocess.Popen[bytes], str]:
    """Xvfb on the first free display of :61–:69 (the range this work may use)."""
    for n in DISPLAYS:
        if Path(f"/tmp/.X{n}-lock").exists() or Path(f"/tmp/.X11-unix/X{n}").exists():
            continue
        proc = subprocess.Popen(
            ["Xvfb", f":{n}", "-screen", "0", screen, "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        socket_path = Path(f"/tmp/.X11-unix/X{n}")
        try:
            wait_for(
                lambda proc=proc, path=socket_path: path.exists() or proc.poll() is not None,
                f"Xvfb :{n}",
            )
        except TimeoutError:
            proc.kill()
            continue
        if proc.poll() is None:
            return proc, f":{n}"
    raise RuntimeError("no free display in :61–:69")


def red_pills(path: Path, region: Rect) -> list[tuple[int, int]]:
    """Centres of the red (#e5534b) unread pills inside ``region`` of a screenshot."""
    from PySide6.QtGui import QImage

    image = QImage(str(path))
    x0, y0, w, h = region
    hits = [
        (x, y)
        for y in range(max(0, y0), min(image.height(), y0 + h))
        for x in range(max(0, x0), min(image.width(), x0 + w))
        if _is_pill_red(image.pixelColor(x, y))
    ]
    boxes: list[list[int]] = []  # [x0, y0, x1, y1, count]
    for x, y in hits:
        for box in boxes:
            if box[0] - 10 <= x <= box[2] + 10 and y <= box[3] + 2:
                box[0], box[2], box[3] = min(box[0], x), max(box[2], x), max(box[3], y)
                box[4] += 1
                break
        else:
            boxes.append([x, y, x, y, 1])
    centres = [((b[0] + b[2]) // 2, (b[1] + b[3]) // 2) for b in boxes if b[4] >= 20]
    return sorted(centres, key=lambda c: c[1])


def _is_pill_red(c: object) -> bool:
    r, g, b = c.red(), c.green(), c.blue()  # type: ignore[attr-defined]
    return r > 200 and 60 < g < 110 and 50 < b < 100


def click(desktop: Desktop, x: int, y: int) -> None:
    subprocess.run(
        ["xdotool", "mousemove", str(x), str(y), "click", "1"], env=desktop.env, check=True
    )


def inner(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="presence-conv-shots-"))
    processes: list[subprocess.Popen[bytes]] = []
    xvfb, display = start_xvfb(args.screen)
    processes.append(xvfb)
    runtime = scratch / "runtime"
    runtime.mkdir(mode=0o700)
    env = dict(os.environ)
    env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb", XDG_RUNTIME_DIR=str(runtime))
    env.pop("WAYLAND_DISPLAY", None)
    for var in ("CONFIG", "DATA", "STATE", "CACHE"):
        (scratch / var.lower()).mkdir()
        env[f"XDG_{var}_HOME"] = str(scratch / var.lower())
    env["PRESENCE_BRIDGE_SOCKET"] = str(scratch / "bridge.sock")
    desktop = Desktop(display, env, processes)
    app: subprocess.Popen[bytes] | None = None
    bus: BusWatch | None = None
    try:
        _start_trayer(desktop)
        w, h = map(int, args.screen.split("x")[:2])
        screen = (0, 0, w, h)
        (scratch / "dunstrc").write_text(
            DUNSTRC.replace("show_indicators = no", "show_indicators = yes")
        )
        processes.append(subprocess.Popen(["dunst", "-config", str(scratch / "dunstrc")], env=env))
        wait_for(
            lambda: "true"
            in subprocess.run(
                ["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
                 "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner",
                 "string:org.freedesktop.Notifications"],
                env=env, capture_output=True, text=True,
            ).stdout,
            "dunst on the session bus",
        )  # fmt: skip
        bus = BusWatch(env)
        time.sleep(0.3)  # dbus-monitor must have added its match rule before the app starts
        before = tray_panel(desktop)
        assert before is not None
        log = (scratch / "app.log").open("w")
        app = subprocess.Popen(
            [sys.executable, "-m", "presence_desktop", "--demo", "--verbose"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        panel = wait_for(
            lambda: (p := tray_panel(desktop)) and p[2] > before[2] + 8 and p,
            "the tray icon to dock",
        )
        assert isinstance(panel, tuple)
        icon_x, icon_y = panel[0] + panel[2] - panel[3] // 2 - 2, panel[1] + panel[3] // 2
        wait_for(lambda: named(desktop, "Presence friends"), "the popup")
        # The demo's opening: a message, then a friend request (two notifications);
        # more messages follow within seconds.
        wait_for(lambda: bus is not None and bus.count() >= 2, "the demo's notifications")
        time.sleep(args.settle)

        note = wait_for(lambda: named(desktop, "Dunst"), "the notification")
        assert isinstance(note, tuple)
        save(desktop, out / "notification-actions.png", clamp(union(note, pad=24), screen))

        click(desktop, icon_x, icon_y)  # close the popup: the icon alone
        wait_for(lambda: named(desktop, "Presence friends") is None, "the popup to close")
        subprocess.run(["dunstctl", "close-all"], env=env, check=False)
        time.sleep(0.5)
        tray = scratch / "tray.png"
        crop = clamp((panel[0] - 12, panel[1], panel[2] + 24, panel[3] + 8), screen)
        desktop.screenshot(tray, crop)
        subprocess.run(
            ["convert", str(tray), "-scale", "400%", str(out / "tray-unread.png")], check=True
        )
        print(f"  wrote {out / 'tray-unread.png'}")

        click(desktop, icon_x, icon_y)
        popup = wait_for(lambda: named(desktop, "Presence friends"), "the popup")
        assert isinstance(popup, tuple)
        time.sleep(0.5)
        shot = scratch / "popup.png"
        desktop.screenshot(shot)
        px, py, pw, ph = popup
        inbox = red_pills(shot, (px + pw // 3, py, pw * 2 // 3, 60))
        if not inbox:
            raise RuntimeError("no red 'Inbox · n' pill in the popup header")
        click(desktop, *inbox[0])
        time.sleep(0.8)
        save(desktop, out / "conversation-list.png", clamp(union(popup, pad=8), screen))

        desktop.screenshot(shot)
        rows = red_pills(shot, (px + pw // 2, py + 90, pw // 2, ph - 100))
        if not rows:
            raise RuntimeError("no unread pill in the conversation list")
        click(desktop, *rows[0])
        time.sleep(0.8)
        subprocess.run(
            ["xdotool", "type", "--delay", "15", "On my way in a minute."], env=env, check=True
        )
        subprocess.run(["xdotool", "key", "shift+Return"], env=env, check=True)
        subprocess.run(["xdotool", "type", "--delay", "15", REPLY], env=env, check=True)
        subprocess.run(["xdotool", "key", "Return"], env=env, check=True)
        time.sleep(args.settle)  # delivered, then the friend's answer (the demo answers once)
        save(desktop, out / "conversation.png", clamp(union(popup, pad=8), screen))
        return 0
    finally:
        if app is not None and app.poll() is None:
            app.send_signal(signal.SIGTERM)
            try:
                app.wait(timeout=15)
            except subprocess.TimeoutExpired:
                app.kill()
        if bus is not None:
            bus.stop()
        for proc in reversed(processes):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(processes):
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        if args.keep_log and (scratch / "app.log").exists():
            shutil.copy(scratch / "app.log", out.parent / "screenshots-conversations-app.log")
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--screen", default="1280x800x24")
    parser.add_argument("--settle", type=float, default=4.0)
    parser.add_argument("--keep-log", action="store_true")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.inner:
        return subprocess.call(
            ["dbus-run-session", "--", sys.executable, __file__, "--inner", *sys.argv[1:]]
        )
    return inner(args)


if __name__ == "__main__":
    sys.exit(main())
