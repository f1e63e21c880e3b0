"""Screenshots of the real demo on a virtual screen: tray menu, popup, notification,
settings.

Runs ``presence-desktop --demo`` as a subprocess on Xvfb with trayer as the
tray host, inside a private D-Bus session with dunst as the notification
daemon, waits for each state (icon docked, popup mapped, Notify seen on the
bus, menu mapped) and writes docs/screenshots/{popup,notification,tray-menu,
settings,delete-account,devices}.png. A fake editor window speaks the bridge protocol to the app, so
the "Friends see" lines have an activity to show; the settings shot adds a
privacy rule with the keyboard, as a person would, and captures the page
with the rule and its live preview; then "Delete my account…" on the General
page, with the login typed so Delete is enabled (never clicked); then the
Devices page with the demo user's other devices (devices.png), the
confirmation of signing the oldest out, reached with the keyboard
(devices-sign-out.png), and the page after it (devices-signed-out.png).
``--only delete-account`` or ``--only devices`` skips the other shots.
Also reports cold start to icon-docked time and the app's RSS.

    uv run python scripts/screenshots.py [--out docs/screenshots] [--command ...]

Needs: xvfb xauth x11-utils trayer imagemagick xdotool dbus dunst.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.desktop.ui.xdesktop import Desktop, missing, virtual_desktop  # noqa: E402

WAIT = 30.0
MAX_PNG_BYTES = 300_000
DUNSTRC = """\
[global]
    origin = bottom-right
    offset = 16x16
    width = 360
    font = DejaVu Sans 10
    frame_width = 1
    frame_color = "#4c566a"
    corner_radius = 6
    padding = 12
    horizontal_padding = 12
    icon_position = left
    max_icon_size = 48
    show_indicators = no
[urgency_normal]
    background = "#2e3440"
    foreground = "#eceff4"
    timeout = 0
