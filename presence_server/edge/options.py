"""Every ``presence-server`` option, declared once.

An option that configures the server is a field of ``ServerConfig`` (or of its
nested ``RetentionPolicy`` / ``ServerLimits``) declared with ``config.option``:
that one line is the row. The few options something else reads (logging, the
GitHub sign-in settings) are rows of ``OTHER_ROWS`` below. ``TABLE`` joins
both; from it come the argparse flags (``add_arguments``), the environment
reading (``default_of``), the config they make (``config_from``), the checks
``validate`` runs on any config (also one built in code), and the settings
table of docs/deployment.md (``render_markdown``; tests/server/test_options.py
keeps the document equal to it). Every function takes the table as a
parameter so a test can prove, with a config class of its own, that a new
field reaches all of them.

One precedence rule: a flag on the command line wins over the environment
variable, which wins over the built-in default. A repeatable flag replaces
the environment's list rather than adding to it, and a boolean variable set
to 1 can still be overridden — by its flag's opposite where there is one.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, get_type_hints

from ..config import (
    GITHUB_GROUP,
    GROUPS,
    LOG_FORMATS,
    LOG_LEVELS,
    SERVER_GROUP,
    ConfigError,
    Kind,
    Option,
    ServerConfig,
    check_frame_limit,
    is_loopback,
    rows_of,
)

__all__ = ["GITHUB_GROUP", "OPTIONS", "TABLE", "ConfigError", "Kind", "Option", "OptionTable"]


@dataclasses.dataclass(frozen=True, slots=True)
class OptionTable:
    """The rows of a config class (in group order) plus rows read elsewhere."""

    config: type[Any]
    rows: tuple[Option, ...]

    @classmethod
    def of(cls, config: type[Any], other: Sequence[Option] = ()) -> OptionTable:
        rows = [*rows_of(config), *other]
        rows.sort(key=lambda row: GROUPS.index(row.group) if row.group in GROUPS else len(GROUPS))
        names = [row.name for row in rows]
        duplicates = {name for name in names if names.count(name) > 1}
        if duplicates:
            raise TypeError(f"options declared twice: {sorted(duplicates)}")
        return cls(config, tuple(rows))


# ---------------------------------------------------------------- rows read elsewhere

OTHER_ROWS: tuple[Option, ...] = (
    Option(
        "log_level", "--log-level", "PRESENCE_LOG_LEVEL", Kind.STR, "INFO",
        "`DEBUG`, `INFO`, `WARNING` or `ERROR`", "`INFO`", choices=LOG_LEVELS,
    ),
    Option(
        "log_format", "--log-format", "PRESENCE_LOG_FORMAT", Kind.STR, "text",
        "`text` for people, `json` for log pipelines (one object per line)",
        "`text` (`json` in the image)", choices=LOG_FORMATS,
    ),
    Option(
        "github_client_id", "--github-client-id", "PRESENCE_GITHUB_CLIENT_ID", Kind.STR, None,
        "OAuth app client id: turns on GitHub sign-in (see [github-sign-in.md]"
        "(github-sign-in.md))", "none", metavar="ID", group=GITHUB_GROUP,
    ),
    Option(
        "github_client_secret_file", "--github-client-secret-file",
        "PRESENCE_GITHUB_CLIENT_SECRET_FILE", Kind.PATH, None,
        "file holding the OAuth app's client secret", "none", metavar="PATH", group=GITHUB_GROUP,
    ),
    Option(
        "github_client_secret", None, "PRESENCE_GITHUB_CLIENT_SECRET", Kind.STR, None,
        "the OAuth app's client secret itself (never a flag: it would land in shell history "
        "and `ps` output)", "none", group=GITHUB_GROUP,
    ),
    Option(
        "github_web_url", "--github-web-url", "PRESENCE_GITHUB_WEB_URL", Kind.STR, None,
        "GitHub web base URL, for GitHub Enterprise Server", "`https://github.com`",
        metavar="URL", group=GITHUB_GROUP,
    ),
    Option(
        "github_api_url", "--github-api-url", "PRESENCE_GITHUB_API_URL", Kind.STR, None,
        "GitHub REST API base URL", "`https://api.github.com` (`<web url>/api/v3` for "
        "Enterprise)", metavar="URL", group=GITHUB_GROUP,
    ),
    Option(
        "github_device_flow", "--github-device-flow", "PRESENCE_GITHUB_DEVICE_FLOW",
        Kind.BOOL, None, "tell clients the device flow is enabled for this app", "off",
        group=GITHUB_GROUP,
    ),
    Option(
        "github_suggestions", "--no-github-suggestions", "PRESENCE_GITHUB_SUGGESTIONS",
        Kind.BOOL, None, "do not read whom users follow on GitHub to suggest friends "
        "(the variable is positive: `0` turns suggestions off)", "on (suggestions)",
        flag_value=False, group=GITHUB_GROUP,
    ),
    Option(
        "github_accept_other_apps", "--github-accept-other-apps",
        "PRESENCE_GITHUB_ACCEPT_OTHER_APPS", Kind.BOOL, None,
        "accept GitHub tokens issued to other OAuth apps, so people can sign in with the "
        "GitHub account VS Code already has; anyone holding a token of theirs from any app "
        "could then sign in as them: read the risk in [github-sign-in.md](github-sign-in.md"
        "#signing-in-with-vs-codes-github-account-the-operators-choice) first", "off",
        group=GITHUB_GROUP,
    ),
)  # fmt: skip
"""Logging is set up before any config exists, and GitHub sign-in has its own
settings object (``github.settings_from``): these rows set no config field."""

TABLE = OptionTable.of(ServerConfig, OTHER_ROWS)
OPTIONS = TABLE.rows
BY_NAME = {option.name: option for option in OPTIONS}


# ---------------------------------------------------------------- argparse


class _Replace(argparse.Action):
    """A repeatable flag whose first use replaces the environment's list."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        seen = f"_{self.dest}_from_flags"
        current = getattr(namespace, self.dest) if getattr(namespace, seen, False) else []
        setattr(namespace, seen, True)
        setattr(namespace, self.dest, [*current, values])


