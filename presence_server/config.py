"""What a server instance is started with (by the CLI, the desktop demo or tests).

Every option that configures the server is declared here exactly once, as the
field it sets: ``port: int = option(DEFAULT_PORT, "--port", "PRESENCE_PORT",
"…")`` is at the same time the typed config field (its annotation is the
option's type, its default the option's default) and the row of the options
table from which ``edge/options.py`` makes the command line, the environment
reading, the checks and the settings table of docs/deployment.md. Adding an
option is adding such a line; nothing else has to learn about it. Nested
parts work the same way: ``RetentionPolicy``'s fields are rows (in days on the
command line, seconds in the config), and the protocol limits an operator may
change are rows of ``ServerLimits.OPTIONS`` (the fields themselves are the
protocol's, used rather than mirrored); a server-only limit is one field
annotated with ``limit_option``.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, TypeVar, get_args, get_origin, get_type_hints

import msgspec

from presence_protocol import Hello, Limits, LoginMethod, Retention, encode, limits

from .auth import GitHubAuth

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
SERVER_NAME = "presence-server/0.1"
DEFAULT_PRESENCE_TTL = 20.0
DAY = 86_400

NO_PROXY = "none"
"""``--trusted-proxy none``: there is no proxy; every client connects directly."""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


class ConfigError(ValueError):
    """A configuration the server refuses to start with (the only such class:
    the GitHub settings raise it too)."""


# ---------------------------------------------------------------- what a row is


class Kind(enum.Enum):
    """How an option's text (flag argument or variable) becomes a value."""

    STR = "string"
    INT = "a whole number"
    FLOAT = "a number"
    BOOL = "1/0, true/false, yes/no or on/off"
    LIST = "a comma- or space-separated list"
    PATH = "a file path"


Check = Callable[[Any], str | None]
"""Returns what is wrong with a value, or None when it is fine."""

SERVER_GROUP: Final = "server"
SCALE_GROUP: Final = "scale-out (several instances on PostgreSQL and Redis)"
EDGE_GROUP: Final = "TLS and edges"
RETENTION_GROUP: Final = "retention (docs/protocol.md §13)"
GITHUB_GROUP: Final = "GitHub sign-in"
GROUPS: Final = (SERVER_GROUP, SCALE_GROUP, EDGE_GROUP, RETENTION_GROUP, GITHUB_GROUP)
"""The order of the groups in ``--help`` and in docs/deployment.md."""


@dataclasses.dataclass(frozen=True, slots=True)
class Option:
    """One row of the options table."""

    name: str
    """The argparse destination (``args.<name>``)."""
    flag: str | None
    """None for an environment-only setting (the GitHub client secret)."""
    env: str
    kind: Kind
    default: Any
    """The value before the environment and the command line are read, as the
    command line states it (days for retention, the flag's sense for ``--no-…``)."""
    help: str
    shown_default: str
    """The default as docs/deployment.md and ``--help`` state it."""
    check: Check | None = None
    target: str | None = None
    """The config field it sets (``limits.x`` / ``retention.x`` nested); None
    when something else reads it (logging, GitHub)."""
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    flag_value: bool = True
    """What a boolean flag sets: ``--no-github-suggestions`` sets False."""
    invert: bool = False
    """The config field is the opposite (``--no-gc-freeze`` → ``gc_freeze``)."""
    group: str = SERVER_GROUP
    per: int = 1
    """The config holds the value times this (retention: days given, seconds kept)."""

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
            normal = self.normal_choice(value)
            if normal not in self.choices:
                raise ValueError(value)
            return normal
        return value

    def normal_choice(self, value: str) -> str:
        return value.upper() if self.choices == LOG_LEVELS else value.lower()

    def label(self) -> str:
        return self.flag or f"${self.env}"

    def to_config(self, value: Any) -> Any:
        """The command line's value as the config field holds it."""
        if self.kind is Kind.LIST:
            value = tuple(value)
        if self.invert:
            value = not value
        if self.per != 1:
            value = round(value * self.per)
        return value

    def from_config(self, value: Any) -> Any:
        """The config field's value as the command line states it (for the checks)."""
        if self.per != 1:
            value = value / self.per
        if self.invert:
            value = not value
        return value


