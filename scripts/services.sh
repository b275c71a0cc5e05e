#!/usr/bin/env bash
# services.sh -- a private PostgreSQL and Redis for development and tests.
#
#   scripts/services.sh start  [STATE_DIR]   start both (idempotent), wait until they answer
#   scripts/services.sh stop   [STATE_DIR]   stop both
#   scripts/services.sh status [STATE_DIR]   exit 0 when both answer
#   scripts/services.sh env    [STATE_DIR]   print `export EF_DATABASE_URL=...` / `export EF_REDIS_URL=...`
#
# STATE_DIR defaults to $EF_STATE_DIR, else <repo>/.state/dev (git-ignored);
# the tests use $EF_TEST_STATE, else .state/test.
# Both servers listen on 127.0.0.1 only, on free ports chosen once and kept in
# STATE_DIR (reused on restart while they are free), never on the system's
# 5432 / 6379. PostgreSQL refuses to run as root: as root, the cluster is
# created and run by the system user `easyflow` (created when missing). When
# that user cannot reach STATE_DIR (a clone under a private home folder), the
# cluster goes to /var/lib/easyflow/pg-<hash of STATE_DIR> instead (said once,
# remembered in STATE_DIR/pg.home); everything else stays in STATE_DIR.
#
# Environment:
#   EF_SERVICES="pg redis"   which services to handle (e.g. only "redis" when the
#                            user brings their own PostgreSQL)
#   EF_SERVICES_FAST=1       durability off (fsync, synchronous_commit,
#                            full_page_writes): for throw-away test state only
#   EF_SERVICES_USER=name    the unprivileged user to run PostgreSQL as when root
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CMD=${1:-}
STATE=${2:-${EF_STATE_DIR:-$REPO/.state/dev}}
SERVICES=${EF_SERVICES:-pg redis}
PGUSER_NAME=easyflow            # database superuser inside our cluster
RUN_USER=${EF_SERVICES_USER:-easyflow}

usage() {
    echo "usage: $0 {start|stop|status|env} [STATE_DIR]" >&2
    exit 2
}
[ -n "$CMD" ] || usage

mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
REDIS_DIR=$STATE/redis

want() { [[ " $SERVICES " == *" $1 "* ]]; }
die() {
    echo "services: $*" >&2
    exit 1
}

# Where PostgreSQL's files live: STATE_DIR/pg, or the folder remembered in
# STATE_DIR/pg.home (see pg_relocate).
pg_paths() {
    PGHOME=$STATE/pg
    if [ -s "$STATE/pg.home" ]; then
        PGHOME=$(cat "$STATE/pg.home")
    fi
    PGDATA=$PGHOME/data
    PGRUN=$PGHOME/run
    PGLOG=$PGHOME/postgresql.log
}

# As root, before the first initdb: when the run user cannot reach
# STATE_DIR, a folder of ours under /var/lib/easyflow instead, chosen once
# and remembered in STATE_DIR/pg.home (said on stderr).
pg_relocate() {
    local home
    [ "$(id -u)" -eq 0 ] || return 0
    [ ! -s "$STATE/pg.home" ] && [ ! -f "$STATE/pg/data/PG_VERSION" ] || return 0
    runuser -u "$RUN_USER" -- test -x "$STATE" && return 0
    home=/var/lib/easyflow/pg-$(printf '%s' "$STATE" | sha256sum | cut -c1-12)
    mkdir -p "$home"
    chmod 755 /var/lib/easyflow
    echo "$home" >"$STATE/pg.home"
    echo "services: user $RUN_USER (PostgreSQL) cannot reach $STATE (a parent folder is" \
        "private), so PostgreSQL's files go to $home (remembered in $STATE/pg.home)" >&2
    pg_paths
}

pg_bindir() {
    local d best=""
    if command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir 2>/dev/null || true)
        if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            best=$d
        fi
    fi
    # The newest server installed wins over what pg_config (the client
    # library's package) points at.
    while IFS= read -r d; do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && best=$d
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
    [ -n "$best" ] || die "no PostgreSQL server binaries (initdb, pg_ctl) found; run scripts/deps.sh"
    echo "$best"
}