def default_of(option: Option, env: Mapping[str, str]) -> Any:
    """The value before the command line is read: the environment's, else built in."""
    raw = env.get(option.env, "")
    if raw.strip() == "":
        return option.default
    return option.parse_env(raw)


def add_arguments(
    parser: argparse.ArgumentParser | Any,
    env: Mapping[str, str],
    group: str | None = None,
    exclude: Sequence[str] = (),
    table: OptionTable = TABLE,
) -> None:
    """Add the flags of the table (or of one ``group`` of it) with their defaults.

    ``parser`` may be an argument group; with ``group`` every flag goes there.
    """
    groups: dict[str, Any] = {}
    for option in table.rows:
        if option.flag is None or option.group in exclude:
            continue
        if group is not None and option.group != group:
            continue
        if option.group == SERVER_GROUP or group is not None:
            target = parser
        else:
            target = groups.get(option.group) or parser.add_argument_group(option.group)
            groups[option.group] = target
        default = default_of(option, env)
        help_text = f"{_plain(option.help)} (${option.env}; default {_plain(option.shown_default)})"
        kwargs: dict[str, Any] = {"dest": option.name, "default": default, "help": help_text}
        if option.kind is Kind.BOOL:
            kwargs["action"] = "store_true" if option.flag_value else "store_false"
        elif option.kind is Kind.LIST:
            kwargs["action"] = _Replace
            kwargs["metavar"] = option.metavar
        else:
            kwargs["metavar"] = option.metavar
            kwargs["type"] = _argparse_type(option)
            if option.choices:
                kwargs["choices"] = option.choices
                kwargs.pop("metavar")
        target.add_argument(option.flag, **kwargs)


