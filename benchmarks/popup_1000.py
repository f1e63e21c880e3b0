"""How the popup copes with 1,000 friends: model reset, first show, one delta.

Targets: a model reset within one 60 Hz frame (16 ms), the popup shown (laid
out and painted once) within 100 ms, and a presence delta that touches one
friend row (a data change or a move), never a reset of the list. The same
run measures a baseline, a bare ``QListView`` over a ``QStringListModel`` of
as many names, to show what Qt alone costs on this machine. Medians of
several runs; ``--platform xcb`` measures on a real X server instead of
offscreen. Writes ``benchmarks/results/popup_1000.json``.

    uv run python -m benchmarks.popup_1000 [--friends 1000] [--runs 7]
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import Figure, write_results

DELTAS = 200


class RowWatch:
    """Counts what a model tells its views: friend rows changed or moved, resets."""

    def __init__(self, model: Any, is_friend_row: Any) -> None:
        self.rows = 0
        self.structural = 0
        self.resets = 0
        self._is_friend = is_friend_row
        model.dataChanged.connect(self._changed)
        model.rowsMoved.connect(lambda *_a: self._moved())
        model.rowsInserted.connect(lambda *_a: self._moved())
        model.rowsRemoved.connect(lambda *_a: self._moved())
        model.modelReset.connect(self._reset)
        model.layoutChanged.connect(self._reset)

    def _changed(self, top: Any, bottom: Any, *_roles: Any) -> None:
        self.rows += sum(1 for r in range(top.row(), bottom.row() + 1) if self._is_friend(r))

    def _moved(self) -> None:
        self.structural += 1

    def _reset(self, *_a: Any) -> None:
        self.resets += 1

    def take(self) -> tuple[int, int, int]:
        counts = (self.rows, self.structural, self.resets)
        self.rows = self.structural = self.resets = 0
        return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--friends", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--platform", default="offscreen")
    args = parser.parse_args(argv)
    started = time.monotonic()
    os.environ["QT_QPA_PLATFORM"] = args.platform

    from PySide6.QtCore import QStringListModel
    from PySide6.QtWidgets import QApplication, QListView

    app = QApplication.instance() or QApplication(sys.argv[:1])

    from presence_desktop.core.api import ConnectionEvents, ConnectionInfo, Link
    from presence_desktop.core.events import Signal
    from presence_desktop.core.state import PresenceState
    from presence_desktop.ui.app import DesktopUi
    from presence_desktop.ui.friends_model import Role
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
    popup = ui.popup
    assert popup is not None
    model = ui.model
    watch = RowWatch(model, lambda r: model.data(model.index(r), Role.KIND) == "friend")

    resets, snapshots, shows, deltas = [], [], [], []
    rows_per_delta, structural, delta_resets = [], 0, 0
    for _ in range(args.runs):
        core.state.friends.clear()
        t0 = time.perf_counter()
        core.state.apply_snapshot(snap)  # state + model reset + tray update
        snapshots.append(time.perf_counter() - t0)
        popup.hide()
        app.processEvents()
        t0 = time.perf_counter()
        popup.open_near(None)
        popup.repaint()  # layout + one full paint of the visible rows
        app.processEvents()
        shows.append(time.perf_counter() - t0)
        watch.take()
        t0 = time.perf_counter()
        for k in range(DELTAS):
            uid = rng.randrange(2, args.friends + 2)
            core.state.apply_presence(
                PresenceUpdate(
                    user_id=uid,
                    status=rng.choice(list(SeenStatus)),
                    activity=Activity(language="Go", since=now - k),
                )
            )
            rows, moved, reset = watch.take()
            rows_per_delta.append(rows)
            structural += moved
            delta_resets += reset
        popup.repaint()
        deltas.append((time.perf_counter() - t0) / DELTAS)

    relayouts = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        model.beginResetModel()
        model._rebuild()
        model.endResetModel()
        resets.append(time.perf_counter() - t0)
        app.processEvents()  # the view lays out every row again (variable row heights)
        relayouts.append(time.perf_counter() - t0)

    # Baseline: Qt alone, a plain list of as many names.
    names = [f.user.name or f.user.login for f in friends]
    base_model = QStringListModel()
    view = QListView()
    view.setModel(base_model)
    view.resize(popup.size())
    base_resets, base_shows = [], []
    for _ in range(args.runs):
        view.hide()
        base_model.setStringList([])
        app.processEvents()
        t0 = time.perf_counter()
        base_model.setStringList(names)
        base_resets.append(time.perf_counter() - t0)
        app.processEvents()
        t0 = time.perf_counter()
        view.show()
        view.repaint()
        app.processEvents()
        base_shows.append(time.perf_counter() - t0)
    view.hide()
    popup.hide()

    def ms(xs: list[float]) -> float:
        return statistics.median(xs) * 1000

    print(f"{args.friends} friends, {args.runs} runs, platform {args.platform}")
    print(f"  snapshot applied (state + model + tray): median {ms(snapshots):.2f} ms")
    figures = [
        Figure(
            "popup model reset (1,000 friends)",
            ms(resets),
            "ms",
            target=16,
            baseline=ms(base_resets),
            baseline_name="QStringListModel reset",
            note=f"worst {max(resets) * 1000:.2f} ms",
        ),
        Figure(
            "popup model reset plus the view's relayout of every row",
            ms(relayouts),
            "ms",
            target=None,
            note=f"worst {max(relayouts) * 1000:.2f} ms",
        ),
        Figure(
            "popup shown and painted (1,000 friends)",
            ms(shows),
            "ms",
            target=100,
            baseline=ms(base_shows),
            baseline_name="bare QListView shown",
            note=f"worst {max(shows) * 1000:.2f} ms",
        ),
        Figure(
            "friend rows repainted per presence delta (max)",
            max(rows_per_delta),
            "rows",
            target=1,
            note=f"{structural} row moves in {len(rows_per_delta)} deltas, {delta_resets} resets",
        ),
        Figure(
            "one presence delta applied (state + model + repaint)",
            ms(deltas),
            "ms",
            target=None,
        ),
    ]
    write_results(
        "popup_1000",
        figures,
        {
            "friends": args.friends,
            "runs": args.runs,
            "platform": args.platform,
            "reset_ms": [x * 1000 for x in resets],
            "reset_and_relayout_ms": [x * 1000 for x in relayouts],
            "snapshot_ms": [x * 1000 for x in snapshots],
            "show_ms": [x * 1000 for x in shows],
            "delta_ms": [x * 1000 for x in deltas],
            "baseline_reset_ms": [x * 1000 for x in base_resets],
            "baseline_show_ms": [x * 1000 for x in base_shows],
            "delta_resets": delta_resets,
            "delta_row_moves": structural,
        },
        started,
    )
    return 0 if delta_resets == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
