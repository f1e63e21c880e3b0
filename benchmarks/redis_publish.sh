#!/usr/bin/env bash
# What one Redis process does with PUBLISH on this machine: the ceiling docs/scaling.md
# plans against. Starts a private redis-server on a free loopback port (no persistence),
# then runs redis-benchmark with PUBLISH of a payload the size of a published presence
# event (header + 142-byte frame ~ 230 bytes), pipelined as redis_fanout.py pipelines:
#   1. to channels nobody subscribes to (a friend who is offline: today's server still
#      publishes to every friend's channel),
#   2. to channels that one subscriber connection listens on (an online friend on
#      another instance: Redis writes the message to that instance's connection);
# and then the registry's PUT script (presence_server/cluster/redis_registry.py), one
# per presence change, for a device that is already registered, over 100,000 users.
# Usage: benchmarks/redis_publish.sh [REQUESTS]   (from the repository root; needs
# redis-server, redis-benchmark, redis-cli, bc and the project's environment for the script)
set -euo pipefail
REQUESTS=${1:-1000000}
DIR=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log"
SUBSCRIBERS=()
cleanup() {
  for pid in "${SUBSCRIBERS[@]}"; do kill "$pid" 2>/dev/null || true; done
  kill "$(cat "$DIR/redis.pid")" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
until redis-cli -p "$PORT" ping >/dev/null 2>&1; do sleep 0.1; done
PAYLOAD=$(head -c 230 /dev/zero | tr '\0' 'x')
CHANNELS=1000
echo "redis $(redis-server --version | awk '{print $3}'), ${REQUESTS} PUBLISH of 230 bytes, pipeline 50, 4 clients"
rate() {  # requests per second from redis-benchmark's CSV line
  redis-benchmark -p "$PORT" --csv -n "$REQUESTS" -c 4 -P 50 -r "$CHANNELS" \
    PUBLISH 'u:__rand_int__' "$PAYLOAD" | tail -n 1 | cut -d, -f2 | tr -d '"'
}
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$(cat "$DIR/redis.pid")/stat"; }
before=$(cpu)
echo "no subscribers:  $(rate) PUBLISH/s  (redis-server CPU $(echo "$(cpu) - $before" | bc) s)"
# Two subscriber connections (two "instances"), each on half of the channels.
for half in 0 1; do
  args=()
  for ((i = half; i < CHANNELS; i += 2)); do args+=("$(printf 'u:%012d' "$i")"); done
  redis-cli -p "$PORT" SUBSCRIBE "${args[@]}" >/dev/null &
  SUBSCRIBERS+=($!)
done
until [ "$(redis-cli -p "$PORT" PUBSUB NUMSUB "$(printf 'u:%012d' $((CHANNELS - 1)))" | tail -n 1)" = 1 ]; do
  sleep 0.1
done
before=$(cpu)
echo "one subscriber:  $(rate) PUBLISH/s  (redis-server CPU $(echo "$(cpu) - $before" | bc) s)"
PUT=$(uv run python -c 'from presence_server.cluster.redis_registry import PUT; print(PUT)')
SHA=$(redis-cli -p "$PORT" SCRIPT LOAD "$PUT")
redis-cli -p "$PORT" SET 'p:hb:e1' live >/dev/null
STATE='{"s":"online","a":{"l":"python","p":"a private project"},"t":1765000000}'
before=$(cpu)
PUTS=$(redis-benchmark -p "$PORT" --csv -n "$((REQUESTS / 4))" -c 4 -P 50 -r 100000 \
  EVALSHA "$SHA" 3 'p:dev:__rand_int__' 'p:users:e1' 'p:hb:e1' 'e1|c1' "$STATE" 7 'e1' '|c1' 0 |
  tail -n 1 | rev | cut -d, -f7 | rev | tr -d '"')
used=$(echo "$(cpu) - $before" | bc)
echo "registry PUT:    $PUTS scripts/s  (redis-server CPU $used s for $((REQUESTS / 4)))"
# The script really wrote (an error reply would be counted as a request too).
KEY=$(redis-cli -p "$PORT" --scan --pattern 'p:dev:*' | head -n 1 || true)
echo "a device hash:   $KEY -> $(redis-cli -p "$PORT" HKEYS "$KEY" | tr '\n' ' ')"
