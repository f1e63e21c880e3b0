"""Every ``presence-server`` option, declared once.

Each row says what an option is called on the command line and in the
environment, its type, default, help and the check its value must pass. From
this table come the argparse flags (``build_parser``), the environment
reading, the ``ServerConfig`` fields they set (``config_from``), the checks
``validate`` runs on any config (also one built in code), and the settings
table of docs/deployment.md (``render_markdown``; tests/server/test_options.py
keeps the document equal to it). Adding an option is one row here plus, when
it configures the server, a field of ``ServerConfig``.

One precedence rule: a flag on the command line wins over the environment
variable, which wins over the built-in default. A repeatable flag replaces
the environment's list rather than adding to it, and a boolean variable set
to 1 can still be overridden — by its flag's opposite where there is one.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from presence_protocol import limits

from ..config import (
    DAY,
    DEFAULT_HOST,
    DEFAULT_PORT,
    NO_PROXY,
    ConfigError,
    RetentionPolicy,
    ServerConfig,
    ServerLimits,
    is_loopback,
    normalize_origin,
)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


class Kind(enum.Enum):
    STR = "string"
    INT = "a whole number"
    FLOAT = "a number"
    BOOL = "1/0, true/false, yes/no or on/off"
    LIST = "a comma- or space-separated list"
    PATH = "a file path"


Check = Callable[[Any], str | None]
"""Returns what is wrong with a value, or None when it is fine."""


@dataclasses.dataclass(frozen=True, slots=True)
class Option:
    name: str
    """The argparse destination (``args.<name>``)."""
    flag: str | None
    """None for an environment-only setting (the GitHub client secret)."""
    env: str
    kind: Kind
    default: Any
    help: str
    shown_default: str
    """The default as docs/deployment.md and ``--help`` state it."""
    check: Check | None = None
    target: str | None = None
    """The ``ServerConfig`` field it sets (``limits.x`` / ``retention.x`` nested);
    None when something else reads it (logging, the database URL, GitHub)."""
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    flag_value: bool = True
    """What a boolean flag sets: ``--no-github-suggestions`` sets False."""
    invert: bool = False
    """The config field is the opposite (``--no-gc-freeze`` → ``gc_freeze``)."""
    group: str = "server"

    def parse_env(self, raw: str) -> Any:
        value = raw.strip()
        try:
            return self._convert(value)
        except ValueError:
            raise ConfigError(f"${self.env} must be {self._wanted()}, not {value!r}") from None

    def _wanted(self) -> str:
        if self.choices:
            return " or ".join(self.choices)
        if self.name.endswith("_days"):
            return "a number of days"
        return self.kind.value

    def _convert(self, value: str) -> Any:
        if self.kind is Kind.INT:
            return int(value)
        if self.kind is Kind.FLOAT:
            return float(value)
        if self.kind is Kind.BOOL:
            lowered = value.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError(value)
        if self.kind is Kind.LIST:
            return [item for item in value.replace(",", " ").split() if item]
        if self.kind is Kind.PATH:
            return Path(value)
        if self.choices:
            normal = _normal_choice(self, value)
            if normal not in self.choices:
                raise ValueError(value)
            return normal
        return value

    def label(self) -> str:
        return self.flag or f"${self.env}"


def _normal_choice(option: Option, value: str) -> str:
    return value.upper() if option.choices == LOG_LEVELS else value.lower()


# ---------------------------------------------------------------- checks


def _at_least(low: float, what: str = "") -> Check:
    def check(value: Any) -> str | None:
        return None if value >= low else f"must be at least {low:g}{what}"

    return check


def _between(low: float, high: float, unit: str) -> Check:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"must be between {low:g} and {high:g} {unit}"

    return check


def _zero_or_more(value: Any) -> str | None:
    return None if value >= 0 else "must be 0 (unlimited) or more"


def _redis_url(value: str) -> str | None:
    if not value or value.startswith(("redis://", "rediss://", "unix://")):
        return None
    return "must be a URL like redis://host:6379/0 (or rediss:// for TLS)"


def _existing_file(value: str) -> str | None:
    return None if not value or Path(value).is_file() else f"{value!r}: no such file"


def _networks(values: Sequence[str]) -> str | None:
    for cidr in values:
        if cidr.strip().lower() == NO_PROXY:
            continue
        try:
            ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            return f"{cidr!r} is not an address or CIDR (like 10.0.0.0/8 or ::1) or {NO_PROXY!r}"
    return None


def _origins(values: Sequence[str]) -> str | None:
    for origin in values:
        value = normalize_origin(origin)
        if value != "*" and not re.fullmatch(r"https?://[^/\s]+", value):
            return f"{origin!r} must be scheme://host[:port] (like https://example.com) or *"
    return None


def _positive_days(value: float) -> str | None:
    return None if round(value * DAY) >= 1 else "retention periods must be at least one second"


# ---------------------------------------------------------------- the table

_KEEP = RetentionPolicy()
_CONFIG = ServerConfig()
_SCALE = "scale-out (several instances on PostgreSQL and Redis)"
_EDGE = "TLS and edges"
_KEEPING = "retention (docs/protocol.md §13)"
GITHUB_GROUP = "GitHub sign-in"

OPTIONS: tuple[Option, ...] = (
    Option(
        "host", "--host", "PRESENCE_HOST", Kind.STR, DEFAULT_HOST,
        "address to listen on", f"`{DEFAULT_HOST}` (`0.0.0.0` in the image)", target="host",
    ),
    Option(
        "port", "--port", "PRESENCE_PORT", Kind.INT, DEFAULT_PORT,
        "port; `0` picks a free one", f"`{DEFAULT_PORT}`",
        check=_between(0, 65535, "(a port number)"), target="port",
    ),
    Option(
        "database", "--database", "PRESENCE_DATABASE", Kind.STR, "",
        "`postgresql://user:pw@host/db` (also `postgres://`; `?sslmode=require` works) or "
        "`sqlite:///path`", "SQLite file in the user data dir", metavar="URL",
    ),
    Option(
        "dev_login", "--dev-login", "PRESENCE_DEV_LOGIN", Kind.BOOL, False,
        "log in by username alone; refused unless the host is loopback", "off",
        target="dev_login",
    ),
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
        "redis", "--redis", "PRESENCE_REDIS", Kind.STR, "",
        "`redis://[:pw@]host:6379/0` or `rediss://`: turns on scale-out (fan-out and "
        "presence across instances)", "none", check=_redis_url, target="redis_url",
        metavar="URL", group=_SCALE,
    ),
    Option(
        "redis_pubsub", "--redis-pubsub", "PRESENCE_REDIS_PUBSUB", Kind.STR, "",
        "sharded pub/sub (Redis 7 `SPUBLISH`) for the fan-out on this Redis Cluster node "
        "or Redis 7 server; the presence registry stays on `--redis` (docs/scaling.md)",
        "`--redis`, plain pub/sub", check=_redis_url, target="redis_pubsub_url",
        metavar="URL", group=_SCALE,
    ),
    Option(
        "redis_prefix", "--redis-prefix", "PRESENCE_REDIS_PREFIX", Kind.STR,
        _CONFIG.redis_prefix, "prefix of every Redis key and channel, so deployments can "
        "share a Redis", f"`{_CONFIG.redis_prefix}`", target="redis_prefix",
        metavar="PREFIX", group=_SCALE,
    ),
    Option(
        "presence_ttl", "--presence-ttl", "PRESENCE_TTL", Kind.FLOAT, _CONFIG.presence_ttl,
        "seconds; a crashed instance's users turn offline for friends within 1.25 × this",
        f"`{_CONFIG.presence_ttl:g}`", check=_between(1, 3600, "seconds"),
        target="presence_ttl", metavar="SECONDS", group=_SCALE,
    ),
    Option(
        "instance_id", "--instance-id", "PRESENCE_INSTANCE_ID", Kind.STR, "",
        "this instance's name in Redis and in logs", "host name + random suffix",
        target="instance_id", metavar="NAME", group=_SCALE,
    ),
    Option(
        "db_pool_size", "--db-pool-size", "PRESENCE_DB_POOL_SIZE", Kind.INT,
        _CONFIG.db_pool_size, "PostgreSQL connections per instance (as many again in bursts)",
        f"`{_CONFIG.db_pool_size}`", check=_at_least(1), target="db_pool_size", metavar="N",
        group=_SCALE,
    ),
    Option(
        "certfile", "--certfile", "PRESENCE_CERTFILE", Kind.STR, "",
        "PEM certificate chain: serve `wss://` directly", "none", check=_existing_file,
        target="certfile", metavar="PEM", group=_EDGE,
    ),
    Option(
        "keyfile", "--keyfile", "PRESENCE_KEYFILE", Kind.STR, "",
        "the certificate's private key, if not in `--certfile`", "none",
        check=_existing_file, target="keyfile", metavar="PEM", group=_EDGE,
    ),
    Option(
        "trusted_proxy", "--trusted-proxy", "PRESENCE_TRUSTED_PROXIES", Kind.LIST, [],
        "a reverse proxy (address or CIDR) whose `X-Forwarded-For` names the client; "
        "repeatable; `none`: clients connect directly", "loopback", check=_networks,
        target="trusted_proxies", metavar="CIDR", group=_EDGE,
    ),
    Option(
        "allowed_origin", "--allowed-origin", "PRESENCE_ALLOWED_ORIGINS", Kind.LIST, [],
        "a web page origin (`https://host`) that may connect, or `*`; clients that send "
        "no Origin are always allowed; repeatable", "none", check=_origins,
        target="allowed_origins", metavar="ORIGIN", group=_EDGE,
    ),
    Option(
        "handshakes_per_minute", "--handshakes-per-minute", "PRESENCE_HANDSHAKES_PER_MINUTE",
        Kind.INT, _CONFIG.handshakes_per_minute,
        "connection attempts per client IP (IPv6: per /64); `0` = unlimited",
        f"`{_CONFIG.handshakes_per_minute}`", check=_zero_or_more,
        target="handshakes_per_minute", metavar="N", group=_EDGE,
    ),
    Option(
        "limit_loopback", "--limit-loopback", "PRESENCE_LIMIT_LOOPBACK", Kind.BOOL, False,
        "apply the handshake limit to loopback clients too; by default this machine's own "
        "connections are never limited, which also lifts the limit for everyone behind a "
        "local proxy that sends no `X-Forwarded-For` (see [Edges](#edges))", "off",
        target="limit_loopback", group=_EDGE,
    ),
    Option(
        "max_connections_per_user", "--max-connections-per-user",
        "PRESENCE_MAX_CONNECTIONS_PER_USER", Kind.INT, _CONFIG.max_connections_per_user,
        "devices of one account connected at once, over all instances (more are closed "
        "with 4004); `0` = unlimited", f"`{_CONFIG.max_connections_per_user}`",
        check=_zero_or_more, target="max_connections_per_user", metavar="N", group=_EDGE,
    ),
    Option(
        "commands_per_minute", "--commands-per-minute", "PRESENCE_COMMANDS_PER_MINUTE",
        Kind.INT, limits.COMMANDS_PER_MINUTE,
        "commands one connection may send per rolling minute (announced in `hello`)",
        f"`{limits.COMMANDS_PER_MINUTE}`", check=_at_least(1),
        target="limits.commands_per_minute", metavar="N", group=_EDGE,
    ),
    Option(
        "drain_seconds", "--drain-seconds", "PRESENCE_DRAIN_SECONDS", Kind.FLOAT,
        _CONFIG.drain_seconds, "on SIGTERM, time for connections to flush before they are cut",
        f"`{_CONFIG.drain_seconds:g}`", check=_at_least(0), target="drain_seconds",
        metavar="SECONDS", group=_EDGE,
    ),
    Option(
        "no_gc_freeze", "--no-gc-freeze", "PRESENCE_NO_GC_FREEZE", Kind.BOOL, False,
        "leave Python's garbage collector alone; by default long-lived objects are frozen "
        "so full collections stay short "
        "([performance](performance.md#fan-out-benchmarksfanout))",
        "off (the GC policy runs)", target="gc_freeze", invert=True, group=_EDGE,
    ),
    Option(
        "keep_delivered_days", "--keep-delivered-days", "PRESENCE_KEEP_DELIVERED_DAYS",
        Kind.FLOAT, _KEEP.delivered_messages / DAY,
        "days a delivered (acknowledged) message is kept after sending",
        f"`{_KEEP.delivered_messages / DAY:g}`", check=_positive_days,
        target="retention.delivered_messages", metavar="DAYS", group=_KEEPING,
    ),
    Option(
        "keep_undelivered_days", "--keep-undelivered-days", "PRESENCE_KEEP_UNDELIVERED_DAYS",
        Kind.FLOAT, _KEEP.undelivered_messages / DAY,
        "days an undelivered message is kept before it is deleted and its sender told",
        f"`{_KEEP.undelivered_messages / DAY:g}`", check=_positive_days,
        target="retention.undelivered_messages", metavar="DAYS", group=_KEEPING,
    ),
    Option(
        "session_idle_days", "--session-idle-days", "PRESENCE_SESSION_IDLE_DAYS", Kind.FLOAT,
        _KEEP.idle_sessions / DAY, "days of disuse after which a session stops working",
        f"`{_KEEP.idle_sessions / DAY:g}`", check=_positive_days,
        target="retention.idle_sessions", metavar="DAYS", group=_KEEPING,
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
) -> None:
    """Add the flags of the table (or of one ``group`` of it) with their defaults.

    ``parser`` may be an argument group; with ``group`` every flag goes there.
    """
    groups: dict[str, Any] = {}
    for option in OPTIONS:
        if option.flag is None or option.group in exclude:
            continue
        if group is not None and option.group != group:
            continue
        if option.group == "server" or group is not None:
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
        return lambda value: _normal_choice(option, value)
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


def _config_value(config: ServerConfig, target: str) -> Any:
    value: Any = config
    for part in target.split("."):
        value = getattr(value, part)
    return value


def validate(config: ServerConfig) -> None:
    """Refuse a config the server must not start with, however it was built.

    Every row's own check runs on the value the config holds, then the rules
    that relate several options.
    """
    for option in OPTIONS:
        if option.target is None or option.check is None:
            continue
        value = _config_value(config, option.target)
        if option.target.startswith("retention."):
            value = value / DAY
        elif option.invert:
            value = not value
        check(option, value)
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
    if min(config.limits.max_bad_frames, config.limits.max_login_frames) < 1:
        raise ConfigError("max_bad_frames and max_login_frames must be at least 1")
    keep = config.retention
    if keep.undelivered_messages < keep.delivered_messages:
        raise ConfigError(
            "undelivered messages must be kept at least as long as delivered ones "
            "(their recipients may still come back)"
        )


def config_from(args: argparse.Namespace, **fixed: Any) -> ServerConfig:
    """The ``ServerConfig`` the parsed command line (and environment) describes."""
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {"limits": {}, "retention": {}}
    for option in OPTIONS:
        if option.target is None:
            continue
        value = getattr(args, option.name)
        check(option, value)
        if option.kind is Kind.LIST:
            value = tuple(value)
        if option.invert:
            value = not value
        head, _, field = option.target.partition(".")
        if field:
            nested[head][field] = round(value * DAY) if head == "retention" else value
        else:
            top[head] = value
    return ServerConfig(
        limits=ServerLimits(**nested["limits"]),
        retention=RetentionPolicy(**nested["retention"]),
        **top,
        **fixed,
    )


# ---------------------------------------------------------------- docs

TABLE_START = "<!-- settings table: generated from presence_server/edge/options.py -->"
TABLE_END = "<!-- end of settings table -->"


def render_markdown() -> str:
    """The settings table of docs/deployment.md."""
    lines = ["| flag | environment | default | meaning |", "|---|---|---|---|"]
    for option in OPTIONS:
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