def _argparse_type(option: Option) -> Callable[[str], Any]:
    if option.choices:
        return option.normal_choice
    return {Kind.INT: int, Kind.FLOAT: float, Kind.PATH: Path}.get(option.kind, str)


def _plain(text: str) -> str:
    """Markdown to ``--help`` text: no backticks, links as their words."""
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)
    return text.replace("`", "")


# ---------------------------------------------------------------- config


def check(option: Option, value: Any) -> None:
    if option.check is None:
        return
    problem = option.check(value)
    if problem is not None:
        raise ConfigError(f"{option.label()} {problem}")


def _config_value(config: object, target: str) -> Any:
    value: Any = config
    for part in target.split("."):
        value = getattr(value, part)
    return value


def validate(config: ServerConfig, table: OptionTable = TABLE) -> None:
    """Refuse a config the server must not start with, however it was built.

    Every row's own check runs on the value the config holds (stated as the
    command line would: days, the flag's sense), then the rules that relate
    several options.
    """
    for option in table.rows:
        if option.target is None or option.check is None:
            continue
        check(option, option.from_config(_config_value(config, option.target)))
    if config.dev_login and not is_loopback(config.host):
        raise ConfigError(
            f"--dev-login lets anyone sign in as anyone; it only works on a loopback "
            f"address (127.0.0.1, ::1 or localhost), not on {config.host!r}"
        )
    if config.redis_pubsub_url and not config.redis_url:
        raise ConfigError(
            "--redis-pubsub needs --redis (the presence registry that routes the fan-out)"
        )
    if config.keyfile and not config.certfile:
        raise ConfigError("--keyfile needs --certfile (the certificate that goes with the key)")
    check_frame_limit(config)
    if min(config.limits.max_bad_frames, config.limits.max_login_frames) < 1:
        raise ConfigError("max_bad_frames and max_login_frames must be at least 1")
    keep = config.retention
    if keep.undelivered_messages < keep.delivered_messages:
        raise ConfigError(
            "undelivered messages must be kept at least as long as delivered ones "
            "(their recipients may still come back)"
        )


def _build(cls: type[Any], values: Mapping[str, Any]) -> Any:
    """``cls`` with ``values`` set; a dotted key sets a field of a nested part."""
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        head, dot, rest = key.partition(".")
        if dot:
            nested.setdefault(head, {})[rest] = value
        else:
            top[key] = value
    hints = get_type_hints(cls)
    for head, part in nested.items():
        top.setdefault(head, _build(hints[head], part))
    return cls(**top)


def config_from(args: argparse.Namespace, table: OptionTable = TABLE, **fixed: Any) -> ServerConfig:
    """The config the parsed command line (and environment) describes.

    ``fixed`` fields win over the rows (``__main__`` passes the normalised
    database URL).
    """
    values: dict[str, Any] = {}
    for option in table.rows:
        if option.target is None:
            continue
        value = getattr(args, option.name)
        check(option, value)
        values[option.target] = option.to_config(value)
    values.update(fixed)
    config: ServerConfig = _build(table.config, values)
    return config


# ---------------------------------------------------------------- docs

TABLE_START = "<!-- settings table: generated from presence_server/edge/options.py -->"
TABLE_END = "<!-- end of settings table -->"


def render_markdown(table: OptionTable = TABLE) -> str:
    """The settings table of docs/deployment.md."""
    lines = ["| flag | environment | default | meaning |", "|---|---|---|---|"]
    for option in table.rows:
        flag = f"`{option.flag}`" if option.flag else "—"
        if option.kind is Kind.LIST:
            flag = f"`{option.flag} {option.metavar}` (repeatable)"
        env = f"`{option.env}`"
        if option.kind is Kind.LIST:
            env += " (comma-separated)"
        lines.append(f"| {flag} | {env} | {option.shown_default} | {option.help} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_markdown())