_OPTION_KEY: Final = "presence_server.option"
_UNSET: Any = object()
T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class _Declared:
    """What a field declares; the name, type and default come from the field."""

    flag: str
    env: str
    help: str
    shown: str | None
    check: Check | None
    metavar: str | None
    choices: tuple[str, ...]
    invert: bool
    group: str
    per: int
    cli_default: Any


def option(
    default: T,
    flag: str,
    env: str,
    help: str,
    *,
    shown: str | None = None,
    check: Check | None = None,
    metavar: str | None = None,
    choices: tuple[str, ...] = (),
    invert: bool = False,
    group: str = SERVER_GROUP,
    per: int = 1,
    cli_default: Any = _UNSET,
) -> T:
    """A config field that is also an option: the one line a new option takes.

    Typed as the default so mypy checks the default against the annotation;
    at run time it is a ``dataclasses.field`` whose metadata holds the row.
    ``cli_default`` is only for a command line whose default differs from the
    field's (``--no-gc-freeze``: the CLI runs the GC policy, code opts in).
    """
    declared = _Declared(
        flag, env, help, shown, check, metavar, choices, invert, group, per, cli_default
    )
    field: T = dataclasses.field(default=default, metadata={_OPTION_KEY: declared})
    return field


def limit_option(
    flag: str,
    env: str,
    help: str,
    *,
    shown: str | None = None,
    check: Check | None = None,
    metavar: str | None = "N",
    group: str = EDGE_GROUP,
) -> msgspec.Meta:
    """The same for a field of ``ServerLimits`` (a msgspec struct, which has no
    field metadata): ``x: Annotated[int, limit_option("--x", "PRESENCE_X", "…")] = 5``.
    A limit the protocol declares is not re-declared; its row goes in
    ``ServerLimits.OPTIONS`` instead."""
    declared = _Declared(flag, env, help, shown, check, metavar, (), False, group, 1, _UNSET)
    return msgspec.Meta(extra={_OPTION_KEY: declared})


def _kind_of(annotation: Any, per: int) -> Kind:
    if per != 1:
        return Kind.FLOAT
    if annotation is bool:
        return Kind.BOOL
    if annotation is int:
        return Kind.INT
    if annotation is float:
        return Kind.FLOAT
    if annotation is Path:
        return Kind.PATH
    if getattr(annotation, "__origin__", None) is tuple:
        return Kind.LIST
    if annotation is str:
        return Kind.STR
    raise TypeError(f"an option cannot have the type {annotation!r}")


def _shown(kind: Kind, value: Any) -> str:
    if kind is Kind.BOOL:
        return "on" if value else "off"
    if kind is Kind.FLOAT:
        return f"`{value:g}`"
    if value in ("", [], (), None):
        return "none"
    return f"`{value}`"


def _row(declared: _Declared, annotation: Any, field_default: Any, target: str) -> Option:
    kind = _kind_of(annotation, declared.per)
    default: Any = field_default
    if declared.cli_default is not _UNSET:
        default = declared.cli_default
    else:
        if declared.per != 1:
            default = default / declared.per
        if declared.invert:
            default = not default
    if kind is Kind.LIST:
        default = list(default)
    return Option(
        name=declared.flag.removeprefix("--").replace("-", "_"),
        flag=declared.flag,
        env=declared.env,
        kind=kind,
        default=default,
        help=declared.help,
        shown_default=declared.shown if declared.shown is not None else _shown(kind, default),
        check=declared.check,
        target=target,
        metavar=declared.metavar,
        choices=declared.choices,
        invert=declared.invert,
        group=declared.group,
        per=declared.per,
    )


