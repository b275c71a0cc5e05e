#!/usr/bin/env python3
"""ingest_cost.py -- instructions PostgreSQL spends in one ef_ingest_rows() call.

    python3 tests/bench/ingest_cost.py [--calls N] [--modes generic,auto]

Wall-clock and CPU-time figures of one database call move with whatever
else the machine runs; an instruction count does not. This starts a
private PostgreSQL (scripts/services.sh, state in .state/ingest-cost),
migrates it with build/easyflow, fills it with some history (5,000 chats, two messages each, then ANALYZE as
autovacuum would),
stops it, and then runs batches through a single-user `postgres --single`
under `valgrind --tool=callgrind`: once with W warm-up calls, once with
W + N, so that the difference over N is the cost of one call with every
plan cached (start-up, catalog loading and first plans cancel out).

Batches (every event a Telegram text message with an intent, a decision
and one reply, as the gateway sends them, src/store/pg.c event_json):
  new1      1 message of a chat never seen
  new16     16 messages of 16 chats never seen
  known16   16 messages of 16 chats seen before
  known4    4 messages of 4 chats seen before (a batch at a steady 2,000/s)
  known1    1 message of a chat seen before
  sent16    not an ingest: 16 queued replies marked sent, as the dispatcher
            records them (src/store/outbox.c ef_store_outbox_sent_many)
  sent1     the same, one reply a call
--prepared runs the sent statements as a prepared statement.
  pairs16   16 messages of 8 chats seen before, two each

Modes: generic is ef_ingest_rows as migrated (sql/024, 026: plans made once
per connection); auto resets the function's plan_cache_mode for the run
(PostgreSQL's default, what 009-023 ran with) and sets it back after.

Prints `ingest_call_instr <batch> <mode> <instructions> instr` lines and,
per batch, the instructions per event; the profile of each W + N run is kept
in .state/ingest-cost/callgrind/<batch>-<mode> for callgrind_annotate.
--batches and --modes pick some (comma-separated). Needs valgrind; all of
them take ~8 minutes.
"""
import argparse
import json
import os
import pwd
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bench import pg_bindir

REPO = Path(__file__).resolve().parents[2]
STATE = REPO / ".state" / "ingest-cost"
WARM = 20


def sh(cmd, **kw):
    r = subprocess.run(cmd, text=True, capture_output=True, **kw)
    if r.returncode != 0:
        sys.exit("ingest_cost: %s failed: %s" % (Path(cmd[0]).name, r.stderr.strip()[-500:]))
    return r.stdout


def services(cmd):
    env = dict(os.environ, EF_SERVICES="pg")
    return sh([str(REPO / "scripts" / "services.sh"), cmd, str(STATE)], env=env)


def psql(url, sql):
    return sh(["psql", "-qAtX", "-v", "ON_ERROR_STOP=1", url, "-c", sql]).strip()


def event(integ, chat, mid):
    return {"kind": "new", "integration_id": integ, "platform": "telegram",
            "chat_id": str(chat), "chat_type": "private", "message_id": mid,
            "sender": {"id": str(chat), "name": "Анна", "is_bot": False},
            "text": "где мой заказ 12345?", "date": 1700000000, "meta": {},
            "nlp": {"intent": "order_status", "entities": {"order_id": "12345"},
                    "confidence": 0.9},
            "fsm": {"state": "await_order", "replies": [{"text": "Смотрю заказ 12345, минуту"}]}}


def call_sql(events):
    """The call as the store worker makes it: the batch as one jsonb text,
    its result rows printed (src/store/pg.c ingest_once)."""
    text = json.dumps(events, ensure_ascii=False).replace("'", "''")
    return "SELECT count(*), sum(length(r::text)) FROM ef_ingest_rows('%s'::jsonb) r" % text


SENT_SQL = ("UPDATE messages m SET delivery_status = 'sent', platform_message_id = s.pmid, "
            "sent_at = now(), updated_at = now(), failed_reason = NULL, "
            "metadata = CASE WHEN s.tpl THEN m.metadata || '{\"sent_as\": \"template\"}'::jsonb "
            "ELSE m.metadata END "
            "FROM jsonb_to_recordset('%s'::jsonb) AS s(id uuid, pmid text, tpl bool) "
            "WHERE m.id = s.id AND m.delivery_status = 'queued' "
            "AND m.id = ANY (ARRAY(SELECT (e->>'id')::uuid FROM jsonb_array_elements('%s'::jsonb) e))")


def sent_sql(queued, n, prepared):
    """n queued replies (ids taken from the list, so no two calls share one);
    prepared: as EXECUTE of the statement PREPAREd as ef_sent (--prepared)."""
    rows = json.dumps([{"id": queued.pop(), "pmid": "%d" % len(queued), "tpl": False}
                       for _ in range(n)])
    return "EXECUTE ef_sent('%s')" % rows if prepared else SENT_SQL % (rows, rows)


def batch_sql(integ, kind, rng, known):
    if kind == "new1":
        chats = [rng.randrange(10**12, 10**13)]
    elif kind == "new16":
        chats = [rng.randrange(10**12, 10**13) for _ in range(16)]
    elif kind in ("known16", "known4", "known1"):
        chats = rng.sample(known, int(kind[5:]))
    else:
        chats = [c for c in rng.sample(known, 8) for _ in range(2)]
    return call_sql([event(integ, c, "%d:%d" % (c, rng.randrange(10**15))) for c in chats])


