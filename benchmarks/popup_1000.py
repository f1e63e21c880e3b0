"""How the popup copes with 1,000 friends: model reset, first show, one delta.

Targets: a model reset within one 60 Hz frame (16 ms) and the popup shown
(laid out and painted once) within 100 ms. Prints the median and worst of
several runs; ``--platform xcb`` measures on a real X server instead of
offscreen.

    uv run python benchmarks/popup_1000.py [--friends 1000] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--friends", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--platform", default="offscreen")
    args = parser.parse_args()
    os.environ["QT_QPA_PLATFORM"] = args.platform

    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])

    from presence_desktop.core.api import AlertKind, ConnectionEvents, ConnectionInfo, Link
    from presence_desktop.core.events import Signal
    from presence_desktop.core.state import PresenceState
    from presence_desktop.ui.app import DesktopUi
    from presence_desktop.ui.notifications import LogBackend
    from presence_protocol import (
        Activity,
        Friend,
        Presence,
        PresenceUpdate,
        SeenStatus,
        Snapshot,
        User,
    )
    from tests.desktop.ui.fakes import FakeActions

    del AlertKind
    rng = random.Random(7)
    now = int(time.time())
    languages = ["Python", "Rust", "Go", "TypeScript", "C++", "Kotlin", None]
    friends = []
    for i in range(2, args.friends + 2):
        status = rng.choice(list(SeenStatus))
        lang = rng.choice(languages)
        activity = (
            Activity(language=lang, project=f"project-{i % 37}", since=now - rng.randrange(9000))
            if lang and status is not SeenStatus.OFFLINE
            else None
        )
        friends.append(
            Friend(
                user=User(id=i, login=f"friend-{i}", name=f"Friend Number {i}" if i % 3 else None),
                presence=Presence(status=status, activity=activity, last_seen=now - i * 60),
            )
        )
    snap = Snapshot(me=User(id=1, login="me"), friends=friends)

    class Core:
        def __init__(self) -> None:
            self.state = PresenceState()
            self.connection = ConnectionEvents()
            self.alerts: Signal[object] = Signal()

    core = Core()
    actions = FakeActions(core.state)
    ui = DesktopUi(
        core,  # type: ignore[arg-type]
        actions,
        cache_dir=Path(tempfile.mkdtemp()),
        tray_available=True,
        backends=[LogBackend()],
    )
    core.connection.set(ConnectionInfo(Link.ONLINE))
    assert ui.popup is not None

    resets, shows, deltas = [], [], []
    for _ in range(args.runs):
        core.state.friends.clear()
        t0 = time.perf_counter()
        core.state.apply_snapshot(snap)  # state + model reset + tray update
        resets.append(time.perf_counter() - t0)
        ui.popup.hide()
        app.processEvents()
        t0 = time.perf_counter()
        ui.popup.open_near(None)
        ui.popup.repaint()  # layout + one full paint of the visible rows
        app.processEvents()
        shows.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for k in range(100):
            uid = rng.randrange(2, args.friends + 2)
            core.state.apply_presence(
                PresenceUpdate(
                    user_id=uid,
                    status=rng.choice(list(SeenStatus)),
                    activity=Activity(language="Go", since=now - k),
                )
            )
        ui.popup.repaint()
        deltas.append((time.perf_counter() - t0) / 100)

    model_only = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        ui.model.beginResetModel()
        ui.model._rebuild()
        ui.model.endResetModel()
        model_only.append(time.perf_counter() - t0)

    def fmt(xs: list[float]) -> str:
        return f"median {statistics.median(xs) * 1000:6.2f} ms, worst {max(xs) * 1000:6.2f} ms"

    print(f"{args.friends} friends, {args.runs} runs, platform {args.platform}")
    print(f"  model reset (rebuild + view)     {fmt(model_only)}   target <= 16 ms")
    print(f"  snapshot applied (state + model) {fmt(resets)}")
    print(f"  popup shown and painted          {fmt(shows)}   target <= 100 ms")
    print(f"  one presence delta (+ repaint/100) {fmt(deltas)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