def _struct_rows(cls: type[msgspec.Struct], prefix: str) -> list[Option]:
    """Rows of a msgspec struct (``ServerLimits``): fields annotated with ``limit_option``."""
    rows: list[Option] = []
    hints = get_type_hints(cls, include_extras=True)
    for field in msgspec.structs.fields(cls):
        hint = hints[field.name]
        if get_origin(hint) is not Annotated:
            continue
        base, *metadata = get_args(hint)
        for meta in metadata:
            if isinstance(meta, msgspec.Meta) and meta.extra and _OPTION_KEY in meta.extra:
                declared = meta.extra[_OPTION_KEY]
                rows.append(_row(declared, base, field.default, prefix + field.name))
    return rows


def rows_of(cls: type[Any], prefix: str = "") -> list[Option]:
    """The options a config class declares, its nested parts' included, in field order."""
    rows: list[Option] = []
    declared: Mapping[str, Option] = getattr(cls, "OPTIONS", {})
    for name, row in declared.items():
        rows.append(dataclasses.replace(row, target=prefix + name))
    if isinstance(cls, type) and issubclass(cls, msgspec.Struct):
        rows.extend(_struct_rows(cls, prefix))
    if not dataclasses.is_dataclass(cls):
        return rows
    hints = get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if _OPTION_KEY in field.metadata:
            row = _row(field.metadata[_OPTION_KEY], hints[field.name], field.default, "")
            rows.append(dataclasses.replace(row, target=prefix + field.name))
            continue
        nested = hints[field.name]
        if isinstance(nested, type) and (
            dataclasses.is_dataclass(nested) or hasattr(nested, "OPTIONS")
        ):
            rows.extend(rows_of(nested, f"{prefix}{field.name}."))
    return rows


# ---------------------------------------------------------------- checks


def at_least(low: float) -> Check:
    def check(value: Any) -> str | None:
        return None if value >= low else f"must be at least {low:g}"

    return check


def between(low: float, high: float, unit: str) -> Check:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"must be between {low:g} and {high:g} {unit}"

    return check


def zero_or_more(value: Any) -> str | None:
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


# ---------------------------------------------------------------- the config


class ServerLimits(Limits):
    """The limits this instance enforces: the protocol's ``Limits`` (announced
    in ``hello``, defaults from ``presence_protocol.limits``) plus a few the
    protocol only describes. Inherited, not re-declared, so a limit the
    protocol adds is a limit of every server at once.

    Tests shrink the windows so that they run in milliseconds.
    """

    OPTIONS: ClassVar[Mapping[str, Option]] = {
        "commands_per_minute": Option(
            "commands_per_minute", "--commands-per-minute", "PRESENCE_COMMANDS_PER_MINUTE",
            Kind.INT, limits.COMMANDS_PER_MINUTE,
            "commands one connection may send per rolling minute (announced in `hello`)",
            f"`{limits.COMMANDS_PER_MINUTE}`", check=at_least(1), metavar="N", group=EDGE_GROUP,
        ),
    }  # fmt: skip
    """The protocol's limits an operator may change: one row each, keyed by the
    field it sets (the field is the protocol's, so the row is all a new one takes
    here). A limit of this server alone is one annotated field instead:
    ``x: Annotated[int, limit_option("--x", "PRESENCE_X", "…")] = 5``."""

    max_replay_messages: int = limits.MAX_REPLAY_MESSAGES
    max_bad_frames: int = 20
    """Consecutive invalid frames before the connection is closed with 4002.
    Before login every frame that is not a login counts, and nothing resets the count."""
    max_login_frames: int = 10
    """Frames read before login; if the last of them does not log in, close 4002.
    A client needs one (a failed GitHub login may be retried a few times), so
    this keeps a stranger from holding a socket busy for the whole auth window."""
    send_buffer_bytes: int = 4 * 1024 * 1024
    """Bytes written to one client and not yet taken by it (the transport's
    write buffer) beyond which it is closed with 4003 as a slow reader. Room
    for a login's snapshot plus a full replay batch, which are written before
    the client can read anything."""
    max_early_events: int = 1024
    """Events that may arrive for a session while its snapshot is being read
    (they follow the snapshot); beyond that it is closed with 4003."""

    def announce(self) -> Limits:
        """The protocol's part, as ``hello`` carries it."""
        return Limits(**{name: getattr(self, name) for name in Limits.__struct_fields__})


