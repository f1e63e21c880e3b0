#!/usr/bin/env bash
# Start throwaway PostgreSQL and Redis servers on free loopback ports for tests.
#   scripts/start_services.sh DIR     -> starts them with data under DIR, writes DIR/env
#   scripts/start_services.sh --stop DIR
# `source DIR/env` then exports TEST_PG_DSN and TEST_REDIS_URL. Run as root
# (PostgreSQL runs as the postgres user) or as a user that owns DIR.
set -euo pipefail
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ "${1:-}" = "--stop" ]; then
  DIR=$2
  [ -f "$DIR/redis.pid" ] && kill "$(cat "$DIR/redis.pid")" 2>/dev/null || true
  [ -d "$DIR/pg" ] && as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -m immediate stop >/dev/null 2>&1 || true
  exit 0
fi

DIR=$1
mkdir -p "$DIR/pg" "$DIR/pgsock"
chmod 755 "$DIR"
[ "$(id -u)" = 0 ] && chown postgres "$DIR/pg" "$DIR/pgsock"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

PG_PORT=$(free_port)
as_pg "$PGBIN/initdb" -D "$DIR/pg" -A trust -U postgres >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -w -l "$DIR/pg/server.log" \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $DIR/pgsock -c fsync=off -c max_connections=300" \
  start >/dev/null
as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres presence_test

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log"

cat > "$DIR/env" <<ENV
export TEST_PG_DSN=postgresql://postgres@127.0.0.1:$PG_PORT/presence_test
export TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
ENV
cat "$DIR/env"
