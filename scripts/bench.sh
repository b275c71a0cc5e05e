#!/usr/bin/env bash
# bench.sh -- throughput figures, printed and never asserted.
#
#   EF_BIN=/abs/build/easyflow scripts/bench.sh [bench binaries...]
#
# Runs each bench binary (they print `name value unit` lines), then measures
# the webhook end to end: the test services (.state/test), a fresh migrated
# database, `$EF_BIN serve`, and BENCH_UPDATES (default 20000) distinct
# Telegram updates posted over BENCH_CONNS (default 64) keep-alive connections
# to 127.0.0.1, for at most BENCH_SECONDS (default 60). Prints
#   webhook_updates_per_sec <n> msg/s
#   webhook_latency_p50 <ms> ms
#   webhook_latency_p99 <ms> ms
# and how many updates were answered other than 200.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

for b in "$@"; do
    echo "# $(basename "$b")"
    "$b" || echo "# $(basename "$b") exited with $?"
done

if [ -z "${EF_BIN:-}" ]; then
    echo "bench.sh: EF_BIN not set: skipping the webhook figure" >&2
    exit 0
fi

exec python3 - "$REPO" <<'EOF'
import asyncio
import json
import os
import sys
import time

repo = sys.argv[1]
sys.path.insert(0, os.path.join(repo, "tests", "e2e"))
import eftest  # noqa: E402

N = int(os.environ.get("BENCH_UPDATES", "20000"))
CONNS = int(os.environ.get("BENCH_CONNS", "64"))
LIMIT = float(os.environ.get("BENCH_SECONDS", "60"))
CHATS = int(os.environ.get("BENCH_CHATS", "2000"))

eftest.services_acquire()
eftest.begin_test("bench/webhook")


def request_bytes(i, secret):
    chat = 7000000000 + (i % CHATS)
    upd = {"update_id": 500000000 + i, "message": {
        "message_id": i // CHATS + 1, "date": 1700000000 + i,
        "from": {"id": chat, "is_bot": False, "first_name": "Бенч", "last_name": str(i % CHATS),
                 "language_code": "ru"},
        "chat": {"id": chat, "type": "private", "first_name": "Бенч"},
        "text": "Здравствуйте! Хочу узнать статус заказа №%d 📦" % i}}
    body = json.dumps(upd, ensure_ascii=False).encode()
    return (b"POST /webhook/telegram HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nX-Telegram-Bot-Api-Secret-Token: " +
            secret.encode() + b"\r\nContent-Length: " + str(len(body)).encode() +
            b"\r\n\r\n" + body)


async def conn_worker(port, reqs, lat, statuses, deadline):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for data in reqs:
            if time.monotonic() > deadline:
                return
            t0 = time.monotonic()
            writer.write(data)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            clen = 0
            close = False
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                k = k.strip().lower()
                if k == b"content-length":
                    clen = int(v.strip())
                elif k == b"connection" and v.strip().lower() == b"close":
                    close = True
            if clen:
                await reader.readexactly(clen)
            lat.append(time.monotonic() - t0)
            statuses[status] = statuses.get(status, 0) + 1
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


async def load(port, secret):
    # Chat c always goes over connection c % CONNS: per-chat order is kept.
    per_conn = [[] for _ in range(CONNS)]
    for i in range(N):
        per_conn[(i % CHATS) % CONNS].append(request_bytes(i, secret))
    lat, statuses = [], {}
    t0 = time.monotonic()
    deadline = t0 + LIMIT
    results = await asyncio.gather(*(conn_worker(port, r, lat, statuses, deadline)
                                     for r in per_conn), return_exceptions=True)
    elapsed = time.monotonic() - t0
    errors = [r for r in results if isinstance(r, BaseException)]
    return lat, statuses, elapsed, errors


ok = False
try:
    gw = eftest.Gateway(env={"EF_LOG_LEVEL": "warn"})
    lat, statuses, elapsed, errors = asyncio.run(load(gw.port, gw.secret))
    stored = eftest.count(gw.db, "messages WHERE direction = 'inbound'")
    gw.stop()
    lat.sort()
    done = len(lat)

    def pct(p):
        return lat[min(done - 1, int(p * done))] * 1000 if done else float("nan")
    print("webhook_updates_per_sec %.0f msg/s" % (done / elapsed if elapsed else 0))
    print("webhook_latency_p50 %.2f ms" % pct(0.50))
    print("webhook_latency_p99 %.2f ms" % pct(0.99))
    print("# %d updates answered in %.1fs over %d connections; statuses %s; %d rows stored%s" % (
        done, elapsed, CONNS, json.dumps(statuses, sort_keys=True), stored,
        "; %d connection errors (first: %r)" % (len(errors), errors[0]) if errors else ""))
    ok = True
finally:
    eftest.end_test(ok)
    eftest.services_release()
EOF