def _days(default_days: int, flag: str, env: str, help: str) -> int:
    return option(
        default_days * DAY, flag, env, help, check=_positive_days, metavar="DAYS",
        group=RETENTION_GROUP, per=DAY,
    )  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long stored data lives (seconds); see ``retention.py`` and docs/protocol.md."""

    delivered_messages: int = _days(
        7, "--keep-delivered-days", "PRESENCE_KEEP_DELIVERED_DAYS",
        "days a delivered (acknowledged) message is kept after sending",
    )  # fmt: skip
    """Acknowledged messages are deleted this long after they were sent."""
    undelivered_messages: int = _days(
        30, "--keep-undelivered-days", "PRESENCE_KEEP_UNDELIVERED_DAYS",
        "days an undelivered message is kept before it is deleted and its sender told",
    )  # fmt: skip
    """Unacknowledged messages are deleted (and the sender told) this long after sending."""
    idle_sessions: int = _days(
        90, "--session-idle-days", "PRESENCE_SESSION_IDLE_DAYS",
        "days of disuse after which a session stops working",
    )  # fmt: skip
    """Sessions unused for this long stop working and are deleted."""
    sweep_interval: float = 3600.0
    """Seconds between purges; expiry checks at sign-in do not wait for it."""

    def announce(self) -> Retention:
        return Retention(
            delivered_messages=self.delivered_messages,
            undelivered_messages=self.undelivered_messages,
            idle_sessions=self.idle_sessions,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class ServerConfig:
    """Fields declared with ``option(…)`` are the server's options (docs/deployment.md)."""

    host: str = option(
        DEFAULT_HOST, "--host", "PRESENCE_HOST", "address to listen on",
        shown=f"`{DEFAULT_HOST}` (`0.0.0.0` in the image)",
    )  # fmt: skip
    port: int = option(
        DEFAULT_PORT, "--port", "PRESENCE_PORT", "port; `0` picks a free one",
        check=between(0, 65535, "(a port number)"),
    )  # fmt: skip
    """0 picks a free port; read it back from ``RunningServer.port``."""
    database_url: str = option(
        "", "--database", "PRESENCE_DATABASE",
        "`postgresql://user:pw@host/db` (also `postgres://`; `?sslmode=require` works) or "
        "`sqlite:///path`", shown="SQLite file in the user data dir", metavar="URL",
    )  # fmt: skip
    """SQLAlchemy async URL; empty means a SQLite file in the user data dir."""
    dev_login: bool = option(
        False, "--dev-login", "PRESENCE_DEV_LOGIN",
        "log in by username alone; refused unless the host is loopback",
    )  # fmt: skip
    """Allow ``login_dev`` (a username, no password). Loopback hosts only."""
    # -- scale-out (docs/deployment.md)
    redis_url: str = option(
        "", "--redis", "PRESENCE_REDIS",
        "`redis://[:pw@]host:6379/0` or `rediss://`: turns on scale-out (fan-out and "
        "presence across instances)", check=_redis_url, metavar="URL", group=SCALE_GROUP,
    )  # fmt: skip
    """Redis for fan-out and presence across instances; empty: this process alone."""
    redis_pubsub_url: str = option(
        "", "--redis-pubsub", "PRESENCE_REDIS_PUBSUB",
        "sharded pub/sub (Redis 7 `SPUBLISH`) for the fan-out on this Redis Cluster node "
        "or Redis 7 server; the presence registry stays on `--redis` (docs/scaling.md)",
        shown="`--redis`, plain pub/sub", check=_redis_url, metavar="URL", group=SCALE_GROUP,
    )  # fmt: skip
    """Sharded pub/sub for the fan-out (a Redis Cluster node or a Redis 7 server);
    empty: plain pub/sub on ``redis_url``."""
    redis_prefix: str = option(
        "presence:", "--redis-prefix", "PRESENCE_REDIS_PREFIX",
        "prefix of every Redis key and channel, so deployments can share a Redis",
        metavar="PREFIX", group=SCALE_GROUP,
    )  # fmt: skip
    """Prefix of every Redis key and channel (several deployments can share a Redis)."""
    presence_ttl: float = option(
        DEFAULT_PRESENCE_TTL, "--presence-ttl", "PRESENCE_TTL",
        "seconds; a crashed instance's users turn offline for friends within 1.25 × this",
        check=between(1, 3600, "seconds"), metavar="SECONDS", group=SCALE_GROUP,
    )  # fmt: skip
    """Seconds after which a silent instance's users count as offline (with Redis)."""
    instance_id: str = option(
        "", "--instance-id", "PRESENCE_INSTANCE_ID", "this instance's name in Redis and in logs",
        shown="host name + random suffix", metavar="NAME", group=SCALE_GROUP,
    )  # fmt: skip
    """This instance's name in Redis and logs; empty: host name plus a random suffix."""
    db_pool_size: int = option(
        5, "--db-pool-size", "PRESENCE_DB_POOL_SIZE",
        "PostgreSQL connections per instance (as many again in bursts)",
        check=at_least(1), metavar="N", group=SCALE_GROUP,
    )  # fmt: skip
    """PostgreSQL connections per instance (as many again during bursts)."""
    # -- edges
    certfile: str = option(
        "", "--certfile", "PRESENCE_CERTFILE", "PEM certificate chain: serve `wss://` directly",
        check=_existing_file, metavar="PEM", group=EDGE_GROUP,
    )  # fmt: skip
    """PEM certificate (chain) for serving wss:// directly; empty: plain ws://."""
    keyfile: str = option(
        "", "--keyfile", "PRESENCE_KEYFILE",
        "the certificate's private key, if not in `--certfile`", check=_existing_file,
        metavar="PEM", group=EDGE_GROUP,
    )  # fmt: skip
    """PEM private key; empty: the key is in ``certfile``."""
    trusted_proxies: tuple[str, ...] = option(
        (), "--trusted-proxy", "PRESENCE_TRUSTED_PROXIES",
        "a reverse proxy (address or CIDR) whose `X-Forwarded-For` names the client; "
        "repeatable; `none`: clients connect directly", shown="loopback", check=_networks,
        metavar="CIDR", group=EDGE_GROUP,
    )  # fmt: skip
    """CIDRs of reverse proxies whose X-Forwarded-For names the real client;
    empty: loopback; ``("none",)``: no proxy, X-Forwarded-For is never read."""
    allowed_origins: tuple[str, ...] = option(
        (), "--allowed-origin", "PRESENCE_ALLOWED_ORIGINS",
        "a web page origin (`https://host`) that may connect, or `*`; clients that send "
        "no Origin are always allowed; repeatable", check=_origins, metavar="ORIGIN",
        group=EDGE_GROUP,
    )  # fmt: skip
    """Origins of web pages allowed to open a connection ("*": any). Requests
    without an Origin header (every non-browser client) are always allowed."""
    handshakes_per_minute: int = option(
        60, "--handshakes-per-minute", "PRESENCE_HANDSHAKES_PER_MINUTE",
        "connection attempts per client IP (IPv6: per /64); `0` = unlimited",
        check=zero_or_more, metavar="N", group=EDGE_GROUP,
    )  # fmt: skip
    """WebSocket handshakes per client IP (IPv6: per /64) per minute; 0: unlimited."""
    limit_loopback: bool = option(
        False, "--limit-loopback", "PRESENCE_LIMIT_LOOPBACK",
        "apply the handshake limit to loopback clients too; by default this machine's own "
        "connections are never limited, which also lifts the limit for everyone behind a "
        "local proxy that sends no `X-Forwarded-For` (see [Edges](#edges))", group=EDGE_GROUP,
    )  # fmt: skip
    """Apply the handshake limit to loopback client addresses too (by default this
    machine's own connections are exempt; see ``edge.py`` for the trap that hides)."""
    max_connections_per_user: int = option(
        20, "--max-connections-per-user", "PRESENCE_MAX_CONNECTIONS_PER_USER",
        "devices of one account connected at once, over all instances (more are closed "
        "with 4004); `0` = unlimited", check=zero_or_more, metavar="N", group=EDGE_GROUP,
    )  # fmt: skip
    """Connected devices per user across instances; 0: unlimited."""
    drain_seconds: float = option(
        10.0, "--drain-seconds", "PRESENCE_DRAIN_SECONDS",
        "on SIGTERM, time for connections to flush before they are cut",
        check=at_least(0), metavar="SECONDS", group=EDGE_GROUP,
    )  # fmt: skip
    """On stop: how long closing connections may take to flush before they are cut."""
    gc_freeze: bool = option(
        False, "--no-gc-freeze", "PRESENCE_NO_GC_FREEZE",
        "leave Python's garbage collector alone; by default long-lived objects are frozen "
        "so full collections stay short, and while anyone is connected the young "
        "generations are collected every 50 ms so replaced state is walked in small batches "
        "([performance](performance.md#fan-out-benchmarksfanout))",
        shown="off (the GC policy runs)", invert=True, cli_default=False, group=EDGE_GROUP,
    )  # fmt: skip
    """Run the garbage-collector policy (``gc_policy.py``: freeze long-lived objects
    so full collections stay short). The CLI turns it on; off by default because
    the collector is process-wide and an embedded server (the desktop demo, tests)
    would keep its host's garbage frozen."""
    # -- set in code, or by the rows of the nested parts
    limits: ServerLimits = dataclasses.field(default_factory=ServerLimits)
    retention: RetentionPolicy = dataclasses.field(default_factory=RetentionPolicy)
    github: GitHubAuth | None = None
    """GitHub sign-in; None answers GitHub logins with ``login_unavailable``."""
    server_name: str = SERVER_NAME
    clock_ns: Callable[[], int] = time.time_ns
    """The wall clock (Unix nanoseconds) every time the server stores, compares
    or sends is read from: message and status times, status expiry, status
    stamps. Injected so that tests can set the time instead of waiting for it."""


