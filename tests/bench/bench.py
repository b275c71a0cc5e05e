#!/usr/bin/env python3
"""bench.py -- the end-to-end figures of `make bench` (run by scripts/bench.sh).

    EF_BIN=/abs/build/easyflow python3 tests/bench/bench.py

Starts its own stack under .state/bench/ and measures what a user runs:
  - PostgreSQL, a private cluster with durable settings (fsync, synchronous_
    commit and full_page_writes on, everything else the server's defaults)
    and pg_stat_statements (track = all) to see where the time goes;
  - Redis (redis-server, no persistence, as scripts/services.sh runs it);
  - a fake Telegram Bot API on loopback (tests/e2e/lib/fake_telegram.py,
    which answers 429 beyond 30 messages/s per bot and 1/s per chat) where
    the replies go;
  - `$EF_BIN serve` with the demo bot (bots/demo.yaml) configured by the
    environment, as a user configures it (TELEGRAM_BOT_TOKEN,
    TELEGRAM_SECRET_TOKEN, EF_BOT_FILE, EF_SECRET_KEY, TELEGRAM_API_URL);
  - wrk with tests/bench/updates.lua: Telegram updates from BENCH_CHATS
    distinct chats, Russian customer texts from tests/e2e/data/nlu_heldout.jsonl.

Prints `RESULT <name> <value> <unit>` lines, each followed by its
verification, then where the time went (pg_stat_statements, CPU per
process). Everything is also written to .state/bench/last/.

Environment (all optional):
  BENCH_SECS=40       the peak ingest run; the other load phases last half of it
  BENCH_CONNS=64      wrk connections (BENCH_THREADS=2 threads)
  BENCH_CHATS=10000   distinct chats
  BENCH_RATE=2000     the steady rate of ingest_p99_ms_at_2000, updates/s
  BENCH_PG_BATCH=100  rows per transaction of the PostgreSQL ceiling
  BENCH_PG_CLIENTS=4  its connections
  SOAK=600            also soak that many seconds at BENCH_RATE and report RSS growth
  BENCH_KEEP=1        keep the PostgreSQL data folder after the run
  BENCH_GATEWAY_ENV="EF_STORE_WORKERS=4"  settings of every gateway started (to compare)
  BENCH_GATEWAY_WRAP="valgrind --tool=callgrind --callgrind-out-file=/tmp/gw.%p"
                      a command every gateway runs under (a profile of the gateway at a
                      low BENCH_RATE: its instructions per update, which the machine's
                      noise does not move; the figures of such a run are not the bench's)
  BENCH_BOTS=16       Telegram bots of outbound_bots_msgs_per_s (integrations added
                      by `easyflow integration add`, as a business connects them)
  BENCH_PHASES=ingest only these phases (comma-separated: matcher, pg, http, ingest,
                      paced, two, dispatch, bots, soak); all by default. For profiling one
                      change quickly; the full report needs them all.
"""

import http.client
import json
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from lib.fake_telegram import DEFAULT_TOKEN, FakeTelegram  # noqa: E402
from lib.stack import free_port, psql  # noqa: E402


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


SECS = env_int("BENCH_SECS", 40)
PHASE_SECS = max(5, SECS // 2)
CONNS = env_int("BENCH_CONNS", 64)
THREADS = env_int("BENCH_THREADS", 2)
CHATS = env_int("BENCH_CHATS", 10000)
RATE = env_int("BENCH_RATE", 2000)
PG_BATCH = env_int("BENCH_PG_BATCH", 100)
PG_CLIENTS = env_int("BENCH_PG_CLIENTS", 4)
CEIL_SECS = env_int("BENCH_CEILING_SECS", min(10, PHASE_SECS))
DISPATCH_SECS = env_int("BENCH_DISPATCH_SECS", min(10, PHASE_SECS))
SOAK = env_int("SOAK", 0)
BOTS = env_int("BENCH_BOTS", 16)
# BENCH_GATEWAY_ENV="EF_STORE_WORKERS=4 EF_BATCH_MAX=128": settings of every
# gateway the bench starts, to compare them under the same load.
GATEWAY_ENV = dict(kv.split("=", 1) for kv in os.environ.get("BENCH_GATEWAY_ENV", "").split()
                   if "=" in kv)
KEEP = os.environ.get("BENCH_KEEP", "") not in ("", "0")
PHASES = set(p.strip() for p in os.environ.get(
    "BENCH_PHASES", "matcher,pg,http,ingest,paced,two,dispatch,bots,soak").split(",") if p.strip())


def wanted(phase):
    return phase in PHASES

STATE = REPO / ".state" / "bench"
OUT = STATE / "last"
BOT_FILE = REPO / "bots" / "demo.yaml"
HELDOUT = REPO / "tests" / "e2e" / "data" / "nlu_heldout.jsonl"
LUA = REPO / "tests" / "bench" / "updates.lua"
PG_SQL = REPO / "tests" / "bench" / "pg_insert.sql"
CLK = os.sysconf("SC_CLK_TCK")
CHAT_BASE = 7100000000
TG_PER_BOT, TG_PER_CHAT = 30.0, 1.0

_report = []  # every line printed, also written to OUT/results.txt


def say(line=""):
    print(line, flush=True)
    _report.append(line)


def result(name, value, unit, *verify):
    """A RESULT line and its verification lines."""
    if isinstance(value, float):
        value = ("%.0f" % value) if abs(value) >= 100 else ("%.2f" % value)
    say("RESULT %s %s %s" % (name, value, unit))
    for v in verify:
        say("  verify: " + v)


def note(line):
    say("# " + line)


def die(msg):
    raise SystemExit("bench: " + msg)


def ef_bin():
    b = os.environ.get("EF_BIN")
    if not b or not os.access(b, os.X_OK):
        die("EF_BIN must name the easyflow binary (make bench sets it)")
    return b


# ---- CPU and memory of processes -------------------------------------------


def proc_ticks(pid, children=False):
    """utime+stime of a process in seconds (plus its waited-for children)."""
    try:
        rest = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    t = int(rest[11]) + int(rest[12])
    if children:
        t += int(rest[13]) + int(rest[14])
    return t / CLK


def children_of(ppid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            rest = Path("/proc/%s/stat" % d).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(rest[1]) == ppid:
            out.append(int(d))
    return out


def machine_busy():
    """Seconds of CPU the whole machine spent not idle (every process)."""
    f = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    v = [int(x) for x in f]
    return (sum(v[:8]) - v[3] - v[4]) / CLK


def vm_kb(pid, key):
    try:
        for line in Path("/proc/%d/status" % pid).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# ---- the stack ---------------------------------------------------------------


def pg_bindir():
    cands = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                   key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)] or [0])
    for d in reversed(cands):
        if (d / "initdb").exists():
            return d
    die("PostgreSQL server binaries not found (scripts/deps.sh installs them)")