def restore(pgdata):
    """The data directory as it was after the fill (a copy kept beside it):
    every run starts from the same database."""
    snap = STATE / "pg-after-fill"
    if not snap.exists():
        sh(["cp", "-a", pgdata, str(snap)])
    sh(["rm", "-rf", pgdata])
    sh(["cp", "-a", str(snap), pgdata])


def single_user(pgdata, dbname, lines, out):
    """Runs lines in postgres --single under callgrind, from the database as
    it was after the fill; returns Ir."""
    restore(pgdata)
    script = out.with_suffix(".sql")
    script.write_text("\n".join(lines) + "\n")
    os.chmod(script, 0o644)
    cmd = ("valgrind --tool=callgrind --callgrind-out-file=%s %s/postgres --single -D %s "
           "-c synchronous_commit=off %s < %s > %s.out 2> %s.err"
           % (out, pg_bindir(), pgdata, dbname, script, out, out))
    user = pwd.getpwuid(os.stat(pgdata).st_uid).pw_name
    subprocess.run(["su", user, "-s", "/bin/sh", "-c", cmd] if os.geteuid() == 0 else
                   ["/bin/sh", "-c", cmd], check=True)
    errors = [l for l in Path("%s.out" % out).read_text().splitlines() if "ERROR" in l]
    if errors:
        sys.exit("ingest_cost: %s" % errors[0])
    for line in Path(out).read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    sys.exit("ingest_cost: no callgrind summary in %s" % out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=60)
    ap.add_argument("--modes", default="generic,auto")
    ap.add_argument("--batches", default="new1,new16,known16,pairs16")
    ap.add_argument("--prepared", action="store_true")
    ap.add_argument("--prep", action="append", default=[],
                    help="an SQL statement run before the calls in both runs (an experiment: "
                    "DROP INDEX ..., CREATE OR REPLACE FUNCTION ...); repeatable")
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("ingest_cost: valgrind is not installed (apt-get install valgrind)")
    rng = random.Random(8)
    if (STATE / "pg-after-fill").exists():
        # The last run left its calls' rows in the data folder: start from
        # the fill again (the queued replies read below must be the copy's).
        restore(str(STATE / "pg" / "data"))
    services("start")
    urls = dict(re.findall(r"^export (\w+)=['\"]?([^'\"\n]*)", services("env"), re.M))
    url = urls["EF_DATABASE_URL"]
    sh([str(REPO / "build" / "easyflow"), "migrate"], env=dict(os.environ, EF_DATABASE_URL=url))
    integ = psql(url, "SELECT id FROM integrations WHERE name = 'ingest-cost'") or psql(
        url, "INSERT INTO integrations (platform_id, name, external_id) "
        "VALUES ('telegram', 'ingest-cost', 'ingest-cost') RETURNING id")
    known = list(range(5 * 10**11, 5 * 10**11 + 5000))
    if psql(url, "SELECT count(*) FROM conversations WHERE integration_id = '%s'" % integ) == "0":
        shutil.rmtree(STATE / "pg-after-fill", ignore_errors=True)
        for k in range(0, len(known), 16):
            for rep in ("a", "b"):
                psql(url, call_sql([event(integ, c, "%d:%s" % (c, rep)) for c in known[k:k + 16]]))
        psql(url, "ANALYZE")
    queued = psql(url, "SELECT id FROM messages WHERE delivery_status = 'queued' "
                       "ORDER BY created_at").split()
    pgdata = psql(url, "SHOW data_directory")
    dbname = psql(url, "SELECT current_database()")
    services("stop")
    work = STATE / "callgrind"
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o777)
    for kind in args.batches.split(","):
        size = {"new1": 1, "known1": 1, "known4": 4, "sent1": 1}.get(kind, 16)
        for mode in args.modes.split(","):
            pre = [" ".join(p.split()) for p in args.prep] + (
                ["ALTER FUNCTION ef_ingest_rows(jsonb) RESET plan_cache_mode"] if mode == "auto" else [])
            post = (["ALTER FUNCTION ef_ingest_rows(jsonb) SET plan_cache_mode = force_generic_plan"]
                    if mode == "auto" else [])
            if args.prepared and kind.startswith("sent"):
                pre.append("PREPARE ef_sent(jsonb) AS " + SENT_SQL.replace("'%s'::jsonb", "$1"))
            calls = [sent_sql(queued, int(kind[4:]), args.prepared) if kind.startswith("sent")
                     else batch_sql(integ, kind, rng, known) for _ in range(WARM + args.calls)]
            base = single_user(pgdata, dbname, pre + calls[:WARM] + post, work / "w")
            full = single_user(pgdata, dbname, pre + calls + post,
                               work / ("%s-%s" % (kind, mode)))
            per = (full - base) / args.calls
            print("ingest_call_instr %s %s %.0f instr  (%.0f per event; callgrind, %d calls "
                  "after %d)" % (kind, mode, per, per / size, args.calls, WARM), flush=True)


if __name__ == "__main__":
    main()
