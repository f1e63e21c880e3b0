"""Pure presentation rules: sections, search, initials, colours, badges, placement."""

from __future__ import annotations

import pytest

from presence_desktop.core.api import ConnectionInfo, Link
from presence_desktop.core.state import FriendView
from presence_desktop.ui.present import (
    Badge,
    Section,
    avatar_hue,
    badge_for,
    initials,
    matches,
    popup_position,
    section_of,
    tray_tooltip,
)
from presence_protocol import SeenStatus, Status


def test_dnd_counts_as_online_and_away_and_offline_have_their_own_sections() -> None:
    assert section_of(SeenStatus.ONLINE) is Section.ONLINE
    assert section_of(SeenStatus.DND) is Section.ONLINE
    assert section_of(SeenStatus.AWAY) is Section.AWAY
    assert section_of(SeenStatus.OFFLINE) is Section.OFFLINE


def test_search_matches_every_word_in_login_name_or_activity() -> None:
    f = FriendView(user_id=2, login="octo-cat", name="Mona Lisa")
    assert matches(f, "", "Online")
    assert matches(f, "OCTO", "")
    assert matches(f, "mona rust", "Coding · Rust · tokio")
    assert not matches(f, "mona python", "Coding · Rust · tokio")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Ada Lovelace", "AL"), ("octo-cat", "OC"), ("bob", "BO"), ("x", "X"), ("", "?")],
)
def test_initials(name: str, expected: str) -> None:
    assert initials(name) == expected


def test_avatar_colour_is_stable_per_login_and_ignores_case() -> None:
    assert avatar_hue("Alice") == avatar_hue("alice")
    hues = {avatar_hue(f"user{i}") for i in range(50)}
    assert len(hues) > 4  # logins spread over the palette


def test_badge_shows_disconnected_unless_online() -> None:
    assert badge_for(Link.ONLINE, Status.DND) is Badge.DND
    assert badge_for(Link.ONLINE, Status.INVISIBLE) is Badge.INVISIBLE
    for link in (Link.SIGNED_OUT, Link.CONNECTING, Link.RECONNECTING, Link.OFFLINE):
        assert badge_for(link, Status.ONLINE) is Badge.DISCONNECTED


SCREEN = (0, 0, 1920, 1080)


def test_popup_opens_below_an_icon_at_the_top_right_and_stays_on_screen() -> None:
    x, y = popup_position((1880, 0, 24, 24), (380, 540), SCREEN)
    assert y == 24 + 6
    assert x == 1920 - 380  # clamped to the right edge


def test_popup_opens_above_an_icon_at_the_bottom() -> None:
    x, y = popup_position((900, 1056, 24, 24), (380, 540), (0, 0, 1920, 1050))
    assert y + 540 <= 1050
    assert x == (912 - 190)


def test_popup_opens_beside_an_icon_in_a_left_panel() -> None:
    x, y = popup_position((0, 500, 32, 32), (380, 540), (48, 0, 1872, 1080))
    assert x == 48  # right of the panel, clamped into the free area
    assert 0 <= y <= 1080 - 540


def test_popup_is_centred_without_icon_geometry() -> None:
    assert popup_position(None, (380, 540), SCREEN) == (770, 270)
    assert popup_position((0, 0, 0, 0), (380, 540), SCREEN) == (770, 270)


def test_popup_larger_than_the_screen_starts_at_its_corner() -> None:
    assert popup_position((10, 10, 20, 20), (800, 900), (0, 0, 640, 480)) == (0, 0)


def test_tooltip_says_status_friends_online_unread_and_countdown() -> None:
    online = ConnectionInfo(Link.ONLINE)
    text = tray_tooltip("Away until 14:30", 3, 2, online, 0.0)
    assert text.splitlines() == [
        "Presence",
        "Away until 14:30 · 3 friends online",
        "2 unread messages",
    ]
    assert "1 friend online" in tray_tooltip("Online", 1, 0, online, 0.0)
    waiting = ConnectionInfo(Link.RECONNECTING, retry_at=108.2)
    assert "Reconnecting in 8 s…" in tray_tooltip("Online", 3, 0, waiting, 100.0)
    off = ConnectionInfo(Link.OFFLINE, title="Signed out elsewhere", message="Sign in again.")
    assert "Offline: Signed out elsewhere" in tray_tooltip("Online", 3, 0, off, 0.0)
