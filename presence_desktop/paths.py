"""Where the app keeps its files, resolved once and passed down.

Nothing below this module asks platformdirs itself, so tests and the demo can
point the whole app at a temporary directory and never touch the real one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import platformdirs

APP_NAME = "presence-desktop"


@dataclasses.dataclass(frozen=True, slots=True)
class AppPaths:
    config_dir: Path
    """User settings (``settings.json``): what the person chose."""
    state_dir: Path
    """Runtime state (``state.json``): what the app remembers by itself."""
    data_dir: Path
    """Data the person would miss: the conversation history (``core.history``)."""
    cache_dir: Path
    """Disposable data such as downloaded avatars."""
    log_dir: Path

    @classmethod
    def platform(cls) -> AppPaths:
        """The per-user directories of this operating system."""
        return cls(
            config_dir=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
            state_dir=Path(platformdirs.user_state_dir(APP_NAME, appauthor=False)),
            data_dir=Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
            cache_dir=Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
            log_dir=Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
        )

    @classmethod
    def under(cls, root: Path) -> AppPaths:
        """Everything inside one directory (demo runs and tests)."""
        return cls(
            config_dir=root / "config",
            state_dir=root / "state",
            data_dir=root / "data",
            cache_dir=root / "cache",
            log_dir=root / "log",
        )
