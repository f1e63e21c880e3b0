"""The entry point: flags, and logs that never contain secrets."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from presence_desktop import __version__
from presence_desktop.__main__ import RedactSecrets, main, parse_args, setup_logging


def test_version_prints_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"presence-desktop {__version__}"


def test_flags() -> None:
    args = parse_args(["--demo", "--verbose", "--server", "wss://presence.example.org"])
    assert args.demo and args.verbose and args.server == "wss://presence.example.org"
    assert not parse_args([]).demo
    with pytest.raises(SystemExit):
        parse_args(["--no-such-flag"])


@pytest.mark.parametrize(
    "message",
    [
        'frame {"type":"auth","session":"tFNFS2j6ZOEa-VK8o3M5VLreowzrtbi37nSU5gpF4rQ"}',
        "callback ?code=abcdef123456&state=xyz",
        "token=ghp_0123456789abcdef",
        "access_token: 'gho_secretsecret'",
    ],
)
def test_secrets_are_masked_in_log_lines(message: str, tmp_path: Path) -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", (message,), None)
    assert RedactSecrets().filter(record)
    text = record.getMessage()
    assert "***" in text
    for secret in ("tFNFS2j6", "abcdef123456", "ghp_0123", "gho_secret"):
        assert secret not in text


def test_log_file_rotates_in_the_given_dir(tmp_path: Path) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    try:
        path = setup_logging(tmp_path / "log", verbose=False)
        assert path == tmp_path / "log" / "presence-desktop.log"
        logging.getLogger("presence_desktop.test").info('sent {"session": "abcdefghijkl"}')
        for handler in root.handlers:
            handler.flush()
        text = path.read_text()
        assert '"session": "***"' in text
        assert "abcdefghijkl" not in text
    finally:
        for handler in root.handlers[:]:
            if handler not in before:
                root.removeHandler(handler)
                handler.close()
        root.setLevel(level)
