#!/usr/bin/env bash
# What one Redis process does with PUBLISH on this machine: the ceiling docs/scaling.md
# plans against. Starts a private redis-server on a free loopback port (no persistence),
# then runs redis-benchmark with PUBLISH of a payload the size of a published presence
# event (header + 142-byte frame ~ 230 bytes), pipelined as redis_fanout.py pipelines:
#   1. to channels nobody subscribes to (a friend who is offline: today's server still
#      publishes to every friend's channel),
#   2. to channels that one subscriber connection listens on (an online friend on
#      another instance: Redis writes the message to that instance's connection).
# Usage: benchmarks/redis_publish.sh [REQUESTS]   (needs redis-server, redis-benchmark)
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