port_free() {
    python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

# A free loopback port below the kernel's ephemeral range (so an outgoing
# connection cannot take it between our check and the server's bind).
pick_port() {
    local avoid=${1:-0} p
    for _ in $(seq 1 200); do
        p=$((15000 + RANDOM % 17000))
        [ "$p" -ne "$avoid" ] || continue
        if port_free "$p"; then
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

# The port remembered in $1 when still free (or already ours), else a new one.
choose_port() {
    local file=$1 avoid=${2:-0} p
    if [ -s "$file" ]; then
        p=$(cat "$file")
        if port_free "$p"; then
            echo "$p"
            return 0
        fi
    fi
    pick_port "$avoid"
}

# ---- PostgreSQL ----------------------------------------------------------

as_pg_user() {
    # Runs a command as the owner of the cluster (root -> the system user).
    if [ "$(id -u)" -eq 0 ]; then
        (cd "$PGHOME" 2>/dev/null || cd /; runuser -u "$RUN_USER" -- "$@")
    else
        "$@"
    fi
}

ensure_run_user() {
    [ "$(id -u)" -eq 0 ] || return 0
    if ! id -u "$RUN_USER" >/dev/null 2>&1; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$RUN_USER"
    fi
    pg_relocate
    if ! runuser -u "$RUN_USER" -- test -x "$(dirname "$PGHOME")"; then
        die "user $RUN_USER cannot reach $PGHOME (a parent folder is not world-searchable);" \
            "set EF_STATE_DIR (make run) or EF_TEST_STATE (make test) to a folder it can reach"
    fi
}

pg_port() { cat "$STATE/pg.port" 2>/dev/null || true; }

pg_running() {
    local bin=$1 port
    port=$(pg_port)
    [ -n "$port" ] || return 1
    [ -f "$PGDATA/postmaster.pid" ] || return 1
    as_pg_user "$bin/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1 || return 1
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 5
}

pg_init() {
    local bin=$1
    [ -f "$PGDATA/PG_VERSION" ] && return 0
    echo "services: initdb $PGDATA"
    mkdir -p "$PGHOME"
    rm -rf "$PGDATA"
    mkdir -p "$PGDATA" "$PGRUN"
    if [ "$(id -u)" -eq 0 ]; then
        chown "$RUN_USER:" "$PGHOME" "$PGDATA" "$PGRUN"
    fi
    chmod 700 "$PGDATA"
    as_pg_user "$bin/initdb" -D "$PGDATA" -U "$PGUSER_NAME" --auth=trust -E UTF8 --no-locale \
        >"$PGHOME/initdb.log" 2>&1 || {
        cat "$PGHOME/initdb.log" >&2
        die "initdb failed"
    }
    echo "include_if_exists = 'easyflow.conf'" >>"$PGDATA/postgresql.conf"
}

pg_start() {
    local bin port
    bin=$(pg_bindir)
    ensure_run_user
    if pg_running "$bin"; then
        return 0
    fi
    pg_init "$bin"
    mkdir -p "$PGRUN"
    if [ "$(id -u)" -eq 0 ]; then
        chown "$RUN_USER:" "$PGHOME" "$PGRUN"
        touch "$PGLOG"
        chown "$RUN_USER:" "$PGLOG"
    fi
    # A stale postmaster.pid of a crashed server is handled by pg_ctl itself.
    port=$(choose_port "$STATE/pg.port" "$(cat "$STATE/redis.port" 2>/dev/null || echo 0)")
    {
        echo "# written by scripts/services.sh on every start"
        echo "port = $port"
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '$PGRUN'"
        echo "max_connections = 300"
        if [ "${EF_SERVICES_FAST:-0}" = 1 ]; then
            echo "fsync = off"
            echo "synchronous_commit = off"
            echo "full_page_writes = off"
        fi
    } >"$PGHOME/easyflow.conf.new"
    if [ "$(id -u)" -eq 0 ]; then
        chown "$RUN_USER:" "$PGHOME/easyflow.conf.new"
    fi
    mv "$PGHOME/easyflow.conf.new" "$PGDATA/easyflow.conf"
    echo "$port" >"$STATE/pg.port"
    # 9>&-: the server must not inherit (and hold) our lock.
    as_pg_user "$bin/pg_ctl" -D "$PGDATA" -l "$PGLOG" -w -t 60 start >/dev/null 9>&- || {
        tail -n 20 "$PGLOG" >&2 || true
        die "PostgreSQL did not start (log: $PGLOG)"
    }
    for _ in $(seq 1 100); do
        "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1 && break
        sleep 0.1
    done
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 5 || die "PostgreSQL does not answer on $port"
    if [ "$(psql -X -A -t -h 127.0.0.1 -p "$port" -U "$PGUSER_NAME" -d postgres \
        -c "SELECT 1 FROM pg_database WHERE datname = 'easyflow'")" != 1 ]; then
        psql -X -q -h 127.0.0.1 -p "$port" -U "$PGUSER_NAME" -d postgres \
            -c "CREATE DATABASE easyflow" >/dev/null
    fi
    echo "services: PostgreSQL on 127.0.0.1:$port (data $PGDATA)"
}

pg_stop() {
    local bin
    bin=$(pg_bindir)
    [ -f "$PGDATA/postmaster.pid" ] || return 0
    as_pg_user "$bin/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    echo "services: PostgreSQL stopped"
}

# ---- Redis ---------------------------------------------------------------

redis_port() { cat "$STATE/redis.port" 2>/dev/null || true; }

redis_running() {
    local port
    port=$(redis_port)
    [ -n "$port" ] || return 1
    [ -s "$REDIS_DIR/redis.pid" ] || return 1
    kill -0 "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null || return 1
    [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]
}

redis_start() {
    local port
    command -v redis-server >/dev/null || die "redis-server not found; run scripts/deps.sh"
    if redis_running; then
        return 0
    fi
    mkdir -p "$REDIS_DIR"
    rm -f "$REDIS_DIR/redis.pid"
    port=$(choose_port "$STATE/redis.port" "$(pg_port || echo 0)")
    echo "$port" >"$STATE/redis.port"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
        --dir "$REDIS_DIR" --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" \
        --databases "${EF_REDIS_DATABASES:-1024}" >/dev/null 9>&-
    for _ in $(seq 1 100); do
        [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ] && break
        sleep 0.05
    done
    [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ] || {
        tail -n 20 "$REDIS_DIR/redis.log" >&2 || true
        die "Redis did not start on $port"
    }
    echo "services: Redis on 127.0.0.1:$port"
}

redis_stop() {
    local port pid
    port=$(redis_port)
    [ -s "$REDIS_DIR/redis.pid" ] || return 0
    pid=$(cat "$REDIS_DIR/redis.pid")
    if kill -0 "$pid" 2>/dev/null; then
        redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
    fi
    rm -f "$REDIS_DIR/redis.pid"
    echo "services: Redis stopped"
}

# ---- commands ------------------------------------------------------------

pg_paths

# Serialize start/stop on one state folder (tests may call us concurrently).
exec 9>"$STATE/.lock"

case "$CMD" in
start)
    flock 9
    if want pg; then pg_start; fi
    if want redis; then redis_start; fi
    ;;
stop)
    flock 9
    if want redis; then redis_stop; fi
    if want pg; then pg_stop; fi
    ;;
status)
    rc=0
    if want pg; then
        if pg_running "$(pg_bindir)"; then
            echo "PostgreSQL: running on 127.0.0.1:$(pg_port)"
        else
            echo "PostgreSQL: stopped"
            rc=1
        fi
    fi
    if want redis; then
        if redis_running; then
            echo "Redis: running on 127.0.0.1:$(redis_port)"
        else
            echo "Redis: stopped"
            rc=1
        fi
    fi
    exit $rc
    ;;
env)
    if want pg; then
        [ -n "$(pg_port)" ] || die "PostgreSQL was never started in $STATE"
        echo "export EF_DATABASE_URL=postgresql://$PGUSER_NAME@127.0.0.1:$(pg_port)/easyflow"
    fi
    if want redis; then
        [ -n "$(redis_port)" ] || die "Redis was never started in $STATE"
        echo "export EF_REDIS_URL=redis://127.0.0.1:$(redis_port)/0"
    fi
    ;;
*)
    usage
    ;;
esac