def hello_for(config: ServerConfig) -> Hello:
    """The ``hello`` a server with ``config`` sends first on every connection.

    Built from the config alone, so the configuration check can measure it
    before any connection exists (``check_frame_limit``).
    """
    methods = [LoginMethod.SESSION]
    if config.dev_login:
        methods.append(LoginMethod.DEV)
    github = config.github.public() if config.github is not None else None
    if github is not None:
        methods.append(LoginMethod.GITHUB_CODE)
        if github.device_flow:
            methods.append(LoginMethod.GITHUB_TOKEN)
        if github.editor_tokens:
            methods.append(LoginMethod.GITHUB_EDITOR)
    return Hello(
        server=config.server_name,
        login_methods=methods,
        github=github,
        limits=config.limits.announce(),
        retention=config.retention.announce(),
    )


def min_server_frame_bytes(config: ServerConfig) -> int:
    """The smallest frame limit ``config`` can keep: its ``hello`` and every
    bounded frame at its worst (``limits.MIN_SERVER_FRAME_BYTES``) must fit."""
    return max(limits.MIN_SERVER_FRAME_BYTES, len(encode(hello_for(config))))


def check_frame_limit(config: ServerConfig) -> None:
    """Refuse a ``max_server_frame_bytes`` the server could not keep.

    The limit is a promise in ``hello`` (docs/protocol.md §1); ``hello`` itself
    and the frames that are never cut are sent whole, so a limit below their
    worst case would be broken by the server's own frames.
    """
    wanted = min_server_frame_bytes(config)
    if config.limits.max_server_frame_bytes < wanted:
        raise ConfigError(
            f"max_server_frame_bytes is {config.limits.max_server_frame_bytes}, but this "
            f"server's hello and its frames that are never cut need at least {wanted} bytes"
        )


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_networks(
    cidrs: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for cidr in cidrs:
        if cidr.strip().lower() == NO_PROXY:
            continue  # clients connect directly: trust nobody's X-Forwarded-For
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ConfigError(
                f"--trusted-proxy {cidr!r} is not an address or CIDR (like 10.0.0.0/8 or ::1) "
                f"or {NO_PROXY!r}"
            ) from None
    return tuple(networks)


def normalize_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, without a trailing slash."""
    return origin.strip().rstrip("/").lower()
