#!/usr/bin/env bash
# bench.sh -- the figures of `make bench`: printed with their verification,
# never asserted, never part of `make test`.
#
#   EF_BIN=/abs/build/easyflow scripts/bench.sh [bench binaries...]
#
# `make bench` installs what is missing (scripts/deps.sh, wrk among it),
# builds build/ (-O2, no sanitizer) and calls this. tests/bench/bench.py
# runs the bench binaries (bench_nlp: the matcher), then starts a stack of
# its own under .state/bench/ -- a private PostgreSQL with durable settings
# and pg_stat_statements, Redis, a fake Telegram Bot API on loopback, and
# `$EF_BIN serve` with bots/demo.yaml configured by the environment -- and
# drives it with wrk (tests/bench/updates.lua). Every figure is printed as
#   RESULT <name> <value> <unit>
#     verify: <what it was checked against>
# followed by where the time went (CPU per process, pg_stat_statements).
# The report and the logs stay in .state/bench/last/. docs/performance.md
# explains each figure.
#
# Environment: BENCH_SECS (default 30, the peak run; the other load phases
# last half of it; the default run takes about 2-3 minutes), BENCH_CONNS,
# BENCH_THREADS, BENCH_CHATS, BENCH_RATE, BENCH_PG_BATCH, BENCH_PG_CLIENTS,
# SOAK=<seconds> (adds the RSS soak), BENCH_KEEP=1 (keep the database).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ -z "${EF_BIN:-}" ]; then
    echo "bench.sh: set EF_BIN to the easyflow binary (make bench does)" >&2
    exit 2
fi
for tool in wrk redis-server python3; do
    command -v "$tool" >/dev/null || {
        echo "bench.sh: $tool not found: run scripts/deps.sh" >&2
        exit 2
    }
done

exec python3 "$REPO/tests/bench/bench.py" "$@"
