"""One table of options drives the CLI, the environment, the config, its checks
and the settings table of deployment.md: the ``option(...)`` fields of
``ServerConfig`` (presence_server/config.py) plus the few rows of
presence_server/edge/options.py that set no config field."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from presence_server import ServerConfig, ServerLimits
from presence_server import config as cfg
from presence_server.__main__ import build_parser
from presence_server.config import ConfigError
from presence_server.edge import github, options
from presence_server.edge.options import OPTIONS, Kind, OptionTable, config_from, validate

DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"


def test_deployment_md_shows_the_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    table = text.split(options.TABLE_START, 1)[1].split(options.TABLE_END, 1)[0].strip()
    assert table == options.render_markdown(), "run: python -m presence_server.edge.options"


def test_rows_are_unique_and_name_real_config_fields() -> None:
    flags = [o.flag for o in OPTIONS if o.flag]
    envs = [o.env for o in OPTIONS]
    assert len(set(flags)) == len(flags) and len(set(envs)) == len(envs)
    assert all(env.startswith("PRESENCE_") for env in envs)
    fields = {f.name for f in dataclasses.fields(ServerConfig)}
    for option in OPTIONS:
        if option.target is None:
            continue
        head, _, sub = option.target.partition(".")
        assert head in fields, option
        if sub:
            assert hasattr(getattr(ServerConfig(), head), sub), option


def test_defaults_are_the_configs_defaults() -> None:
    assert config_from(build_parser({}).parse_args([])) == dataclasses.replace(
        ServerConfig(),
        gc_freeze=True,  # the CLI runs the GC policy; code opts in
    )


def test_limits_are_the_protocols_not_a_copy() -> None:
    from presence_protocol import Limits

    assert isinstance(ServerLimits(), Limits)
    assert ServerLimits(commands_per_minute=7).announce() == Limits(commands_per_minute=7)


def test_one_config_error() -> None:
    assert github.ConfigError is ConfigError


INT_OPTIONS = [o for o in OPTIONS if o.kind is Kind.INT and o.flag and o.target]
LIST_OPTIONS = [o for o in OPTIONS if o.kind is Kind.LIST]


@settings(deadline=None)  # building a parser is slow on a loaded machine; no speed bound here
@given(
    choice=st.sampled_from(INT_OPTIONS),
    flag=st.none() | st.integers(min_value=1, max_value=65535),
    env=st.none() | st.integers(min_value=1, max_value=65535),
)
def test_a_flag_beats_its_variable_which_beats_the_default(
    choice: options.Option, flag: int | None, env: int | None
) -> None:
    environ = {} if env is None else {choice.env: f" {env} "}
    argv = [] if flag is None else [str(choice.flag), str(flag)]
    args = build_parser(environ).parse_args(argv)
    want = flag if flag is not None else env if env is not None else choice.default
    assert getattr(args, choice.name) == want


@settings(deadline=None)
@given(
    choice=st.sampled_from(LIST_OPTIONS),
    flags=st.lists(st.sampled_from(["10.0.0.0/8", "::1", "none"]), max_size=3),
    env=st.lists(st.sampled_from(["192.0.2.0/24", "127.0.0.1"]), max_size=3),
)
def test_a_repeatable_flag_replaces_the_variables_list(
    choice: options.Option, flags: list[str], env: list[str]
) -> None:
    environ = {choice.env: ", ".join(env)} if env else {}
    argv = [arg for value in flags for arg in (str(choice.flag), value)]
    args = build_parser(environ).parse_args(argv)
    assert getattr(args, choice.name) == (flags or env)


def test_a_boolean_flag_and_its_variable() -> None:
    assert build_parser({"PRESENCE_DEV_LOGIN": "yes"}).parse_args([]).dev_login is True
    assert build_parser({"PRESENCE_DEV_LOGIN": "off"}).parse_args([]).dev_login is False
    assert build_parser({}).parse_args(["--dev-login"]).dev_login is True
    no_freeze = config_from(build_parser({"PRESENCE_NO_GC_FREEZE": "1"}).parse_args([]))
    assert no_freeze.gc_freeze is False


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PRESENCE_PORT": "eighty"}, "$PRESENCE_PORT must be a whole number"),
        ({"PRESENCE_TTL": "soon"}, "$PRESENCE_TTL must be a number"),
        ({"PRESENCE_DEV_LOGIN": "maybe"}, "$PRESENCE_DEV_LOGIN must be 1/0"),
        ({"PRESENCE_KEEP_DELIVERED_DAYS": "a week"}, "a number of days"),
        ({"PRESENCE_LOG_LEVEL": "loud"}, "DEBUG or INFO"),
    ],
)
def test_a_bad_variable_is_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match="must be") as err:
        build_parser(env)
    assert named in str(err.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"port": 70000}, "--port must be between 0 and 65535"),
        ({"presence_ttl": 0.5}, "--presence-ttl must be between 1 and 3600"),
        ({"db_pool_size": 0}, "--db-pool-size must be at least 1"),
        ({"redis_url": "http://x"}, "--redis must be a URL"),
        ({"trusted_proxies": ("nowhere",)}, "--trusted-proxy 'nowhere' is not an address"),
        ({"allowed_origins": ("example.com",)}, "must be scheme://host"),
        ({"handshakes_per_minute": -1}, "0 (unlimited) or more"),
        ({"drain_seconds": -1.0}, "--drain-seconds must be at least 0"),
        ({"limits": ServerLimits(commands_per_minute=0)}, "--commands-per-minute"),
        ({"dev_login": True, "host": "192.0.2.1"}, "loopback"),
    ],
)
def test_a_config_built_in_code_gets_the_same_checks(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate(dataclasses.replace(ServerConfig(), **change))
    assert message in str(err.value)


# ------------------------------------------------- a new option is one line in one place


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be more than 0"


class _GrownLimits(ServerLimits):
    """ServerLimits plus a limit an operator may set: one annotated field."""

    max_widgets: Annotated[
        int, cfg.limit_option("--max-widgets", "PRESENCE_MAX_WIDGETS", "widgets", check=_positive)
    ] = 7


@dataclasses.dataclass(frozen=True, slots=True)
class _GrownConfig(ServerConfig):
    """ServerConfig plus options added the only way there is: one field line each."""

    limits: _GrownLimits = dataclasses.field(default_factory=_GrownLimits)

    greeting: str = cfg.option("hello", "--greeting", "PRESENCE_GREETING", "what the server says")
    burst: int = cfg.option(3, "--burst", "PRESENCE_BURST", "frames per burst", check=_positive)


GROWN = OptionTable.of(_GrownConfig, options.OTHER_ROWS)


def _grown_parser(env: dict[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grown")
    options.add_arguments(parser, env, table=GROWN)
    return parser


def test_a_new_field_line_is_a_flag_a_variable_a_config_field_and_a_docs_row() -> None:
    # the command line, with its help text
    help_text = " ".join(_grown_parser({}).format_help().split())
    assert "--greeting" in help_text and "$PRESENCE_GREETING; default hello)" in help_text
    flagged = config_from(_grown_parser({}).parse_args(["--greeting", "hi"]), GROWN)
    assert isinstance(flagged, _GrownConfig) and flagged.greeting == "hi"
    # the environment, under the one precedence rule
    environ = {"PRESENCE_GREETING": "hey", "PRESENCE_BURST": "9"}
    from_env = config_from(_grown_parser(environ).parse_args([]), GROWN)
    assert isinstance(from_env, _GrownConfig)
    assert (from_env.greeting, from_env.burst) == ("hey", 9)
    both = config_from(_grown_parser(environ).parse_args(["--burst", "4"]), GROWN)
    assert isinstance(both, _GrownConfig) and both.burst == 4
    # the config object: typed field with the declared default, the rest untouched
    assert _GrownConfig().greeting == "hello" and _GrownConfig().burst == 3
    assert config_from(_grown_parser({}).parse_args([]), GROWN) == _GrownConfig(gc_freeze=True)
    # the checks, on the command line and on a config built in code
    with pytest.raises(ConfigError, match="--burst must be more than 0"):
        config_from(_grown_parser({}).parse_args(["--burst", "0"]), GROWN)
    with pytest.raises(ConfigError, match="--burst must be more than 0"):
        validate(_GrownConfig(burst=-1), GROWN)
    with pytest.raises(ConfigError, match=r"\$PRESENCE_BURST must be a whole number"):
        _grown_parser({"PRESENCE_BURST": "many"})
    # the settings table of docs/deployment.md
    table = options.render_markdown(GROWN)
    assert "| `--greeting` | `PRESENCE_GREETING` | `hello` | what the server says |" in table
    assert "| `--burst` | `PRESENCE_BURST` | `3` | frames per burst |" in table
    assert "| `--max-widgets` | `PRESENCE_MAX_WIDGETS` | `7` | widgets |" in table
    assert "--greeting" not in options.render_markdown()  # the real table is not touched


def test_a_new_limit_field_line_is_an_option_of_the_nested_part_too() -> None:
    assert "--max-widgets N" in _grown_parser({}).format_help()
    config = config_from(_grown_parser({"PRESENCE_MAX_WIDGETS": "9"}).parse_args([]), GROWN)
    assert isinstance(config.limits, _GrownLimits) and config.limits.max_widgets == 9
    flagged = config_from(_grown_parser({}).parse_args(["--max-widgets", "3"]), GROWN)
    assert isinstance(flagged.limits, _GrownLimits) and flagged.limits.max_widgets == 3
    assert flagged.limits.commands_per_minute == ServerLimits().commands_per_minute
    with pytest.raises(ConfigError, match="--max-widgets must be more than 0"):
        validate(_GrownConfig(limits=_GrownLimits(max_widgets=0)), GROWN)


def test_every_row_states_its_fields_default() -> None:
    """A row's default is its field's (after days → seconds and ``--no-…``), so
    neither can drift: there is only one of them, read two ways."""
    plain = ServerConfig()
    for option in OPTIONS:
        if option.target is None or option.name == "no_gc_freeze":
            continue
        held: Any = plain
        for part in option.target.split("."):
            held = getattr(held, part)
        assert option.to_config(option.default) == held, option.name
