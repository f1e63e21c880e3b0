"""``--redis-pubsub``: bad input is refused at start with a message that says why,
and a good one reaches the config (no services needed)."""

from __future__ import annotations

import pytest

from presence_server.__main__ import build_parser
from presence_server.config import ConfigError
from presence_server.edge.options import config_from, validate


def test_sharded_pubsub_without_the_registry_redis_is_refused() -> None:
    config = config_from(build_parser({}).parse_args(["--redis-pubsub", "redis://shards:7000"]))
    with pytest.raises(ConfigError, match="--redis-pubsub needs --redis"):
        validate(config)


def test_a_pubsub_url_that_is_not_redis_is_refused() -> None:
    args = ["--redis", "redis://r:6379/0", "--redis-pubsub", "http://shards:7000"]
    with pytest.raises(ConfigError, match="redis://"):
        validate(config_from(build_parser({}).parse_args(args)))


def test_flag_and_environment_reach_the_config() -> None:
    env = {"PRESENCE_REDIS": "redis://r:6379/0", "PRESENCE_REDIS_PUBSUB": "redis://s:7000"}
    config = config_from(build_parser(env).parse_args([]))
    validate(config)
    assert (config.redis_url, config.redis_pubsub_url) == ("redis://r:6379/0", "redis://s:7000")
    flagged = config_from(build_parser(env).parse_args(["--redis-pubsub", "redis://t:7001"]))
    assert flagged.redis_pubsub_url == "redis://t:7001"