class Postgres:
    """A private, durable cluster in STATE/pg on a free loopback port."""

    def __init__(self):
        self.bin = pg_bindir()
        self.dir = STATE / "pg"
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = "postgresql://easyflow@127.0.0.1:%d/easyflow" % self.port
        self.user = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            self.user = os.environ.get("EF_SERVICES_USER", "easyflow")
            if subprocess.run(["id", "-u", self.user], capture_output=True).returncode:
                subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                                "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                                self.user], check=True)
        self.running = False

    def _as_user(self, cmd):
        if self.user:
            cmd = ["runuser", "-u", self.user, "--"] + cmd
        p = subprocess.run(cmd, capture_output=True, cwd=str(self.dir), timeout=180)
        if p.returncode:
            die("%s failed:\n%s%s" % (" ".join(cmd), p.stdout.decode(), p.stderr.decode()))

    def start(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        if self.user:
            shutil.chown(self.dir, self.user)
        self._as_user([str(self.bin / "initdb"), "-D", str(self.data), "-U", "easyflow",
                       "--auth=trust", "-E", "UTF8", "--no-locale"])
        with open(self.data / "postgresql.conf", "a") as f:
            f.write("\n# make bench: durable, as in production\n"
                    "listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\n"
                    "max_connections = 100\nfsync = on\nsynchronous_commit = on\n"
                    "full_page_writes = on\nmin_wal_size = 1GB\n"
                    "shared_preload_libraries = 'pg_stat_statements'\n"
                    "pg_stat_statements.track = all\npg_stat_statements.max = 5000\n"
                    % (self.port, self.dir))
        log = self.dir / "postgresql.log"
        self._as_user([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-w",
                       "-t", "60", "start"])
        self.running = True
        admin = self.url.rsplit("/", 1)[0] + "/postgres"
        psql(admin, "CREATE DATABASE easyflow", "CREATE DATABASE ceiling")
        psql(self.url, "CREATE EXTENSION pg_stat_statements")

    def pid(self):
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def cpu(self):
        """CPU seconds of the postmaster, its live children and its exited ones."""
        return sum(self.cpu_by_pid().values())

    def cpu_by_pid(self):
        """{pid: CPU seconds} of the live children; key 0: the postmaster
        and the children it has reaped (autovacuum workers, ...)."""
        pm = self.pid()
        out = {c: proc_ticks(c) for c in children_of(pm)}
        out[0] = proc_ticks(pm, children=True)
        return out

    def cpu_split(self, before, after):
        """Lines: who in PostgreSQL used the CPU between two cpu_by_pid()s,
        client backends named by their connection's last statement."""
        rows = psql(self.url, "SELECT pid, backend_type, coalesce(datname, ''), "
                              "regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_activity")
        label = {}
        for pid, btype, db, q in rows:
            q = q or ""
            if btype != "client backend":
                label[int(pid)] = btype
            elif "ef_ingest" in q or "ef_chat_session" in q:
                label[int(pid)] = "store workers' connections"
            elif any(k in q for k in ("delivery_status", "advisory", "outbox", "next_attempt_at")):
                label[int(pid)] = "the dispatcher's connection"
            else:
                label[int(pid)] = "other connections (%s: %s)" % (db, q[:50])
        groups = {}
        for pid, t in after.items():
            d = t - before.get(pid, 0.0)
            name = "postmaster and exited children (autovacuum, ...)" if pid == 0 else \
                label.get(pid, "processes gone since")
            n, total = groups.get(name, (0, 0.0))
            groups[name] = (n + (pid != 0), total + d)
        return sorted(((k, n, t) for k, (n, t) in groups.items()), key=lambda x: -x[2])

    def settings(self):
        rows = psql(self.url, "SELECT name, current_setting(name) FROM pg_settings WHERE name IN "
                              "('fsync','synchronous_commit','full_page_writes','wal_sync_method',"
                              "'shared_buffers','min_wal_size','max_wal_size','checkpoint_timeout','work_mem',"
                              "'server_version') ORDER BY name")
        return ", ".join("%s=%s" % (n, v) for n, v in rows)

    def stop(self):
        if self.running:
            self._as_user([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                           "-t", "60", "stop"])
            self.running = False
        if not KEEP:
            shutil.rmtree(self.data, ignore_errors=True)


class Redis:
    def __init__(self):
        self.port = free_port()
        self.url = "redis://127.0.0.1:%d/0" % self.port
        self.dir = STATE / "redis"
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=open(OUT / "redis.log", "wb"), stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"],
                             capture_output=True).stdout.strip() != b"PONG":
            if time.monotonic() > deadline:
                die("redis-server did not start (%s)" % (OUT / "redis.log"))
            time.sleep(0.05)

    def cpu(self):
        return proc_ticks(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def clean_env():
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("EF_", "TELEGRAM_", "WHATSAPP_"))}


