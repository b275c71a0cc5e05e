#!/usr/bin/env bash
# run-unit.sh -- runs cmocka unit test binaries and sums their results.
#
#   scripts/run-unit.sh build/tests/unit/store/test_migrate ...
#
# Prints each binary's outcome (its full output when it failed) and ends with
# exactly `N passed, N failed`, N counting test cases (cmocka's
# "[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)" lines; a binary that
# crashes or exits non-zero without reporting a failure counts one failure).
# Exit status 1 when anything failed.
#
# Tests that need PostgreSQL / Redis read EF_TEST_DATABASE_URL /
# EF_TEST_REDIS_URL. Unless the caller set them, this script starts the test
# services (.state/test, scripts/services.sh), creates a fresh database for
# this run (nothing migrated), exports both URLs, and afterwards drops the
# database and stops the services it started (unless another runner still
# uses them).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${EF_TEST_STATE:-$REPO/.state/test}
TIMEOUT=${EF_UNIT_TIMEOUT:-300}

if [ $# -eq 0 ]; then
    echo "run-unit.sh: no test binaries given" >&2
    echo "0 passed, 0 failed"
    exit 0
fi

unit_db=""
admin_url=""
need=""
[ -n "${EF_TEST_DATABASE_URL:-}" ] || need="pg"
[ -n "${EF_TEST_REDIS_URL:-}" ] || need="$need redis"
need=${need# }

# The test services are shared with other runners (tests/e2e/run.py; `make -j
# test` runs both at once): each holds a shared lock on STATE/.users; what a
# runner had to start is marked in STATE/.auto-stop and stopped by the last
# runner to leave.
cleanup() {
    if [ -n "$unit_db" ]; then
        psql -X -q -d "$admin_url" -c "DROP DATABASE IF EXISTS \"$unit_db\" WITH (FORCE)" \
            >/dev/null 2>&1 || true
    fi
    if [ -n "$need" ] && flock -xn 8 && [ -f "$STATE/.auto-stop" ]; then
        EF_SERVICES="$(cat "$STATE/.auto-stop")" "$REPO/scripts/services.sh" stop "$STATE" \
            >/dev/null 2>&1 8>&- || true
        rm -f "$STATE/.auto-stop"
    fi
}
trap cleanup EXIT

if [ -n "$need" ]; then
    mkdir -p "$STATE"
    exec 8>>"$STATE/.users"
    flock -s 8
    if ! EF_SERVICES="$need" "$REPO/scripts/services.sh" status "$STATE" >/dev/null 2>&1 8>&-; then
        echo "$need" >"$STATE/.auto-stop"
    fi
    EF_SERVICES="$need" EF_SERVICES_FAST=1 "$REPO/scripts/services.sh" start "$STATE" \
        >/dev/null 8>&- || {
        echo "run-unit.sh: could not start the test services ($need)" >&2
        exit 1
    }
    svc_env=$(EF_SERVICES="$need" "$REPO/scripts/services.sh" env "$STATE" 8>&-) || exit 1
    if [ -z "${EF_TEST_DATABASE_URL:-}" ]; then
        admin_url=$(sed -n 's/^export EF_DATABASE_URL=//p' <<<"$svc_env")
        unit_db="efunit_$$_$(date +%s)"
        psql -X -q -d "$admin_url" -c "CREATE DATABASE \"$unit_db\"" >/dev/null || exit 1
        export EF_TEST_DATABASE_URL="${admin_url%/*}/$unit_db"
    fi
    if [ -z "${EF_TEST_REDIS_URL:-}" ]; then
        EF_TEST_REDIS_URL=$(sed -n 's/^export EF_REDIS_URL=//p' <<<"$svc_env")
        export EF_TEST_REDIS_URL
    fi
fi

passed=0
failed=0
skipped=0
for bin in "$@"; do
    name=${bin#"$REPO"/}
    t0=$(date +%s.%N)
    out=$(cd "$REPO" && timeout "$TIMEOUT" "$bin" 2>&1 8>&-)
    rc=$?
    secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    p=$(grep -aE '^\[  PASSED  \] [0-9]+ test' <<<"$out" | awk '{ s += $4 } END { print s + 0 }')
    f=$(grep -aE '^\[  FAILED  \] [0-9]+ test' <<<"$out" | awk '{ s += $4 } END { print s + 0 }')
    s=$(grep -aE '^\[  SKIPPED \] [0-9]+ test' <<<"$out" | awk '{ s += $4 } END { print s + 0 }')
    why=""
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        if [ "$rc" -eq 124 ]; then why=" (timed out after ${TIMEOUT}s)"; else why=" (exit $rc)"; fi
    fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ "$s" -eq 0 ]; then
        f=1
        why=" (no cmocka results in its output)"
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
    extra=""
    [ "$s" -gt 0 ] && extra=", $s skipped"
    if [ "$f" -gt 0 ]; then
        echo "FAIL $name: $p passed, $f failed$extra$why ${secs}s"
        while IFS= read -r line; do printf '    %s\n' "$line"; done <<<"$out"
    else
        echo "PASS $name: $p passed$extra ${secs}s"
    fi
done

[ "$skipped" -gt 0 ] && echo "($skipped skipped)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