"""

Rect = tuple[int, int, int, int]

EDITOR_ACTIVITY = {
    "type": "activity",
    "workspace": "api",
    "folder": "/home/ada/src/api",
    "git_remote": "git@github.com:acme/api.git",
    "file": "handlers.py",
    "language": "python",
    "kind": "coding",
    "focused": True,
}


def connect_editor(path: Path) -> socket.socket:
    """A VS Code window as the bridge sees it: hello, then one activity; kept open."""

    def attempt() -> socket.socket | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
        except OSError:
            sock.close()
            return None
        return sock

    sock = wait_for(attempt, "the editor bridge")
    assert isinstance(sock, socket.socket)
    sock.settimeout(10)
    hello = {"type": "hello", "bridge": 1, "editor": "Visual Studio Code", "window": "1"}
    sock.sendall(json.dumps(hello).encode() + b"\n")
    reply = sock.makefile("rb").readline()
    assert json.loads(reply)["type"] == "hello", reply
    sock.sendall(json.dumps(EDITOR_ACTIVITY).encode() + b"\n")
    return sock


def keys(desktop: Desktop, *names: str) -> None:
    subprocess.run(["xdotool", "key", "--delay", "60", *names], env=desktop.env, check=True)


def type_text(desktop: Desktop, text: str) -> None:
    subprocess.run(["xdotool", "type", "--delay", "20", text], env=desktop.env, check=True)


def wait_for(predicate: Callable[[], object], what: str, timeout: float = WAIT) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)  # other processes' windows: poll their visible effect
    raise TimeoutError(f"timed out waiting for {what}")


def geometry(desktop: Desktop, *args: str) -> Rect | None:
    """Absolute geometry of a viewable window found by xwininfo ``args``."""
    proc = subprocess.run(
        ["xwininfo", *args], env=desktop.env, capture_output=True, text=True, timeout=10
    )
    if proc.returncode != 0 or "IsViewable" not in proc.stdout:
        return None
    values = {
        key: int(m.group(1))
        for key, pattern in (
            ("x", r"Absolute upper-left X:\s+(-?\d+)"),
            ("y", r"Absolute upper-left Y:\s+(-?\d+)"),
            ("w", r"Width:\s+(\d+)"),
            ("h", r"Height:\s+(\d+)"),
        )
        if (m := re.search(pattern, proc.stdout))
    }
    return (values["x"], values["y"], values["w"], values["h"]) if len(values) == 4 else None


def named(desktop: Desktop, prefix: str) -> Rect | None:
    """The first viewable window whose name starts with ``prefix``."""
    for m in re.finditer(r'^\s+(0x[0-9a-f]+) "([^"]*)"', desktop.windows(), flags=re.M):
        if m.group(2).startswith(prefix):
            rect = geometry(desktop, "-id", m.group(1))
            if rect is not None:
                return rect
    return None


def tray_panel(desktop: Desktop) -> Rect | None:
    m = re.search(
        r'"panel": \("panel" "trayer"\)\s+(\d+)x(\d+)\+(-?\d+)\+(-?\d+)', desktop.windows()
    )
    if not m:
        return None
    w, h, x, y = map(int, m.groups())
    return (x, y, w, h)


def new_popup_windows(desktop: Desktop, before: set[str]) -> list[Rect]:
    """Viewable windows that appeared since ``before`` (menus are override-redirect)."""
    found = []
    for line in desktop.windows().splitlines():
        m = re.match(
            r"\s+(0x[0-9a-f]+) .*?\s(\d+)x(\d+)\+(-?\d+)\+(-?\d+)\s+\+(-?\d+)\+(-?\d+)", line
        )
        if not m or m.group(1) in before:
            continue
        wid = m.group(1)
        rect = geometry(desktop, "-id", wid)
        if rect and rect[2] > 60 and rect[3] > 60:
            found.append(rect)
    return found


def window_ids(desktop: Desktop) -> set[str]:
    return set(re.findall(r"^\s+(0x[0-9a-f]+)", desktop.windows(), flags=re.M))


def clamp(rect: Rect, screen: Rect) -> Rect:
    x, y, w, h = rect
    sx, sy, sw, sh = screen
    x0, y0 = max(sx, x), max(sy, y)
    x1, y1 = min(sx + sw, x + w), min(sy + sh, y + h)
    return (x0, y0, x1 - x0, y1 - y0)


def union(*rects: Rect, pad: int = 12) -> Rect:
    x0 = min(r[0] for r in rects) - pad
    y0 = min(r[1] for r in rects) - pad
    x1 = max(r[0] + r[2] for r in rects) + pad
    y1 = max(r[1] + r[3] for r in rects) + pad
    return (x0, y0, x1 - x0, y1 - y0)


def save(desktop: Desktop, path: Path, crop: Rect) -> None:
    desktop.screenshot(path, crop)
    # Fewer colours keep the PNGs small; the UI has few gradients.
    subprocess.run(
        ["convert", str(path), "-strip", "-colors", "256", f"PNG8:{path}"], check=True, timeout=30
    )
    size = path.stat().st_size
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    print(f"  wrote {shown} ({size // 1024} KB)")
    if size > MAX_PNG_BYTES:
        raise RuntimeError(f"{path} is {size} bytes, over {MAX_PNG_BYTES}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class BusWatch:
    """dbus-monitor for Notify calls, counted on a reader thread."""

    def __init__(self, env: dict[str, str]) -> None:
        self.calls = 0
        self.text: list[str] = []
        self.proc = subprocess.Popen(
            [
                "dbus-monitor",
                "--session",
                "type='method_call',interface='org.freedesktop.Notifications',member='Notify'",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.text.append(line)
            if "member=Notify" in line:
                self.calls += 1

    def count(self) -> int:
        return self.calls

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)


def inner(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="presence-shots-"))
    figures: dict[str, object] = {}
    with virtual_desktop(args.screen, keep_bus=True) as desktop:
        env = dict(desktop.env)
        for var in ("CONFIG", "DATA", "STATE", "CACHE"):
            (scratch / var.lower()).mkdir()
            env[f"XDG_{var}_HOME"] = str(scratch / var.lower())
        env["PRESENCE_BRIDGE_SOCKET"] = str(scratch / "bridge.sock")
        screen_w, screen_h = map(int, args.screen.split("x")[:2])
        screen = (0, 0, screen_w, screen_h)
        (scratch / "dunstrc").write_text(DUNSTRC)
        dunst = subprocess.Popen(["dunst", "-config", str(scratch / "dunstrc")], env=env)
        wait_for(
            lambda: "true"
            in subprocess.run(
                [
                    "dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.Notifications",
                ],
                env=env, capture_output=True, text=True,
            ).stdout,
            "dunst on the session bus",
        )  # fmt: skip
        bus = BusWatch(env)
        time.sleep(0.3)  # dbus-monitor must have added its match rule before the app starts

        before = tray_panel(desktop)
        assert before is not None
        command = shlex.split(args.command) if args.command else [
            sys.executable, "-m", "presence_desktop", "--demo", "--verbose",
        ]  # fmt: skip
        log = (scratch / "app.log").open("w")
        started = time.monotonic()
        app = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        editor: socket.socket | None = None
        try:
            panel = wait_for(
                lambda: (p := tray_panel(desktop)) and p[2] > before[2] + 8 and p,
                "the tray icon to dock",
            )
            figures["cold_start_to_icon_docked_ms"] = round((time.monotonic() - started) * 1000)
            assert isinstance(panel, tuple)
            print(
                f"  icon docked after {figures['cold_start_to_icon_docked_ms']} ms: panel {panel}"
            )

            icon_x, icon_y = panel[0] + panel[2] - panel[3] // 2 - 2, panel[1] + panel[3] // 2
            if args.only in ("delete-account", "devices"):
                wait_for(lambda: named(desktop, "Presence friends"), "the popup")
                wait_for(lambda: bus.count() >= args.notifications, "the demo's notifications")
                subprocess.run(["dunstctl", "close-all"], env=env, check=False)
                open_settings(desktop, icon_x, icon_y)
                if args.only == "delete-account":
                    shoot_delete_dialog(desktop, out, screen)
                else:
                    shoot_devices_page(desktop, out, screen)
                return finish(app, figures, args, scratch, out, editor, bus, dunst, log)

            editor = connect_editor(scratch / "bridge.sock")
            popup = wait_for(lambda: named(desktop, "Presence friends"), "the popup")
            assert isinstance(popup, tuple)
            # The demo's opening: a message, then a friend request (two notifications).
            wait_for(lambda: bus.count() >= args.notifications, "the demo's notifications")
            time.sleep(args.settle)  # let the simulated friends finish their first moves
            figures["rss_mb_after_start"] = round(rss_mb(app.pid), 1)
            save(desktop, out / "popup.png", clamp(union(popup, panel), screen))

            note = wait_for(lambda: named(desktop, "Dunst"), "the notification")
            assert isinstance(note, tuple)
            save(desktop, out / "notification.png", clamp(union(note, pad=24), screen))

            # Close the popup (left click toggles it), then open the tray menu.
            subprocess.run(
                ["xdotool", "mousemove", str(icon_x), str(icon_y), "click", "1"],
                env=env,
                check=True,
            )
            wait_for(lambda: named(desktop, "Presence friends") is None, "the popup to close")
            ids = window_ids(desktop)
            window_ids_before_menu = ids
            subprocess.run(["xdotool", "click", "3"], env=env, check=True)
            menu = wait_for(lambda: new_popup_windows(desktop, ids), "the tray menu")
            assert isinstance(menu, list)
            menu_rect = menu[0]
            # Hover "My status" (second entry) so its submenu shows too.
            ids = window_ids(desktop)
            row = menu_rect[3] / 7
            subprocess.run(
                ["xdotool", "mousemove", str(menu_rect[0] + menu_rect[2] // 2),
                 str(int(menu_rect[1] + row * 1.5))],
                env=env, check=True,
            )  # fmt: skip
            sub = wait_for(lambda: new_popup_windows(desktop, ids), "the status submenu", 5)
            assert isinstance(sub, list)
            rects = [menu_rect, panel, *sub]
            # …and "Away" in it, so the durations show as well.
            ids = window_ids(desktop)
            sx, sy, sw, sh = sub[0]
            subprocess.run(
                ["xdotool", "mousemove", str(sx + sw // 2), str(int(sy + sh / 4 * 1.5))],
                env=env, check=True,
            )  # fmt: skip
            durations = wait_for(lambda: new_popup_windows(desktop, ids), "the durations", 5)
            assert isinstance(durations, list)
            rects += durations
            save(desktop, out / "tray-menu.png", clamp(union(*rects), screen))
            keys(desktop, "Escape", "Escape", "Escape")  # durations, status, menu
            wait_for(
                lambda: menu_rect not in new_popup_windows(desktop, window_ids_before_menu),
                "the menus to close",
            )

            # Settings: from the tray menu with the keyboard, then a rule on the privacy page.
            open_settings(desktop, icon_x, icon_y)
            keys(desktop, "alt+p", "alt+a")  # the Privacy tab, then Add…
            wait_for(lambda: named(desktop, "Add rule"), "the rule dialog")
            type_text(desktop, "github.com/acme/*")
            keys(desktop, "Tab", "Tab", "Tab")  # folder, level (kept: project), shown name
            type_text(desktop, "Acme API")
            keys(desktop, "Return")
            wait_for(lambda: named(desktop, "Add rule") is None, "the rule dialog to close")
            # The demo's notifications stay (timeout 0) and may overlap the window.
            subprocess.run(["dunstctl", "close-all"], env=env, check=False)
            wait_for(lambda: named(desktop, "Dunst") is None, "the notifications to close")
            time.sleep(0.3)  # one paint after the table and the preview changed
            settings = named(desktop, "Presence settings")
            assert settings is not None
            save(desktop, out / "settings.png", clamp(union(settings, pad=8), screen))
            shoot_delete_dialog(desktop, out, screen)
            shoot_devices_page(desktop, out, screen)
            keys(desktop, "Escape")
        except BaseException:
            # The app's own account of what happened (it runs with --verbose),
            # read before ``finish`` removes the scratch directory with it.
            log.flush()
            tail = (scratch / "app.log").read_text(errors="replace").splitlines()[-40:]
            finish(app, figures, args, scratch, out, editor, bus, dunst, log)
            print("app log, last lines:", *tail, sep="\n  ", file=sys.stderr)
            raise
        return finish(app, figures, args, scratch, out, editor, bus, dunst, log)


def open_settings(desktop: Desktop, icon_x: int, icon_y: int) -> None:
    """Settings… from the tray menu, with the keyboard as a person would."""
    ids = window_ids(desktop)
    subprocess.run(
        ["xdotool", "mousemove", str(icon_x), str(icon_y), "click", "3"],
        env=desktop.env, check=True,
    )  # fmt: skip
    wait_for(lambda: new_popup_windows(desktop, ids), "the tray menu")
    keys(desktop, "Down", "Down", "Down", "Down", "Return")  # 4th entry: Settings…
    wait_for(lambda: named(desktop, "Presence settings"), "the settings window")


def shoot_delete_dialog(desktop: Desktop, out: Path, screen: Rect) -> None:
    """The General page's "Delete my account…", the login typed; Delete is never clicked."""
    # No window manager: after the rule dialog closed, nothing has the keyboard.
    subprocess.run(
        ["xdotool", "search", "--name", "^Presence settings$", "windowfocus", "--sync"],
        env=desktop.env, check=True, timeout=10,
    )  # fmt: skip
    keys(desktop, "alt+g", "alt+l")  # General, then De&lete my account…
    wait_for(lambda: named(desktop, "Delete my account"), "the delete dialog")
    type_text(desktop, "mona")
    time.sleep(0.3)  # one paint after the button was enabled
    dialog = named(desktop, "Delete my account")
    assert dialog is not None
    save(desktop, out / "delete-account.png", clamp(union(dialog, pad=0), screen))
    keys(desktop, "Escape")
    wait_for(lambda: named(desktop, "Delete my account") is None, "the delete dialog to close")