class Gateway:
    """`$EF_BIN serve` with the demo bot, configured by the environment."""

    def __init__(self, name, pg, redis, tg, secret, key):
        self.name = name
        self.port = free_port()
        self.env = clean_env()
        self.env.update({
            "EF_DATABASE_URL": pg.url, "EF_REDIS_URL": redis.url,
            "EF_LISTEN": "127.0.0.1:%d" % self.port, "EF_SQL_DIR": str(REPO / "sql"),
            "EF_BOT_FILE": str(BOT_FILE), "EF_SECRET_KEY": key, "EF_LOG_LEVEL": "warn",
            "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN, "TELEGRAM_SECRET_TOKEN": secret,
            "TELEGRAM_API_URL": tg.url,
        })
        self.env.update(GATEWAY_ENV)
        self.log = OUT / ("%s.log" % name)
        self.gets = 0
        wrap = os.environ.get("BENCH_GATEWAY_WRAP", "").split()
        self.drain_s = 300 if wrap else 30
        self.proc = subprocess.Popen(wrap + [ef_bin(), "serve"], env=self.env, cwd=str(REPO),
                                     stdin=subprocess.DEVNULL, stdout=open(self.log, "wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait = 300 if wrap else 30
        deadline = time.monotonic() + wait
        while True:
            if self.proc.poll() is not None:
                die("%s exited with %d before /healthz answered; log %s:\n%s" % (
                    name, self.proc.returncode, self.log, self.log.read_text()[-3000:]))
            try:
                if self.get("/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                die("%s: /healthz did not answer 200 within %d s (log %s)" % (name, wait, self.log))
            time.sleep(0.1)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def get(self, path):
        """(status, body); self.gets counts our own requests (they show in
        the gateway's ef_http_responses_total)."""
        self.gets += 1
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metrics(self):
        out = {}
        for line in self.get("/metrics")[1].splitlines():
            m = re.match(r'^([a-z_]+)(\{[^}]*\})?\s+(\S+)$', line)
            if m:
                out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
        return out

    def cpu(self):
        return proc_ticks(self.proc.pid)

    def rss_mb(self):
        return vm_kb(self.proc.pid, "VmRSS") / 1024.0

    def hwm_mb(self):
        return vm_kb(self.proc.pid, "VmHWM") / 1024.0

    def stop(self):
        """SIGTERM; returns the exit code (0 expected)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.drain_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


# ---- the load ----------------------------------------------------------------


def write_texts():
    """The Russian texts of the held-out set, one JSON string per line;
    returns (path, texts)."""
    texts = []
    for line in HELDOUT.read_text().splitlines():
        t = json.loads(line)["text"]
        if re.search("[а-яё]", t, re.I) and "\n" not in t and t not in texts:
            texts.append(t)
    path = OUT / "texts.jsonl"
    path.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts))
    return path, texts


class Wrk:
    """One wrk process running tests/bench/updates.lua (or a plain GET)."""

    def __init__(self, name, url, secs, conns, threads, env=None, script=True):
        self.name = name
        cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % secs, "--timeout", "30s"]
        if script:
            cmd += ["-s", str(LUA)]
        cmd.append(url)
        e = dict(os.environ, EFB_THREADS=str(threads))
        e.update(env or {})
        self.out = OUT / ("wrk-%s.txt" % name)
        self.proc = subprocess.Popen(cmd, env=e, stdout=open(self.out, "wb"),
                                     stderr=subprocess.STDOUT)

    def wait(self):
        self.proc.wait()
        text = self.out.read_text()
        if self.proc.returncode:
            die("wrk %s exited with %d:\n%s" % (self.name, self.proc.returncode, text[-2000:]))
        m = re.search(r"^EFB_RESULT (\{.*\})$", text, re.M)
        if m:
            return json.loads(m.group(1))
        m = re.search(r"Requests/sec:\s+([\d.]+)", text)
        return {"rps": float(m.group(1)) if m else 0.0, "text": text}


def load_env(tg_secret, texts_path, base, rate=0, stride=1, slot=0):
    return {"EFB_TEXTS": str(texts_path), "EFB_SECRET": tg_secret, "EFB_BASE": str(base),
            "EFB_CHATS": str(CHATS), "EFB_CHAT_BASE": str(CHAT_BASE), "EFB_RATE": str(rate),
            "EFB_STRIDE": str(stride), "EFB_SLOT": str(slot)}


class Snapshot:
    """CPU seconds per process group at one instant."""

    def __init__(self, stack):
        self.wall = time.monotonic()
        self.gw = {g.name: g.cpu() for g in stack.gateways}
        self.pg_pids = stack.pg.cpu_by_pid()
        self.pg = sum(self.pg_pids.values())
        self.redis = stack.redis.cpu()
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        me = resource.getrusage(resource.RUSAGE_SELF)
        self.children = ch.ru_utime + ch.ru_stime  # wrk (reaped by now)
        self.me = me.ru_utime + me.ru_stime
        self.machine = machine_busy()

    def delta(self, later):
        d = {"wall": later.wall - self.wall,
             "gateway": sum(later.gw.get(k, 0) - v for k, v in self.gw.items()),
             "postgres": later.pg - self.pg, "redis": later.redis - self.redis,
             "wrk": later.children - self.children,
             "harness": later.me - self.me, "machine": later.machine - self.machine}
        d["other"] = max(0.0, d["machine"] - sum(d[k] for k in ("gateway", "postgres", "redis",
                                                                  "wrk", "harness")))
        return d


class Stack:
    def __init__(self):
        self.secret = "bench-" + secrets.token_hex(12)
        self.key = secrets.token_hex(32)
        self.pg = Postgres()
        self.redis = None
        self.tg = None
        self.gateways = []

    def start(self):
        self.pg.start()
        self.redis = Redis()
        self.tg = FakeTelegram(token=DEFAULT_TOKEN, per_chat_per_sec=TG_PER_CHAT,
                               global_per_sec=TG_PER_BOT)
        for db in ("easyflow", "ceiling"):
            url = self.pg.url.rsplit("/", 1)[0] + "/" + db
            p = subprocess.run([ef_bin(), "migrate"], capture_output=True, text=True,
                               env=dict(clean_env(), EF_DATABASE_URL=url,
                                        EF_SQL_DIR=str(REPO / "sql")))
            if p.returncode:
                die("easyflow migrate failed:\n" + p.stdout + p.stderr)

    def gateway(self, name):
        g = Gateway(name, self.pg, self.redis, self.tg, self.secret, self.key)
        self.gateways.append(g)
        return g

    def stop(self):
        codes = {}
        for g in self.gateways:
            codes[g.name] = g.stop()
        if self.tg:
            self.tg.close()
        if self.redis:
            self.redis.stop()
        self.pg.stop()
        return codes


def sql1(url, q):
    rows = psql(url, q)
    return rows[0][0] if rows and rows[0] else None


def count_inbound(stack):
    return int(sql1(stack.pg.url, "SELECT count(*) FROM messages WHERE direction = 'inbound'"))


def settle(stack, timeout=20.0):
    """Waits until the gateways have committed what they accepted (the
    inbound count stops moving and every /healthz says pending 0)."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        n = count_inbound(stack)
        pending = 0
        for g in stack.gateways:
            if g.proc.poll() is None:
                m = re.search(r'"pending":(\d+)', g.get("/healthz")[1])
                pending += int(m.group(1)) if m else 0
        if n == last and pending == 0:
            return n
        last = n
        time.sleep(0.5)
    return last


def pct_of(a, b):
    return 100.0 * a / b if b else 0.0


def ms(us):
    return us / 1000.0


def expected_intents(texts):
    """{text: intent} as the bot understands it (`easyflow nlu --lines`);
    "fallback" where it does not."""
    p = subprocess.run([ef_bin(), "nlu", "--bot", str(BOT_FILE), "--lines"],
                       input="".join(t + "\n" for t in texts), capture_output=True, text=True,
                       env=clean_env())
    if p.returncode:
        die("easyflow nlu failed: " + p.stderr)
    got = [json.loads(line)["intent"] for line in p.stdout.splitlines()]
    if len(got) != len(texts):
        die("easyflow nlu answered %d lines for %d texts" % (len(got), len(texts)))
    return dict(zip(texts, got))


# ---- phases --------------------------------------------------------------------


def phase_matcher(bins):
    """tests/bench/bench_* binaries (bench_nlp: the matcher)."""
    for b in bins:
        p = subprocess.run([b], capture_output=True, text=True)
        figures = {}
        for line in p.stdout.splitlines():
            note("%s: %s" % (Path(b).name, line))
            f = line.split()
            if len(f) == 3:
                figures[f[0]] = f[1]
        if p.returncode:
            note("%s exited with %d: %s" % (b, p.returncode, p.stderr.strip()[-500:]))
        if "nlp_match_entities_msgs_per_sec" in figures:
            result("matcher_msgs_per_s", figures["nlp_match_entities_msgs_per_sec"], "msg/s",
                   "tests/bench/bench_nlp: one thread, demo bot (%s intents), intents and "
                   "entities, best of 7 trials; intents only %s msg/s, without the prefilter %s "
                   "msg/s" % (figures.get("nlp_bot_intents", "?"),
                              figures.get("nlp_match_msgs_per_sec", "?"),
                              figures.get("nlp_match_no_prefilter_msgs_per_sec", "?")))


def phase_pg_ceiling(stack):
    """Batched INSERTs into `messages` (the project's schema and indexes) by
    pgbench, PG_BATCH rows per transaction, durable settings."""
    url = stack.pg.url.rsplit("/", 1)[0] + "/ceiling"
    psql(url,
         "INSERT INTO users (platform, platform_user_id, name) "
         "SELECT 'telegram', (%d + g)::text, 'Клиент' FROM generate_series(0, %d) g"
         % (CHAT_BASE, CHATS - 1),
         "INSERT INTO conversations (session_id, user_id, platform, chat_id) "
         "SELECT gen_random_uuid()::text, id, 'telegram', platform_user_id FROM users",
         "CREATE TABLE bench_conv AS SELECT (row_number() OVER (ORDER BY chat_id) - 1)::int AS n, "
         "id, session_id, user_id FROM conversations",
         "ALTER TABLE bench_conv ADD PRIMARY KEY (n)", "VACUUM ANALYZE", "CHECKPOINT")
    cmd = [str(stack.pg.bin / "pgbench"), "-n", "-h", "127.0.0.1", "-p", str(stack.pg.port),
           "-U", "easyflow", "-c", str(PG_CLIENTS), "-j", str(PG_CLIENTS), "-T", str(CEIL_SECS),
           "-D", "batch=%d" % PG_BATCH, "-D", "chats=%d" % CHATS, "-f", str(PG_SQL), "ceiling"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    (OUT / "pgbench.txt").write_text(p.stdout + p.stderr)
    if p.returncode:
        die("pgbench failed:\n" + p.stdout[-1000:] + p.stderr[-2000:])
    tps = float(re.search(r"tps = ([\d.]+) \(without initial", p.stdout).group(1))
    txs = int(re.search(r"number of transactions actually processed: (\d+)", p.stdout).group(1))
    rows = int(sql1(url, "SELECT count(*) FROM messages"))
    nidx = int(sql1(url, "SELECT count(*) FROM pg_indexes WHERE tablename = 'messages'"))
    ok = rows == txs * PG_BATCH
    result("ceiling_pg_batched_inserts_per_s", tps * PG_BATCH, "rows/s",
           "pgbench %s: %d clients, %d s, %d transactions of %d rows (INSERT .. SELECT into "
           "messages, %d indexes, foreign keys to %d conversations and users); rows in the "
           "table %d == %d x %d: %s" % (PG_SQL.name, PG_CLIENTS, CEIL_SECS, txs, PG_BATCH, nidx,
                                        CHATS, rows, txs, PG_BATCH, "OK" if ok else "MISMATCH"))
    return tps * PG_BATCH


def phase_http_ceiling(stack, gw):
    w = Wrk("static", gw.url + "/healthz", CEIL_SECS, CONNS, THREADS, script=False).wait()
    text = w["text"]
    non2 = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: (.*)", text)
    reqs = re.search(r"(\d+) requests in", text)
    result("ceiling_http_static_per_s", w["rps"], "req/s",
           "wrk -t%d -c%d -d%ds GET /healthz on the gateway (its HTTP thread answering a "
           "200 from memory): %s requests, non-2xx %s, socket errors %s" % (
               THREADS, CONNS, CEIL_SECS, reqs.group(1) if reqs else "?",
               non2.group(1) if non2 else "0", sock.group(1) if sock else "none"))
    return w["rps"]


class LoadRun:
    """One load phase: wrk processes against gateways, CPU and rows around it."""

    def __init__(self, stack, name, targets, secs, base, rate=0, texts_path=None):
        self.stack = stack
        self.pg_url = stack.pg.url
        self.t0_db = sql1(self.pg_url, "SELECT now()")
        self.rows0 = count_inbound(stack)
        self.wal0 = sql1(self.pg_url, "SELECT pg_current_wal_lsn()")
        self.gets0 = {g.name: g.gets for g, _, _ in targets}
        self.m0 = {g.name: g.metrics() for g, _, _ in targets}
        snap0 = self.snap0 = Snapshot(stack)
        n = len(targets)
        runs = []
        for k, (g, conns, threads) in enumerate(targets):
            env = load_env(stack.secret, texts_path, base, rate=(rate / n if rate else 0),
                           stride=n, slot=k)
            runs.append(Wrk("%s-%d" % (name, k), g.url, secs, conns, threads, env))
        self.w = [r.wait() for r in runs]
        self.snap1 = Snapshot(stack)
        self.cpu = snap0.delta(self.snap1)
        self.rows1 = settle(stack)
        # Our own GETs from the first /metrics (counted once answered) up to
        # the last (not yet counted when it renders).
        self.own_gets = sum(g.gets - self.gets0[g.name] for g, _, _ in targets)
        self.m1 = {g.name: g.metrics() for g, _, _ in targets}
        self.wal_bytes = int(float(sql1(self.pg_url, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(),"
                                                     " '%s')" % self.wal0)))
        self.sum = {k: sum(w[k] for w in self.w) for k in self.w[0]}
        self.secs = max(w["duration_us"] for w in self.w) / 1e6
        self.ok2xx = self.sum["s2xx"]
        self.rate = self.ok2xx / self.secs if self.secs else 0.0

    def mdelta(self, key):
        return sum(self.m1[n].get(key, 0) - self.m0[n].get(key, 0) for n in self.m0)

    def lat(self, p):
        """The worst percentile among the wrk processes, ms (one process: exact)."""
        return max(ms(w["lat_p%s_us" % p]) for w in self.w)

    def verify_lines(self, expected):
        s = self.sum
        rows = self.rows1 - self.rows0
        inflight = s["sent"] - s["responses"]
        stored = int(self.mdelta('ef_updates_stored_total{platform="telegram"}'))
        g2xx = int(self.mdelta('ef_http_responses_total{code="2xx"}')) - self.own_gets
        lines = [
            "wrk: %d updates sent, answered 2xx %d, 4xx %d, 5xx %d, other %d; socket errors "
            "connect %d read %d write %d timeout %d; %d in flight when wrk stopped" % (
                s["sent"], s["s2xx"], s["s4xx"], s["s5xx"], s["sother"], s["err_connect"],
                s["err_read"], s["err_write"], s["err_timeout"], inflight),
            "PostgreSQL: +%d inbound rows == the gateway's +%d stored: %s; wrk's %d 2xx <= "
            "the gateway's %d 2xx answers <= rows <= wrk's 2xx + in flight (updates committed "
            "whose answer wrk stopped before reading): %s" % (
                rows, stored, "OK" if rows == stored else "MISMATCH", s["s2xx"], g2xx,
                "OK" if s["s2xx"] <= g2xx <= rows <= s["s2xx"] + inflight else "MISMATCH"),
        ]
        lines += self.db_lines(expected)
        return lines

    def db_lines(self, expected):
        url, t0 = self.pg_url, self.t0_db
        per_chat = ("SELECT count(*), min(n), round(avg(n), 1), max(n) FROM (SELECT c.chat_id, "
                    "count(*) n FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                    "WHERE m.direction = 'inbound' %s GROUP BY 1) s")
        chats = psql(url, per_chat % ("AND m.created_at >= '%s'" % t0))[0]
        chats_all = psql(url, per_chat % "")[0]
        dups = sql1(url, "SELECT count(*) - count(DISTINCT (integration_id, platform_message_id)) "
                         "FROM messages WHERE direction = 'inbound' AND created_at >= '%s'" % t0)
        good = wrong = unknown = 0
        none = {None: 0, "fallback": 0}
        for content, intent, n in psql(url, "SELECT content, intent, count(*) FROM messages "
                                            "WHERE direction = 'inbound' AND created_at >= '%s' "
                                            "GROUP BY 1, 2" % t0):
            n = int(n)
            want = expected.get(content)
            if want is None:
                unknown += n
            elif want == "fallback":
                if intent in none:
                    none[intent] += n
                else:
                    wrong += n
            elif intent == want:
                good += n
            else:
                wrong += n
        out = dict(psql(url, "SELECT delivery_status, count(*) FROM messages WHERE direction = "
                             "'outbound' AND created_at >= '%s' GROUP BY 1 ORDER BY 1" % t0))
        conv = dict(psql(url, "SELECT status, count(*) FROM conversations GROUP BY 1 ORDER BY 1"))
        return [
            "chats: %s wrote in this phase, messages per chat min %s avg %s max %s (since the "
            "start: %s chats, min %s avg %s max %s); duplicate rows %s" % tuple(
                chats + chats_all + [dups]),
            "intents: %d rows carry the intent the bot gives their text (easyflow nlu); %d rows "
            "whose text the bot does not understand carry none (%d NULL, %d 'fallback'); %d "
            "wrong, %d unknown texts: %s" % (
                good, none[None] + none["fallback"], none[None], none["fallback"], wrong,
                unknown, "OK" if wrong == 0 and unknown == 0 else "MISMATCH"),
            "replies: +%d outbound rows (%s); conversations now %s" % (
                sum(int(v) for v in out.values()),
                ", ".join("%s %s" % kv for kv in out.items()) or "none",
                ", ".join("%s %s" % kv for kv in conv.items())),
        ]

    def pg_cpu_lines(self):
        n = max(1, self.ok2xx)
        split = self.stack.pg.cpu_split(self.snap0.pg_pids, self.snap1.pg_pids)
        return ["PostgreSQL CPU by process: " + "; ".join(
            "%s (%d) %.0f us/update" % (name, k, t / n * 1e6) for name, k, t in split if t > 0)]

    def cpu_lines(self):
        c, n = self.cpu, max(1, self.ok2xx)
        parts = []
        for k in ("gateway", "postgres", "redis", "wrk", "harness", "other"):
            parts.append("%s %.2f cores (%.0f us/update)" % (k, c[k] / c["wall"], c[k] / n * 1e6))
        busy = c["other"] / c["wall"]
        return ["CPU over %.1f s: %s; machine %.2f of %d cores busy%s" % (
            c["wall"], ", ".join(parts), c["machine"] / c["wall"], os.cpu_count(),
            "; WARNING: other processes took %.2f cores, the figures are lower than this "
            "machine gives alone" % busy if busy > 0.15 else "")]


def pgss_reset(stack):
    psql(stack.pg.url, "SELECT pg_stat_statements_reset()")


def pgss_report(stack, updates, run="peak ingest", out="pg_stat_statements.txt"):
    """The statements of the easyflow database by total execution time, and
    their share of the top-level statements' time (the whole list in OUT/out)."""
    url = stack.pg.url
    total = float(sql1(url, "SELECT coalesce(sum(total_exec_time), 0) FROM pg_stat_statements "
                            "WHERE toplevel AND dbid = (SELECT oid FROM pg_database WHERE "
                            "datname = 'easyflow')") or 0)
    rows = psql(url, "SELECT toplevel, calls, total_exec_time, rows, wal_records, "
                     "regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_statements WHERE "
                     "dbid = (SELECT oid FROM pg_database WHERE datname = 'easyflow') "
                     "ORDER BY total_exec_time DESC LIMIT 60")
    lines = ["pg_stat_statements (track = all) over the %s run: top-level statements " % run +
             "took %.0f ms of backend time, %.0f us per update stored; share = of that total "
             "(nested statements, run inside the top-level ones, overlap them)" % (
                 total, total * 1000 / max(1, updates))]
    lines.append("%6s %9s %9s %8s %10s %8s  %s" % ("share", "calls", "ms", "us/upd", "rows",
                                                  "wal_rec", "statement"))
    full = list(lines)
    for i, (top, calls, t, nrows, wal, q) in enumerate(rows):
        t = float(t)
        line = "%5.1f%% %9s %9.0f %8.1f %10s %8s  %s%s" % (
            pct_of(t, total), calls, t, t * 1000 / max(1, updates), nrows, wal,
            "" if top == "t" else "(nested) ", q)
        full.append(line)
        if i < 12:
            lines.append(line[:200])
    (OUT / out).write_text("\n".join(full) + "\n")
    return lines


def send_stats(stack, t_from, t_to):
    """What the fake Bot API saw of sendMessage between two instants."""
    with stack.tg.cond:
        reqs = [(r.time, r.status, str(r.params.get("chat_id"))) for r in stack.tg.requests
                if r.method == "sendmessage"]
    reqs.sort()
    window = [r for r in reqs if t_from <= r[0] < t_to]
    accepted = sum(1 for r in window if r[1] == 200)
    # Strict counts over every arrival, whatever the fake answered: a send
    # is over the bot's limit when 30 others arrived in the second before
    # it, over the chat's when the chat's previous send is less than 1 s old.
    bot_over = chat_over = 0
    worst = 0
    lo = 0
    last = {}
    min_gap = None
    for i, (t, _, chat) in enumerate(reqs):
        while reqs[lo][0] <= t - 1.0:
            lo += 1
        worst = max(worst, i - lo + 1)
        if i - lo + 1 > TG_PER_BOT:
            bot_over += 1
        if chat in last:
            gap = t - last[chat]
            min_gap = gap if min_gap is None else min(min_gap, gap)
            if gap < 1.0 / TG_PER_CHAT:
                chat_over += 1
        last[chat] = t
    return {"all": len(reqs), "window": len(window), "accepted": accepted,
            "r429": sum(1 for r in reqs if r[1] == 429), "bot_over": bot_over,
            "chat_over": chat_over, "worst": worst, "min_gap": min_gap,
            "chats": len(last)}


def queued(stack):
    return int(sql1(stack.pg.url, "SELECT count(*) FROM messages WHERE direction = 'outbound' "
                                  "AND delivery_status = 'queued'"))


def commit_figures(run):
    """The store workers' batches in a run: how many, their size, and the
    time from deciding to committed (the batch's part of a request's
    latency)."""
    batches = run.mdelta("ef_store_batch_size_count")
    if not batches:
        return "no commits"
    return "%d commits, %.1f updates per commit, %.1f ms per commit (decided and committed)" % (
        batches, run.mdelta("ef_store_batch_size_sum") / batches,
        run.mdelta("ef_store_commit_seconds_sum") * 1000 / batches)


def webhook_quantile(run, q):
    """The q-quantile (0..1) of the gateway's own webhook time in a run, ms:
    from the deltas of its ef_webhook_seconds buckets, linear inside the
    bucket it falls in (the buckets are 1-5 ms wide below 50 ms)."""
    bounds = sorted({float(re.search(r'le="([^"]+)"', k).group(1))
                     for n in run.m1 for k in run.m1[n]
                     if k.startswith("ef_webhook_seconds_bucket") and "+Inf" not in k})
    total = run.mdelta("ef_webhook_seconds_count")
    if not total or not bounds:
        return None
    want, below, lo = q * total, 0.0, 0.0
    for b in bounds:
        cum = run.mdelta('ef_webhook_seconds_bucket{le="%g"}' % b)
        if cum >= want:
            inside = cum - below
            return (lo + (b - lo) * ((want - below) / inside if inside else 1.0)) * 1000
        below, lo = cum, b
    return bounds[-1] * 1000


def gateway_latency(run):
    """The gateway's own share of the latency wrk measured: from a webhook's
    headers to its answer written (ef_webhook_seconds), without the client's
    and the kernel's time on either side."""
    p50, p99 = webhook_quantile(run, 0.5), webhook_quantile(run, 0.99)
    if p50 is None:
        return "the gateway's own time: no ef_webhook_seconds"
    return ("the gateway's own time (ef_webhook_seconds, headers to answer written, %d "
            "webhooks): p50 %.1f ms, p99 %.1f ms" % (run.mdelta("ef_webhook_seconds_count"),
                                                      p50, p99))


def warm_wal(stack):
    """Brings the cluster's WAL to where a server that has run a while has
    it: ~230 MB written (in the ceiling database) and checkpointed, kept by
    min_wal_size = 1GB, so that a load run's commits reuse recycled segments
    instead of waiting for new ones to be created and zero-filled (a 16 MB
    segment every ~3 s at 2,000/s, both workers' commits waiting for it:
    docs/performance.md, session 8), and its window starts after a
    checkpoint (paying the full-page images that follow one) rather than
    with one forced by the previous phase's WAL. Returns its verify line."""
    admin = stack.pg.url.rsplit("/", 1)[0] + "/ceiling"
    lsn0 = sql1(admin, "SELECT pg_current_wal_lsn()")
    psql(admin, "CREATE TABLE wal_warm AS SELECT g, repeat('x', 500) AS x "
                "FROM generate_series(1, 400000) g", "DROP TABLE wal_warm", "CHECKPOINT")
    mb = float(sql1(admin, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '%s')" % lsn0)) / 1e6
    return ("the cluster warmed as a running server's: %.0f MB of WAL written and "
            "checkpointed before the run (min_wal_size 1GB keeps the segments for reuse)" % mb)


def phase_ingest(stack, gw, texts_path, expected, ceilings):
    warmed = warm_wal(stack)
    pgss_reset(stack)
    run = LoadRun(stack, "ingest", [(gw, CONNS, THREADS)], SECS, 100000001,
                  texts_path=texts_path)
    updates = run.rows1 - run.rows0
    pgss = pgss_report(stack, updates)
    result("ingest_updates_per_s", run.rate, "updates/s",
           *(run.verify_lines(expected) + [
               "ratio: %.1f%% of the static HTTP ceiling, %.1f%% of PostgreSQL's batched "
               "insert ceiling; %s; %.0f bytes of WAL per update" % (
                   pct_of(run.rate, ceilings[0]), pct_of(run.rate, ceilings[1]),
                   commit_figures(run), run.wal_bytes / max(1, updates))]))
    lat = "wrk -t%d -c%d -d%ds, %d answers; mean %.1f ms, p90 %.1f ms, p99.9 %.1f ms, max " \
          "%.1f ms" % (THREADS, CONNS, SECS, run.sum["responses"], ms(run.w[0]["lat_mean_us"]),
                       run.lat(90), run.lat(99.9), ms(run.w[0]["lat_max_us"]))
    result("ingest_p50_ms", run.lat(50), "ms", lat)
    result("ingest_p99_ms", run.lat(99), "ms", lat, gateway_latency(run), warmed)
    result("gateway_cpu_cores", run.cpu["gateway"] / run.cpu["wall"], "cores",
           *run.cpu_lines())
    return run, pgss, run.cpu_lines() + run.pg_cpu_lines()


def phase_paced(stack, gw, texts_path, expected):
    conns = max(CONNS, 128)
    warmed = warm_wal(stack)
    pgss_reset(stack)
    run = LoadRun(stack, "paced", [(gw, conns, THREADS)], PHASE_SECS, 200000001, rate=RATE,
                  texts_path=texts_path)
    result("ingest_p99_ms_at_%d" % RATE, run.lat(99), "ms",
           "a steady %d updates/s asked for %d s: wrk -t%d -c%d, tests/bench/updates.lua's "
           "delay() releasing each thread's requests on a fixed schedule (open loop while a "
           "connection is free; latency from the actual send); achieved %.0f updates/s; p50 "
           "%.1f ms, p90 %.1f ms, max %.1f ms" % (
               RATE, PHASE_SECS, THREADS, conns, run.rate, run.lat(50), run.lat(90),
               ms(run.w[0]["lat_max_us"])), gateway_latency(run), warmed,
           *(run.verify_lines(expected)[:2] + [commit_figures(run)] + run.cpu_lines() +
             run.pg_cpu_lines()))
    for line in pgss_report(stack, run.rows1 - run.rows0, "steady %d/s" % RATE,
                            "pg_stat_statements-paced.txt")[:8]:
        note(line)
    return run


def phase_two_gateways(stack, gw, texts_path, expected):
    gw2 = stack.gateway("gateway-2")
    half = max(1, CONNS // 2)
    run = LoadRun(stack, "two", [(gw, half, 1), (gw2, half, 1)], PHASE_SECS, 300000001,
                  texts_path=texts_path)
    rc = gw2.stop()
    stack.gateways.remove(gw2)
    result("two_gateways_updates_per_s", run.rate, "updates/s",
           "two `easyflow serve` on one PostgreSQL and Redis, one wrk -t1 -c%d on each for "
           "%d s, the same chats on both (update j to gateway j %% 2): %s" % (
               half, PHASE_SECS, ", ".join("%.0f/s" % (w["s2xx"] / (w["duration_us"] / 1e6))
                                           for w in run.w)),
           *(run.verify_lines(expected)[:3] + run.cpu_lines() +
             ["gateway-2 exited with %s after SIGTERM" % rc]))
    return run


def phase_dispatch(stack, t_run0):
    q0 = queued(stack)
    t0 = time.monotonic()
    time.sleep(DISPATCH_SECS)
    t1 = time.monotonic()
    q1 = queued(stack)
    s = send_stats(stack, t0, t1)
    rate = s["accepted"] / (t1 - t0)
    result("outbound_msgs_per_s", rate, "msg/s",
           "the dispatcher's sends the fake Bot API accepted in %.0f s with no inbound load "
           "and %d replies queued (%d after): %d of %d sendMessage; the limit is %.0f/s per bot "
           "(one bot): %.0f%% of it" % (t1 - t0, q0, q1, s["accepted"], s["window"], TG_PER_BOT,
                                        pct_of(rate, TG_PER_BOT)))
    s = send_stats(stack, t_run0, time.monotonic())
    result("rate_limit_violations", s["bot_over"] + s["chat_over"], "sends",
           "over the whole run the fake saw %d sendMessage to %d chats: %d with more than %.0f "
           "in the second before (most in any second: %d), %d less than %.0f s after the "
           "chat's previous one (shortest gap %s); the fake answered 429 to %d" % (
               s["all"], s["chats"], s["bot_over"], TG_PER_BOT, s["worst"], s["chat_over"],
               1.0 / TG_PER_CHAT, "%.3f s" % s["min_gap"] if s["min_gap"] is not None else "-",
               s["r429"]))


def add_bots(stack, gw):
    """BOTS more Telegram bots, each an integration row added with the CLI
    (the demo bot answers on each); [(id, token, secret)] once the gateway
    serves every one of them."""
    bots = []
    env = dict(clean_env(), EF_DATABASE_URL=stack.pg.url, EF_SECRET_KEY=stack.key,
               EF_SQL_DIR=str(REPO / "sql"))
    for k in range(BOTS):
        token = "%d:AAHbench-bot-%02d-%s" % (710000000 + k, k, secrets.token_hex(10))
        secret = "bench-bot-%02d-%s" % (k, secrets.token_hex(8))
        stack.tg.add_bot(token)
        p = subprocess.run([ef_bin(), "integration", "add", "telegram", "--name",
                            "bench-bot-%02d" % k, "--bot", str(BOT_FILE)],
                           input=json.dumps({"bot_token": token, "secret_token": secret}),
                           capture_output=True, text=True, env=env)
        if p.returncode:
            die("easyflow integration add failed:\n" + p.stdout + p.stderr)
        bots.append((p.stdout.split()[0], token, secret))
    deadline = time.monotonic() + 30
    for iid, _, secret in bots:  # served once it answers its own secret (else 404)
        while post_update(gw, iid, secret, 1, 1, "привет")[0] != 200:
            if time.monotonic() > deadline:
                die("the gateway did not serve the bots added in 30 s")
            time.sleep(0.1)
    return bots


def update_body(chat, mid, text):
    return json.dumps({"update_id": mid, "message": {
        "message_id": mid, "date": int(time.time()), "text": text,
        "chat": {"id": chat, "type": "private"},
        "from": {"id": chat, "is_bot": False, "first_name": "Bench"}}}).encode()


def post_update(gw, iid, secret, chat, mid, text, conn=None):
    """POST one update to the integration's webhook: (status, body); conn, an
    http.client connection to keep alive, else a new one."""
    c = conn or http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    try:
        c.request("POST", "/webhook/telegram/" + iid, body=update_body(chat, mid, text),
                  headers={"Content-Type": "application/json",
                           "X-Telegram-Bot-Api-Secret-Token": secret})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        if conn is None:
            c.close()


def bot_send_stats(stack, tokens, t_from, t_to):
    """Per bot, what the fake Bot API saw of sendMessage: accepted in
    [t_from, t_to), and over the whole run sends with more than 30 of the
    bot's in the second before (bot_over) or less than 1 s after the chat's
    previous one (chat_over)."""
    with stack.tg.cond:
        reqs = [(r.time, r.status, r.token, str(r.params.get("chat_id")))
                for r in stack.tg.requests if r.method == "sendmessage" and r.token in tokens]
    reqs.sort()
    out = {"accepted": 0, "all": len(reqs), "bot_over": 0, "chat_over": 0, "worst": 0,
           "min_gap": None, "r429": sum(1 for r in reqs if r[1] == 429)}
    for tok in tokens:
        mine = [r for r in reqs if r[2] == tok]
        out["accepted"] += sum(1 for r in mine if r[1] == 200 and t_from <= r[0] < t_to)
        lo, last = 0, {}
        for i, (t, _, _, chat) in enumerate(mine):
            while mine[lo][0] <= t - 1.0:
                lo += 1
            out["worst"] = max(out["worst"], i - lo + 1)
            out["bot_over"] += i - lo + 1 > TG_PER_BOT
            if chat in last:
                gap = t - last[chat]
                out["chat_over"] += gap < 1.0 / TG_PER_CHAT
                out["min_gap"] = gap if out["min_gap"] is None else min(out["min_gap"], gap)
            last[chat] = t
    return out


def phase_bots(stack, gw, texts_path):
    """Outbound for a business with many bots: BOTS Telegram bots, each with
    a backlog of replies; the dispatcher should send at every bot's limit at
    once, BOTS x 30/s."""
    bots = add_bots(stack, gw)
    # wrk as fast as it goes for a few seconds: every bot gets thousands of
    # replies queued, more than its limit lets out in the measured window.
    secs = 12
    w = Wrk("bots", gw.url, secs, CONNS, THREADS, env={
        "EFB_TEXTS": str(texts_path), "EFB_SECRET": stack.secret, "EFB_BASE": "500000001",
        "EFB_CHATS": str(60 * BOTS), "EFB_CHAT_BASE": "7300000000",
        "EFB_BOTS": ",".join("/webhook/telegram/%s %s" % (b[0], b[2]) for b in bots)})
    res = w.wait()
    ids = "'" + "','".join(b[0] for b in bots) + "'"
    q0 = int(sql1(stack.pg.url, "SELECT count(*) FROM messages WHERE direction = 'outbound' "
                                "AND delivery_status = 'queued' AND integration_id IN (%s)" % ids))
    t1 = time.monotonic()
    time.sleep(DISPATCH_SECS)
    t2 = time.monotonic()
    left = psql(stack.pg.url, "SELECT count(*), count(DISTINCT integration_id) FROM messages "
                              "WHERE direction = 'outbound' AND delivery_status = 'queued' AND "
                              "integration_id IN (%s)" % ids)[0]
    tokens = set(b[1] for b in bots)
    s = bot_send_stats(stack, tokens, t1, t2)
    rate = s["accepted"] / (t2 - t1)
    limit = BOTS * TG_PER_BOT
    sent_rows = int(sql1(stack.pg.url, "SELECT count(*) FROM messages WHERE direction = "
                                       "'outbound' AND delivery_status = 'sent' AND "
                                       "integration_id IN (%s)" % ids))
    result("outbound_bots_msgs_per_s", rate, "msg/s",
           "%d Telegram bots (integrations), 60 chats each; wrk posted %d updates to their "
           "webhooks in %d s (%d answered 2xx); %d of their replies queued after; in %.0f s the "
           "fake Bot API accepted %d sendMessage of theirs: %.0f%% of their limit "
           "(%d x %.0f/s = %.0f/s); queued at the end %s in %s of the %d bots%s" % (
               BOTS, res.get("sent", 0), secs, res.get("s2xx", 0), q0, t2 - t1, s["accepted"],
               pct_of(rate, limit), BOTS, TG_PER_BOT, limit, left[0], left[1], BOTS,
               "" if int(left[1]) == BOTS else
               " (a bot ran out of replies: the figure is a lower bound)"),
           "over the phase the fake saw %d sendMessage of these bots: %d with more than %.0f of "
           "the bot's in the second before (most in any second: %d), %d less than %.0f s "
           "after the chat's previous one (shortest gap %s); the fake answered 429 to %d; %d "
           "rows recorded sent in PostgreSQL" % (
               s["all"], s["bot_over"], TG_PER_BOT, s["worst"], s["chat_over"],
               1.0 / TG_PER_CHAT,
               "%.3f s" % s["min_gap"] if s["min_gap"] is not None else "-", s["r429"],
               sent_rows))


def phase_soak(stack, gw, texts_path, expected):
    if SOAK <= 0:
        result("soak_rss_growth_pct", "skipped", "-",
               "SOAK not set: `SOAK=600 make bench` soaks 10 minutes at a steady %d "
               "updates/s and compares the gateway's RSS at the end with after warm-up" % RATE)
        return
    warm = min(60, max(5, SOAK // 10))
    env = load_env(stack.secret, texts_path, 400000001, rate=RATE)
    w = Wrk("soak", gw.url, SOAK, max(CONNS, 128), THREADS, env)
    samples = []
    t0 = time.monotonic()
    rss_warm = None
    while w.proc.poll() is None:
        time.sleep(1)
        samples.append((time.monotonic() - t0, gw.rss_mb()))
        if rss_warm is None and samples[-1][0] >= warm:
            rss_warm = samples[-1][1]
    res = w.wait()
    rss_end = gw.rss_mb()
    (OUT / "soak-rss.txt").write_text("".join("%.0f %.1f\n" % s for s in samples))
    rss_warm = rss_warm or rss_end
    result("soak_rss_growth_pct", pct_of(rss_end - rss_warm, rss_warm), "%",
           "%d s at %d updates/s asked (achieved %.0f/s, p99 %.1f ms): RSS %.1f MB after %d s "
           "of warm-up, %.1f MB at the end, highest sample %.1f MB (samples: %s)" % (
               SOAK, RATE, res["s2xx"] / (res["duration_us"] / 1e6), ms(res["lat_p99_us"]),
               rss_warm, warm, rss_end, max(s[1] for s in samples), OUT / "soak-rss.txt"))


def main():
    bins = sys.argv[1:]
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    started = time.monotonic()
    note("make bench %s on %s (%d cores), easyflow %s" % (
        time.strftime("%Y-%m-%d %H:%M:%S %z"), os.uname().nodename, os.cpu_count(),
        subprocess.run([ef_bin(), "--version"], capture_output=True, text=True).stdout.strip()))
    if wanted("matcher"):
        phase_matcher(bins)
    texts_path, texts = write_texts()
    expected = expected_intents(texts)
    stack = Stack()
    ok = False
    try:
        stack.start()
        note("PostgreSQL (private, %s): %s; shared_preload_libraries = pg_stat_statements" % (
            stack.pg.dir, stack.pg.settings()))
        note("load: %d distinct chats (%d Russian texts from %s, %d understood by the bot), "
             "unique update_id/message_id, bots/demo.yaml served from the environment, "
             "replies to the fake Bot API at %s" % (
                 CHATS, len(texts), HELDOUT.relative_to(REPO),
                 sum(1 for v in expected.values() if v != "fallback"), stack.tg.url))
        pg_ceiling = phase_pg_ceiling(stack) if wanted("pg") else None
        gw = stack.gateway("gateway")
        rss_started = gw.rss_mb()
        t_run0 = time.monotonic()
        http_ceiling = phase_http_ceiling(stack, gw) if wanted("http") else None
        pgss, cpu = [], []
        if wanted("ingest"):
            _, pgss, cpu = phase_ingest(stack, gw, texts_path, expected,
                                        (http_ceiling, pg_ceiling))
        if wanted("paced"):
            phase_paced(stack, gw, texts_path, expected)
        if wanted("two"):
            phase_two_gateways(stack, gw, texts_path, expected)
        if wanted("dispatch"):
            phase_dispatch(stack, t_run0)
        if wanted("bots"):
            phase_bots(stack, gw, texts_path)
        if wanted("soak"):
            phase_soak(stack, gw, texts_path, expected)
        result("gateway_rss_mb", gw.hwm_mb(), "MB",
               "VmHWM (peak resident) of the first gateway after every phase; VmRSS now "
               "%.1f MB, %.1f MB once started (the demo bot loaded, before any load)"
               % (gw.rss_mb(), rss_started))
        say("# where the time went during the peak ingest run")
        for line in cpu + pgss:
            note(line)
        ok = True
    finally:
        codes = stack.stop()
        if ok:
            note("gateway exit codes after SIGTERM: %s; %.0f s in all; logs and reports in %s" % (
                codes, time.monotonic() - started, OUT))
        (OUT / "results.txt").write_text("\n".join(_report) + "\n")


if __name__ == "__main__":
    main()
