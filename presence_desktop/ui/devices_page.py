"""Settings → Devices: every device signed in to my account, and signing them out.

Someone who lost a laptop looks here. The page asks the controller (never
the network client) through ``DevicesActions`` and shows what comes back on
its signals; the rules of what to show live in ``core.devices.DeviceList``.
It loads the first time it is shown — not when Settings is built, so opening
Settings costs no round trip — and again only on Refresh, after "Sign out all
other devices", or when the connection comes back after it said offline or
signed out. It never polls.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QShowEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..core.api import ConnectionEvents, ConnectionInfo, Link, UserError
from ..core.devices import (
    SWEEP_NOTE,
    Device,
    DeviceList,
    DeviceSignedOut,
    DeviceSignOutFailed,
    Phase,
    exact_time,
    last_used_text,
    signed_in_text,
)
from ..core.events import Signal
from .dialogs import confirm

NAME_CHARS = 32
"""A device name is elided to about this many characters (the whole name is in
the tooltip): names have up to 64 characters and no spaces to wrap at, and
Settings opens as wide as its widest page."""


@runtime_checkable
class DevicesActions(Protocol):
    """My sessions on the server: the controller lists and revokes them."""

    connection: ConnectionEvents
    devices_listed: Signal[list[Device]]
    devices_failed: Signal[UserError]
    device_signed_out: Signal[DeviceSignedOut]
    device_sign_out_failed: Signal[DeviceSignOutFailed]
    other_devices_signed_out: Signal[int]

    def list_devices(self) -> None: ...
    def sign_out_device(self, session_id: str) -> None: ...
    def sign_out_other_devices(self) -> None: ...


class DeviceRow(QFrame):
    """One device: name (and "This computer"), when it signed in, when it was last used."""

    def __init__(
        self, device: Device, now: float, on_sign_out: Callable[[Device], None] | None
    ) -> None:
        super().__init__()
        self.device = device
        self.setObjectName(f"device-{device.session_id}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        outer = QHBoxLayout(self)
        text = QVBoxLayout()
        title = QHBoxLayout()
        self.name = QLabel()
        bold = QFont(self.name.font())
        bold.setBold(True)
        self.name.setFont(bold)
        metrics = self.name.fontMetrics()
        self.name.setText(
            metrics.elidedText(
                device.label, Qt.TextElideMode.ElideMiddle, metrics.averageCharWidth() * NAME_CHARS
            )
        )
        self.name.setToolTip(device.label)
        title.addWidget(self.name)
        self.this_computer: QLabel | None = None
        if device.current:
            self.this_computer = QLabel("This computer")
            self.this_computer.setStyleSheet("color: palette(highlight);")
            title.addWidget(self.this_computer)
        title.addStretch(1)
        text.addLayout(title)
        self.signed_in = QLabel(f"Signed in {signed_in_text(device.created_at, now)}")
        self.signed_in.setToolTip(f"Signed in {exact_time(device.created_at)}")
        self.last_used = QLabel(last_used_text(device, now))
        self.last_used.setToolTip(
            f"Last recorded use: {exact_time(device.last_used_at)}. {SWEEP_NOTE}"
        )
        for label in (self.signed_in, self.last_used):
            label.setWordWrap(True)
            text.addWidget(label)
        outer.addLayout(text, 1)
        where = "this computer" if device.current else "another device"
        self.setAccessibleName(f"{device.label}, {where}")
        self.setAccessibleDescription(f"{self.signed_in.text()}. {self.last_used.text()}.")
        self.sign_out_button: QPushButton | None = None
        if on_sign_out is not None and not device.current:
            button = QPushButton("Sign out…")
            button.setAccessibleName(f"Sign out {device.label}")
            button.setToolTip(f"Disconnect {device.label} now; it must sign in again")
            button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
            button.clicked.connect(lambda _checked=False: on_sign_out(device))
            outer.addWidget(button, 0, Qt.AlignmentFlag.AlignVCenter)
            self.sign_out_button = button


class DevicesPage(QWidget):
    """The "Devices" tab of Settings."""

    def __init__(
        self,
        actions: DevicesActions,
        *,
        clock: Callable[[], float] = time.time,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._actions = actions
        self._clock = clock
        self.model = DeviceList()
        self.rows: dict[str, DeviceRow] = {}
        self._pending: set[str] = set()
        """Devices whose sign-out is on its way (their button is disabled)."""
        self._all_pending = False
        self._shown = False
        self.confirm_box: QMessageBox | None = None
        """The open confirmation, if any (tests press its buttons)."""

        layout = QVBoxLayout(self)
        intro = QLabel(
            "Every device signed in to your account on this server. Signing a device"
            " out disconnects it at once; it has to sign in again to use Presence."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Devices status")
        layout.addWidget(self.status)
        self._list = QWidget()
        self._list_layout = QVBoxLayout(self._list)
        self._list_layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._list)
        buttons = QHBoxLayout()
        self.refresh_button = QPushButton("&Refresh")
        self.refresh_button.setAccessibleName("Refresh the list of devices")
        self.refresh_button.clicked.connect(self.refresh)
        self.sign_out_all_button = QPushButton("Sign out all &other devices…")
        self.sign_out_all_button.setAccessibleName("Sign out all other devices")
        self.sign_out_all_button.setToolTip(
            "Disconnect every device except this computer; each must sign in again"
        )
        self.sign_out_all_button.clicked.connect(self._ask_sign_out_all)
        buttons.addWidget(self.refresh_button)
        buttons.addStretch(1)
        buttons.addWidget(self.sign_out_all_button)
        layout.addLayout(buttons)
        layout.addStretch(1)

        actions.devices_listed.connect(self._listed)
        actions.devices_failed.connect(self._failed)
        actions.device_signed_out.connect(self._signed_out)
        actions.device_sign_out_failed.connect(self._sign_out_failed)
        actions.other_devices_signed_out.connect(self._others_signed_out)
        actions.connection.changed.connect(self._on_connection)
        self._render()

    # ------------------------------------------------------------ loading

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._shown:
            self._shown = True
            self.refresh()

    def refresh(self) -> None:
        """Ask for the list again (Refresh); the old rows stay until it arrives."""
        if self.model.phase is Phase.LOADING:
            return
        self.model.loading()
        self._render()
        self._actions.list_devices()

    def detach(self) -> None:
        """Stop listening to the controller (Settings closed): it outlives this page."""
        actions = self._actions
        with contextlib.suppress(ValueError):
            actions.devices_listed.disconnect(self._listed)
        with contextlib.suppress(ValueError):
            actions.devices_failed.disconnect(self._failed)
        with contextlib.suppress(ValueError):
            actions.device_signed_out.disconnect(self._signed_out)
        with contextlib.suppress(ValueError):
            actions.device_sign_out_failed.disconnect(self._sign_out_failed)
        with contextlib.suppress(ValueError):
            actions.other_devices_signed_out.disconnect(self._others_signed_out)
        with contextlib.suppress(ValueError):
            actions.connection.changed.disconnect(self._on_connection)

    # ------------------------------------------------------------ signing out

    def _ask_sign_out(self, device: Device) -> None:
        self.confirm_box = confirm(
            self,
            "Sign out device",
            f"Sign out “{device.label}”? It is disconnected now and has to sign in"
            " again to use Presence.",
            "Sign out",
            lambda: self._sign_out(device),
        )

    def _sign_out(self, device: Device) -> None:
        self._pending.add(device.session_id)
        self.model.note(f"Signing out {device.label}…")
        self._render()
        self._actions.sign_out_device(device.session_id)

    def _ask_sign_out_all(self) -> None:
        others = self.model.others
        if not others:
            return
        names = ", ".join(f"“{d.label}”" for d in others[:5])
        if len(others) > 5:
            names += f" and {len(others) - 5} more"
        self.confirm_box = confirm(
            self,
            "Sign out all other devices",
            f"Sign out {names}? Every device except this computer is disconnected"
            " now and has to sign in again.",
            "Sign out all",
            self._sign_out_all,
        )

    def _sign_out_all(self) -> None:
        self._all_pending = True
        self.model.note("Signing out every other device…")
        self._render()
        self._actions.sign_out_other_devices()

    # ------------------------------------------------------------ answers

    def _listed(self, devices: list[Device]) -> None:
        self.model.listed(devices)
        self._render()

    def _failed(self, error: UserError) -> None:
        self._all_pending = False
        self.model.failed(error)
        self._render()

    def _signed_out(self, result: DeviceSignedOut) -> None:
        self._pending.discard(result.session_id)
        self.model.signed_out(result)
        self._render()

    def _sign_out_failed(self, failure: DeviceSignOutFailed) -> None:
        self._pending.discard(failure.session_id)
        self._all_pending = False
        self.model.sign_out_failed(failure)
        self._render()

    def _others_signed_out(self, count: int) -> None:
        self._all_pending = False
        self.model.others_signed_out(count)
        self._render()

    def _on_connection(self, info: ConnectionInfo) -> None:
        if not self._shown:
            return
        if info.link is Link.ONLINE:
            if self.model.phase in (Phase.OFFLINE, Phase.SIGNED_OUT):
                self.refresh()  # "devices show once Presence is back online"
            return
        if info.link is Link.SIGNED_OUT:
            self.model.failed(UserError("Signed out", "", "signed_out"))
        elif self.model.phase is not Phase.SIGNED_OUT:
            self.model.failed(UserError("Not connected", "", "offline"))
        self._pending.clear()
        self._all_pending = False
        self._render()

    # ------------------------------------------------------------ view

    def _render(self) -> None:
        model = self.model
        self.status.setText(model.status)
        self.status.setVisible(bool(model.status))
        self.status.setStyleSheet("color: #e5534b;" if model.status_is_error else "")
        wanted = [d.session_id for d in model.devices]
        if list(self.rows) != wanted or any(
            self.rows[d.session_id].device != d for d in model.devices
        ):
            self._rebuild(model.devices)
        for session_id, row in self.rows.items():
            if row.sign_out_button is not None:
                row.sign_out_button.setEnabled(
                    session_id not in self._pending and not self._all_pending
                )
        self.refresh_button.setEnabled(model.phase is not Phase.LOADING and not self._all_pending)
        self.sign_out_all_button.setEnabled(
            model.phase is Phase.LOADED and bool(model.others) and not self._all_pending
        )

    def _rebuild(self, devices: list[Device]) -> None:
        for row in self.rows.values():
            self._list_layout.removeWidget(row)
            row.hide()
            row.deleteLater()
        self.rows = {}
        now = self._clock()
        for device in devices:
            row = DeviceRow(device, now, self._ask_sign_out)
            self._list_layout.addWidget(row)
            if self.isVisible():
                row.show()  # at once, not when the layout gets round to it
            self.rows[device.session_id] = row
        # Tab order: the rows' buttons top to bottom, then Refresh and "all other".
        # Rows are made after the rest of the window, so Qt would put them at the
        # end of its chain (after Save and Cancel). Qt can only place a widget
        # *after* a focusable one, so they go after whatever takes focus before
        # Refresh (the tab bar in Settings).
        buttons = [r.sign_out_button for r in self.rows.values() if r.sign_out_button is not None]
        order: list[QWidget] = []
        before = self._focusable_before(self.refresh_button)
        if before is not None:
            order.append(before)
        order += [*buttons, self.refresh_button, self.sign_out_all_button]
        for first, second in itertools.pairwise(order):
            QWidget.setTabOrder(first, second)

    def _focusable_before(self, widget: QWidget) -> QWidget | None:
        """The nearest widget before ``widget`` in the focus chain that takes focus
        and is not a row's (old rows wait for deleteLater there)."""
        step = widget.previousInFocusChain()
        while step is not None and step is not widget:
            if step.focusPolicy() != Qt.FocusPolicy.NoFocus and not isinstance(
                step.parentWidget(), DeviceRow
            ):
                return step
            step = step.previousInFocusChain()
        return None