def shoot_devices_page(desktop: Desktop, out: Path, screen: Rect) -> None:
    """Settings → Devices: this computer and the demo user's other devices."""
    subprocess.run(
        ["xdotool", "search", "--name", "^Presence settings$", "windowfocus", "--sync"],
        env=desktop.env, check=True, timeout=10,
    )  # fmt: skip
    keys(desktop, "alt+d")  # the &Devices tab: it loads when first shown
    time.sleep(1.0)  # one round trip to the demo's server on loopback, then a paint
    settings = named(desktop, "Presence settings")
    assert settings is not None
    save(desktop, out / "devices.png", clamp(union(settings, pad=8), screen))
    # With the keyboard, as a person would: Tab (to the tab bar), Tab (the first
    # row's "Sign out…"), Space; the confirmation names the device.
    keys(desktop, "Tab", "Tab", "space")
    box = wait_for(lambda: named(desktop, "Sign out device"), "the sign-out confirmation")
    assert isinstance(box, tuple)
    time.sleep(0.3)  # one paint
    save(desktop, out / "devices-sign-out.png", clamp(union(settings, box, pad=8), screen))
    # Cancel is the default button (Enter would cancel): Shift+Tab to "Sign
    # out", Space; the demo's old laptop goes.
    keys(desktop, "shift+Tab", "space")
    wait_for(lambda: named(desktop, "Sign out device") is None, "the confirmation to close")
    time.sleep(1.0)  # the revocation's round trip, then a paint
    save(desktop, out / "devices-signed-out.png", clamp(union(settings, pad=8), screen))


def finish(
    app: subprocess.Popen[bytes],
    figures: dict[str, object],
    args: argparse.Namespace,
    scratch: Path,
    out: Path,
    editor: socket.socket | None,
    bus: BusWatch,
    dunst: subprocess.Popen[bytes],
    log: IO[str],
) -> int:
    """Stop the app (SIGTERM, as a session ending would) and everything around it."""
    if editor is not None:
        editor.close()
    if app.poll() is None:
        app.send_signal(signal.SIGTERM)
        try:
            figures["exit_code"] = app.wait(timeout=15)
        except subprocess.TimeoutExpired:
            app.kill()
            figures["exit_code"] = "killed"
    bus.stop()
    if dunst.poll() is None:
        dunst.terminate()
        dunst.wait(timeout=5)
    log.close()
    if args.keep_log:
        shutil.copy(scratch / "app.log", out.parent / "screenshots-app.log")
    shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(figures))
    return 0 if figures.get("exit_code") == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--screen", default="1280x800x24")
    parser.add_argument("--command", help="run this instead of the demo (for debugging)")
    parser.add_argument("--settle", type=float, default=1.5, help="seconds after the first alert")
    parser.add_argument("--keep-log", action="store_true")
    parser.add_argument(
        "--notifications", type=int, default=2, help="Notify calls to wait for before shooting"
    )
    parser.add_argument(
        "--only",
        choices=["all", "delete-account", "devices"],
        default="all",
        help="which shots to take",
    )
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    gone = missing("desktop", "dbus") + [
        p for p in ("import", "convert", "xdotool") if not shutil.which(p)
    ]
    if gone:
        print(f"missing programs: {', '.join(gone)}", file=sys.stderr)
        return 2
    if not args.inner:
        # A private session bus so dunst and the app never touch the real one.
        return subprocess.call(
            ["dbus-run-session", "--", sys.executable, __file__, "--inner", *sys.argv[1:]]
        )
    return inner(args)


if __name__ == "__main__":
    sys.exit(main())
