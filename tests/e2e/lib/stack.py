"""lib/stack.py -- what a test runs against: the session's PostgreSQL and
Redis (scripts/services.sh), fresh databases, private servers a test may stop,
the gateway process (`$EF_BIN serve`) and its configuration, HTTP clients.

  fresh_db()            URL of a NEW, migrated PostgreSQL database (a copy of a
                        template migrated once with `$EF_BIN migrate`);
                        fresh_db(migrated=False) for an empty one
  fresh_redis_db()      redis:// URL of a Redis database number of its own
  psql(url, sql)        rows (lists of str, None for NULL)
  redis(url, *args)     one Redis command (a small RESP client)
  run_bin(args)         `$EF_BIN args` to its end: (exit code, output)
  Gateway(...)          `$EF_BIN serve` on a free port: post/get/post_update/
                        metrics/restart/stop/kill; fails the test on exit code
                        != 0 after SIGTERM or on sanitizer reports in its log
  PrivatePostgres()     an own cluster on a free port that a test may stop/start
  PrivateRedis()        an own redis-server that a test may stop/start

Every resource a test creates is registered here and released by end_test().
"""

import atexit
import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]  # tests/e2e
REPO = HERE.parents[1]
STATE = Path(os.environ.get("EF_TEST_STATE") or (REPO / ".state" / "test"))
LOG_ROOT = HERE / ".logs"
SERVICES_SH = REPO / "scripts" / "services.sh"
SQL_DIR = REPO / "sql"
DEFAULT_SECRET = "e2e-Secret_token-0123456789"
# EF_SECRET_KEY of every gateway a test starts (credentials at rest).
TEST_SECRET_KEY = "5e1f0c2a9d7e3b41c8a6f00d1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5"
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "ThreadSanitizer")

# Set by run.py before each test: "<file stem>/<test name>".
current_test = "adhoc"


class TestFailure(AssertionError):
    pass


def fail(msg):
    raise TestFailure(msg)


def ef_bin():
    b = os.environ.get("EF_BIN")
    if not b:
        fail("EF_BIN is not set: run `make test-e2e`, or EF_BIN=$PWD/build/easyflow "
             "python3 tests/e2e/run.py")
    if not os.access(b, os.X_OK):
        fail("EF_BIN=%s is not an executable" % b)
    return b


def wrap_cmd():
    w = os.environ.get("EF_E2E_WRAP", "").strip()
    return shlex.split(w) if w else []


def log_dir():
    d = LOG_ROOT / current_test.replace("::", "/")
    d.mkdir(parents=True, exist_ok=True)
    return d


def wait_until(predicate, timeout=10.0, interval=0.05, what="condition"):
    """Polls predicate() until it returns a true value (returned) or fails the test."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = predicate()
            if v:
                return v
        except (OSError, TestFailure, http.client.HTTPException) as e:
            last_exc = e
        if time.monotonic() > deadline:
            extra = " (last error: %s)" % last_exc if last_exc else ""
            fail("timed out after %.1fs waiting for %s%s" % (timeout, what, extra))
        time.sleep(interval)


# ---- per-test resources --------------------------------------------------

_resources = []  # objects with a cleanup(ok) method, in creation order
_created_dbs = []  # (admin_url, name)
_gateways = []


def register(resource):
    """Has end_test() call resource.cleanup(ok); returns resource."""
    _resources.append(resource)
    return resource


def begin_test(name):
    """Called by run.py before each test."""
    global current_test
    current_test = name
    _resources.clear()
    _created_dbs.clear()
    _gateways.clear()
    d = LOG_ROOT / name.replace("::", "/")
    if d.exists():
        shutil.rmtree(d, ignore_errors=True)


def end_test(ok):
    """Called by run.py after each test: stops what the test left running and
    drops its databases when it passed (they stay for inspection otherwise).
    Returns a list of problems found (sanitizer reports after the fact)."""
    problems = []
    for r in reversed(_resources):
        try:
            r.cleanup(ok)
        except Exception as e:  # cleanup must not hide the test's outcome
            problems.append("cleanup of %r: %s" % (r, e))
    _resources.clear()
    if ok and _created_dbs:
        # Dropped in the background; the process waits for it at exit.
        t = threading.Thread(target=_drop_dbs, args=(list(_created_dbs),), daemon=True)
        t.start()
        _background.append(t)
    _created_dbs.clear()
    return problems


def failure_context(max_lines=40):
    """Tails of every gateway log of the current test, for the failure report."""
    out = []
    for gw in _gateways:
        for path in gw.log_paths:
            try:
                lines = Path(path).read_text(errors="replace").splitlines()
            except OSError:
                continue
            out.append("---- %s (last %d lines) ----" % (path, min(max_lines, len(lines))))
            out.extend(lines[-max_lines:])
    return "\n".join(out)


# ---- ports -----------------------------------------------------------------

_port_lock = threading.Lock()
_ports_given = set()


def free_port():
    """A free loopback port below the ephemeral range (so outgoing connections
    do not take it before our server binds it)."""
    import random
    with _port_lock:
        for _ in range(500):
            p = random.randint(15000, 32000)
            if p in _ports_given:
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
            finally:
                s.close()
            _ports_given.add(p)
            return p
    fail("no free port")


# ---- PostgreSQL ------------------------------------------------------------

NULL_MARK = "\x02NULL\x02"


class SQLError(Exception):
    pass


_psql_path = []


def _psql_bin():
    """The psql client: the newest server's own binary (Debian's /usr/bin/psql
    is a Perl wrapper that costs tens of milliseconds a call), else PATH's."""
    if not _psql_path:
        cands = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"),
                       key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.parent.name)])
        p = str(cands[-1]) if cands else shutil.which("psql")
        if not p:
            fail("psql not found (run scripts/deps.sh)")
        _psql_path.append(p)
    return _psql_path[0]


def psql(url, *sql, timeout=60):
    """Runs each SQL string (one -c each) and returns the rows of all of them:
    a list of lists of str, None for NULL. Raises SQLError on any error."""
    cmd = [_psql_bin(), "-X", "-q", "-A", "-F", "\x1f", "-R", "\x1e",
           "-P", "null=" + NULL_MARK, "-P", "footer=on", "-v", "ON_ERROR_STOP=1", "-d", url]
    for s in sql:
        cmd += ["-c", s]
    env = dict(os.environ, PGCLIENTENCODING="UTF8", PGCONNECT_TIMEOUT="10")
    p = subprocess.run(cmd, capture_output=True, env=env, timeout=timeout)
    if p.returncode != 0:
        raise SQLError("psql failed (%d): %s\nSQL: %s" % (
            p.returncode, p.stderr.decode("utf-8", "replace").strip(), " ; ".join(sql)[:2000]))
    return _parse_psql(p.stdout.decode("utf-8"))


_FOOTER = re.compile(r"\((\d+) rows?\)\n")


def _parse_psql(out):
    """Unaligned output, tables one after another: header RS row RS ... RS
    "(N rows)" LF. The footer's count tells rows from the footer, so empty
    values and values holding newlines parse exactly."""
    recs = out.split("\x1e")
    rows = []
    i = 0
    while i < len(recs) and recs[i] != "":
        j = i + 1
        m = None
        while j < len(recs):
            m = _FOOTER.match(recs[j])
            if m and int(m.group(1)) == j - i - 1:
                break
            j += 1
        if j >= len(recs):
            raise SQLError("cannot parse psql output: %r" % out[:500])
        for rec in recs[i + 1:j]:
            rows.append([None if f == NULL_MARK else f for f in rec.split("\x1f")])
        rest = recs[j][m.end():]
        if rest:
            recs[j] = rest
            i = j
        else:
            i = j + 1
    return rows


def pg_dump(url, timeout=120):
    """The whole database of url as SQL text (pg_dump, data included)."""
    exe = Path(_psql_bin()).with_name("pg_dump")
    p = subprocess.run([str(exe) if exe.exists() else "pg_dump", "--no-owner", "-d", url],
                       capture_output=True, timeout=timeout,
                       env=dict(os.environ, PGCONNECT_TIMEOUT="10"))
    if p.returncode != 0:
        raise SQLError("pg_dump failed (%d): %s" % (p.returncode, p.stderr.decode()[-2000:]))
    return p.stdout.decode("utf-8", "replace")


def psql1(url, sql):
    """The single value of a one-row, one-column query (None for NULL or no row)."""
    rows = psql(url, sql)
    if not rows:
        return None
    if len(rows) != 1 or len(rows[0]) != 1:
        fail("expected one value from %r, got %r" % (sql, rows[:5]))
    return rows[0][0]


def lit(s):
    """A SQL string literal."""
    if s is None:
        return "NULL"
    return "'" + str(s).replace("'", "''") + "'"


def url_with_db(url, dbname):
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + dbname, u.query, u.fragment))


def db_name(url):
    return urllib.parse.urlsplit(url).path.lstrip("/")


@contextlib.contextmanager
def file_lock(path):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class Run:
    """A finished command: code, out (stdout text), err (stderr text)."""

    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    def __repr__(self):
        return "Run(code=%d, out=%r, err=%r)" % (self.code, self.out[-500:], self.err[-500:])


def run_cli(args, env=None, stdin=None, timeout=120, cwd=None):
    """Runs $EF_BIN with args (stdin: text or bytes fed to it; env: added,
    None values remove a variable); returns a Run."""
    e = _clean_env()
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = str(v)
    data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
    p = subprocess.run(wrap_cmd() + [ef_bin()] + list(args), capture_output=True, env=e,
                       input=data if data is not None else b"", timeout=timeout,
                       cwd=cwd or str(REPO))
    return Run(p.returncode, p.stdout.decode("utf-8", "replace"),
               p.stderr.decode("utf-8", "replace"))


def run_bin(args, env=None, timeout=120, cwd=None):
    """Runs $EF_BIN with args; returns (exit code, stdout+stderr text)."""
    r = run_cli(args, env=env, timeout=timeout, cwd=cwd)
    return r.code, r.out + r.err


def migrate(url, sql_dir=None, timeout=120):
    """`$EF_BIN migrate` against url; returns (exit code, output)."""
    env = {"EF_DATABASE_URL": url, "EF_SQL_DIR": str(sql_dir or SQL_DIR)}
    return run_bin(["migrate"], env=env, timeout=timeout)


def _template_key():
    h = hashlib.sha1()
    for f in sorted(SQL_DIR.glob("*.sql")):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    st = os.stat(ef_bin())
    h.update(("%s:%d:%d" % (ef_bin(), st.st_size, st.st_mtime_ns)).encode())
    return h.hexdigest()[:16]


_db_counter = [0]


def _template(admin):
    """The migrated template database for the current sql/ and binary
    (created once, under STATE/template.lock; call with the lock held)."""
    name = "eftmpl_" + _template_key()
    exists = psql1(admin, "SELECT 1 FROM pg_database WHERE datname = %s" % lit(name))
    if exists:
        return name
    build = "eftmpl_build_%d" % os.getpid()
    psql(admin, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % build,
         'CREATE DATABASE "%s"' % build)
    rc, out = migrate(url_with_db(admin, build))
    if rc != 0:
        psql(admin, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % build)
        fail("`easyflow migrate` failed (exit %d) while preparing the template database:\n%s" %
             (rc, out[-3000:]))
    psql(admin, 'ALTER DATABASE "%s" RENAME TO "%s"' % (build, name))
    # Templates of other sql/ or binaries: keep the few newest (runs of two
    # builds may share the server), drop the rest.
    olds = psql(admin, "SELECT datname FROM pg_database WHERE datname LIKE 'eftmpl\\_%%' AND "
                       "datname NOT LIKE 'eftmpl\\_build\\_%%' AND datname <> %s "
                       "ORDER BY oid DESC" % lit(name))
    for (old,) in olds[3:]:
        psql(admin, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % old)
    return name


def _new_db(migrated):
    """Creates a database; returns (admin URL, name)."""
    admin = session()["db"]
    with _port_lock:
        _db_counter[0] += 1
        n = _db_counter[0]
    name = "eft_%d_%d_%d" % (os.getpid(), n, int(time.time() * 1000) % 100000)
    with file_lock(STATE / "template.lock"):
        if migrated:
            tmpl = _template(admin)
            psql(admin, 'CREATE DATABASE "%s" TEMPLATE "%s"' % (name, tmpl))
        else:
            psql(admin, 'CREATE DATABASE "%s"' % name)
    return admin, name


# The next migrated database is copied in the background while a test runs
# (a copy takes a few hundred milliseconds; most tests need one).
_prefetch = {}
_background = []


def _start_prefetch():
    def work():
        try:
            _prefetch["result"] = _new_db(True)
        except BaseException as e:  # surfaces as a synchronous retry in fresh_db
            _prefetch["error"] = e
    _prefetch.clear()
    t = threading.Thread(target=work, name="fresh-db-prefetch", daemon=True)
    _prefetch["thread"] = t
    t.start()


def _take_prefetched():
    t = _prefetch.get("thread")
    if t is None:
        return None
    t.join()
    res = _prefetch.get("result")
    _prefetch.clear()
    return res


def fresh_db(migrated=True):
    """URL of a new database on the session server, migrated unless told not."""
    if migrated:
        got = _take_prefetched() or _new_db(True)
        _start_prefetch()
    else:
        got = _new_db(False)
    _created_dbs.append(got)
    return url_with_db(*got)


def _drop_dbs(dbs):
    by_admin = {}
    for admin, name in dbs:
        by_admin.setdefault(admin, []).append('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
    for admin, stmts in by_admin.items():
        try:
            psql(admin, *stmts)
        except (SQLError, OSError, subprocess.SubprocessError):
            pass  # left for drop_stale_databases()


def _at_exit():
    unused = _take_prefetched()
    if unused:
        _drop_dbs([unused])
    for t in _background:
        t.join(60)


atexit.register(_at_exit)


def drop_stale_databases():
    """Drops the databases (eft_<pid>_*, eftmpl_build_<pid>) of test
    processes that no longer run."""
    admin = session()["db"]
    for (name,) in psql(admin, "SELECT datname FROM pg_database WHERE datname LIKE 'eft\\_%' "
                               "OR datname LIKE 'eftmpl\\_build\\_%'"):
        m = re.match(r"(?:eft|eftmpl_build)_(\d+)", name)
        if not m:
            continue
        pid = int(m.group(1))
        try:
            os.kill(pid, 0)
            continue  # still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        psql(admin, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


# ---- Redis -------------------------------------------------------------------


class RedisError(Exception):
    pass


def _parse_redis_url(url):
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("redis", ""):
        fail("not a redis:// URL: %s" % url)
    db = int(u.path.lstrip("/") or 0)
    return u.hostname or "127.0.0.1", u.port or 6379, db, u.password


def _resp_encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, bytes):
            b = a
        else:
            b = str(a).encode("utf-8")
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def _resp_read(f):
    line = f.readline()
    if not line:
        raise RedisError("connection closed")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        raise RedisError(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode("utf-8", "surrogateescape")
    if t == b"*":
        n = int(rest)
        if n < 0:
            return None
        return [_resp_read(f) for _ in range(n)]
    raise RedisError("bad reply %r" % line)


def redis(url, *args, timeout=10):
    """One Redis command on the database of url. Returns str / int / list /
    None; raises RedisError for error replies, OSError when unreachable."""
    host, port, db, password = _parse_redis_url(url)
    with socket.create_connection((host, port), timeout=timeout) as s:
        f = s.makefile("rb")
        cmds = []
        if password:
            cmds.append(["AUTH", password])
        if db:
            cmds.append(["SELECT", db])
        cmds.append(list(args))
        s.sendall(b"".join(_resp_encode(c) for c in cmds))
        result = None
        for _ in cmds:
            result = _resp_read(f)
        return result


def fresh_redis_db():
    """redis:// URL of a database number no other test of this session uses
    (flushed), on the session Redis."""
    base = session()["redis"]
    host, port, _, password = _parse_redis_url(base)
    root = "redis://%s%s:%d/0" % ((":" + password + "@") if password else "", host, port)
    try:
        ndb = int(redis(root, "CONFIG", "GET", "databases")[1])
    except (RedisError, IndexError, ValueError):
        ndb = 16  # CONFIG disabled (a managed Redis): the default
    if ndb < 2:
        fail("the test Redis has a single database; start it with --databases > 1")
    n = redis(root, "INCR", "eftest:dbseq")
    db = 1 + (n - 1) % (ndb - 1)
    url = "redis://%s%s:%d/%d" % ((":" + password + "@") if password else "", host, port, db)
    redis(url, "FLUSHDB")
    return url


# ---- session services --------------------------------------------------------

_session = {}


def session():
    """{'db': admin URL, 'redis': URL}: EF_TEST_DATABASE_URL / EF_TEST_REDIS_URL
    when given, else the services of STATE (started when needed)."""
    if _session:
        return _session
    db = os.environ.get("EF_TEST_DATABASE_URL")
    rd = os.environ.get("EF_TEST_REDIS_URL")
    if not db or not rd:
        started = start_services(need_pg=not db, need_redis=not rd)
        db = db or started.get("EF_DATABASE_URL")
        rd = rd or started.get("EF_REDIS_URL")
    _session["db"] = db
    _session["redis"] = rd
    return _session


def _services_env(need_pg, need_redis):
    svc = " ".join(s for s, n in (("pg", need_pg), ("redis", need_redis)) if n)
    return dict(os.environ, EF_SERVICES=svc, EF_SERVICES_FAST="1")


def services_running(need_pg=True, need_redis=True):
    p = subprocess.run([str(SERVICES_SH), "status", str(STATE)], capture_output=True,
                       env=_services_env(need_pg, need_redis))
    return p.returncode == 0


def start_services(need_pg=True, need_redis=True):
    """Starts the test services (idempotent); returns their URLs."""
    env = _services_env(need_pg, need_redis)
    p = subprocess.run([str(SERVICES_SH), "start", str(STATE)], capture_output=True, env=env,
                       timeout=180)
    if p.returncode != 0:
        fail("scripts/services.sh start failed:\n" + p.stdout.decode() + p.stderr.decode())
    p = subprocess.run([str(SERVICES_SH), "env", str(STATE)], capture_output=True, env=env)
    urls = {}
    for line in p.stdout.decode().splitlines():
        m = re.match(r"export (\w+)=(.*)", line)
        if m:
            urls[m.group(1)] = m.group(2)
    return urls


def stop_services(need_pg=True, need_redis=True):
    subprocess.run([str(SERVICES_SH), "stop", str(STATE)], capture_output=True,
                   env=_services_env(need_pg, need_redis), timeout=120)


# Several runners (run.py, scripts/run-unit.sh, bench.sh; `make -j test` runs
# two at once) share the test services. Each holds a shared lock on
# STATE/.users while it runs; services a runner had to start are marked
# (STATE/.auto-stop) and stopped by the last runner to leave.
_users = {}


def services_acquire():
    """Takes a share of the session services (starting them when needed);
    pair with services_release(). Returns session()."""
    need_pg = not os.environ.get("EF_TEST_DATABASE_URL")
    need_redis = not os.environ.get("EF_TEST_REDIS_URL")
    if need_pg or need_redis:
        STATE.mkdir(parents=True, exist_ok=True)
        f = open(STATE / ".users", "a+")
        fcntl.flock(f, fcntl.LOCK_SH)
        _users.update(f=f, pg=need_pg, redis=need_redis)
        if not services_running(need_pg, need_redis):
            (STATE / ".auto-stop").write_text(" ".join(
                s for s, n in (("pg", need_pg), ("redis", need_redis)) if n))
    return session()


def services_release():
    """Drops this runner's share; the last runner out stops what was started
    for the runners."""
    f = _users.pop("f", None)
    if f is None:
        return
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return  # another runner still uses them
        marker = STATE / ".auto-stop"
        if marker.exists():
            svc = marker.read_text().split()
            stop_services("pg" in svc, "redis" in svc)
            marker.unlink()
    finally:
        f.close()


# ---- the gateway -------------------------------------------------------------

_PLATFORM_PREFIXES = ("EF_", "TELEGRAM_", "WHATSAPP_")


def _clean_env():
    """The test process's environment without any easyflow configuration, so
    a developer's settings never leak into a test."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(_PLATFORM_PREFIXES)}
    e.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    return e


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __iter__(self):  # status, body = gw.post(...)
        return iter((self.status, self.body))

    def __repr__(self):
        return "Response(%d, %r)" % (self.status, self.body[:200])


def _body_bytes(body):
    if body is None:
        return b""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


class Gateway:
    """`$EF_BIN serve` on 127.0.0.1:<free port>.

    db / redis_url default to a fresh database and a fresh Redis database;
    env adds or overrides variables (None removes one). Use as a context
    manager: leaving it stops the gateway with SIGTERM and fails the test if
    the exit code is not 0 or its log shows a sanitizer report."""

    def __init__(self, env=None, db=None, redis_url=None, secret=DEFAULT_SECRET, name="gateway",
                 args=("serve",), ready_timeout=None, start=True):
        self.db = db if db is not None else fresh_db()
        self.redis_url = redis_url if redis_url is not None else fresh_redis_db()
        self.secret = secret
        self.name = name
        self.args = list(args)
        self.extra_env = dict(env or {})
        # Under EF_E2E_WRAP (valgrind) everything is much slower.
        self.slow = 6.0 if wrap_cmd() else 1.0
        self.ready_timeout = ready_timeout or 30.0 * self.slow
        self.port = free_port()
        self.proc = None
        self.log_paths = []
        self.exit_codes = []
        self._logf = None
        _resources.append(self)
        _gateways.append(self)
        if start:
            self.start()

    # -- process control --

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def env(self):
        e = _clean_env()
        e.update({
            "EF_DATABASE_URL": self.db,
            "EF_REDIS_URL": self.redis_url,
            "EF_LISTEN": "127.0.0.1:%d" % self.port,
            "EF_SQL_DIR": str(SQL_DIR),
            "EF_SECRET_KEY": TEST_SECRET_KEY,
        })
        if self.secret is not None:
            e["TELEGRAM_SECRET_TOKEN"] = self.secret
        for k, v in self.extra_env.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = str(v)
        return e

    def start(self, wait=True):
        """Starts the process; with wait, until /healthz answers. When the
        port was taken meanwhile (another test process picked it), retries on
        a new port."""
        for attempt in range(3):
            self._spawn()
            if not wait:
                return self
            try:
                self.wait_ready()
                return self
            except TestFailure:
                if attempt < 2 and self.proc is None and re.search(
                        r"address already in use|could not bind|bind\(\)|EADDRINUSE",
                        Path(self.log_paths[-1]).read_text(errors="replace"), re.I):
                    self.port = free_port()
                    continue
                raise
        return self

    def _spawn(self):
        if self.proc and self.proc.poll() is None:
            fail("gateway already running")
        n = len(self.log_paths) + 1
        path = log_dir() / ("%s-%d.log" % (self.name, n))
        self.log_paths.append(str(path))
        self._logf = open(path, "wb")
        self.proc = subprocess.Popen(wrap_cmd() + [ef_bin()] + self.args, env=self.env(),
                                     stdin=subprocess.DEVNULL, stdout=self._logf,
                                     stderr=subprocess.STDOUT, cwd=str(REPO),
                                     start_new_session=True)

    def wait_ready(self):
        deadline = time.monotonic() + self.ready_timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.exit_codes.append(rc)
                self.proc = None
                self._close_log()
                fail("gateway exited with %d before answering /healthz; log:\n%s" %
                     (rc, self.log_tail()))
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/healthz")
                c.getresponse().read()
                c.close()
                return
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                fail("gateway did not answer /healthz within %.0fs; log:\n%s" %
                     (self.ready_timeout, self.log_tail()))
            time.sleep(0.05)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self, after=""):
        """Fails the test when the gateway process has exited."""
        if self.proc is None:
            fail("gateway is not running%s" % (" after " + after if after else ""))
        rc = self.proc.poll()
        if rc is not None:
            self.exit_codes.append(rc)
            self.proc = None
            self._close_log()
            fail("gateway exited with %d%s; log:\n%s" % (rc, " after " + after if after else "",
                                                         self.log_tail()))

    def signal(self, sig):
        if self.running():
            os.kill(self.proc.pid, sig)

    def stop(self, timeout=10.0, expect_code=0):
        """SIGTERM; the gateway must exit with expect_code within timeout."""
        if self.proc is None:
            return None
        timeout *= self.slow
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._hard_kill()
            self._close_log()
            fail("gateway did not exit within %.0fs of SIGTERM; log:\n%s" %
                 (timeout, self.log_tail()))
        self.exit_codes.append(rc)
        self.proc = None
        self._close_log()
        self.check_log()
        if expect_code is not None and rc != expect_code:
            fail("gateway exited with %d after SIGTERM (expected %d); log:\n%s" %
                 (rc, expect_code, self.log_tail()))
        return rc

    def exit_code_at_start(self, timeout=15):
        """Starts the gateway (one that should refuse to run) and returns its
        exit code when it exits within timeout seconds, else None (it runs)."""
        self.start(wait=False)
        try:
            rc = self.proc.wait(timeout * self.slow)
        except subprocess.TimeoutExpired:
            return None
        self.proc = None
        self._close_log()
        return rc

    def kill(self):
        """SIGKILL (a crash); no exit code expected."""
        if self.proc is None:
            return
        self._hard_kill()
        self._close_log()
        self.check_log()

    def _hard_kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None

    def _close_log(self):
        if self._logf:
            self._logf.close()
            self._logf = None

    def restart(self):
        self.stop()
        self.start()
        return self

    def cleanup(self, ok):
        if self.proc is not None:
            if ok:
                self.stop()
            else:
                self._hard_kill()
                self._close_log()
        if not ok:
            return
        self.check_log()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.stop()
        elif self.proc is not None:
            self._hard_kill()
            self._close_log()
        return False

    # -- logs --

    def log_text(self):
        out = []
        for p in self.log_paths:
            try:
                out.append(Path(p).read_text(errors="replace"))
            except OSError:
                pass
        return "".join(out)

    def log_tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:])

    def check_log(self):
        text = self.log_text()
        for mark in SANITIZER_MARKS:
            if mark in text:
                i = text.index(mark)
                fail("the gateway log contains %r:\n%s" % (mark, text[max(0, i - 2000):i + 6000]))

    def wait_log(self, pattern, timeout=10.0, flags=re.I):
        """Waits for a log line matching the regex; returns the line."""
        rx = re.compile(pattern, flags)

        def find():
            for line in self.log_text().splitlines():
                if rx.search(line):
                    return line
            return None
        return wait_until(find, timeout=timeout, what="a gateway log line matching %r" % pattern)

    # -- HTTP --

    def request(self, method, path, body=None, headers=None, timeout=30.0):
        data = _body_bytes(body)
        h = {}
        if body is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            try:
                c.request(method, path,
                          body=data if (body is not None or method == "POST") else None,
                          headers=h)
            except (BrokenPipeError, ConnectionResetError):
                # A request refused before its body (413 for a declared length
                # over the limit, 401...) is answered at once and the
                # connection closed: the answer is what counts.
                pass
            r = c.getresponse()
            return Response(r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read())
        finally:
            c.close()

    def post(self, path, body=None, headers=None, timeout=30.0):
        return self.request("POST", path, body, headers, timeout)

    def get(self, path, headers=None, timeout=30.0):
        return self.request("GET", path, None, headers, timeout)

    def post_update(self, update, secret=DEFAULT_SECRET, headers=None, timeout=30.0):
        """POST /webhook/telegram as Telegram does. secret=None sends no header."""
        h = {}
        if secret is DEFAULT_SECRET:
            secret = self.secret
        if secret is not None:
            h["X-Telegram-Bot-Api-Secret-Token"] = secret
        h.update(headers or {})
        return self.post("/webhook/telegram", update, h, timeout)

    def deliver(self, update, timeout=30.0, attempts=1, pause=0.2):
        """Posts an update until it is answered 2xx (like Telegram's retries);
        returns the last Response."""
        r = None
        for _ in range(attempts):
            r = self.post_update(update, timeout=timeout)
            if 200 <= r.status < 300:
                return r
            time.sleep(pause)
        return r

    def healthz(self):
        return self.get("/healthz")

    def wait_healthy(self, timeout=5.0):
        """Until /healthz answers 200 (it may report from a probe a second
        old); returns that Response."""
        return wait_until(lambda: (lambda r: r if r.status == 200 else None)(self.healthz()),
                          timeout=timeout, what="healthz 200")

    def stays_unhealthy(self, seconds=2.5):
        """/healthz answers 503 throughout (the gateway had time to probe);
        returns the last answer's JSON."""
        deadline = time.monotonic() + seconds
        while True:
            r = self.healthz()
            if r.status != 503:
                fail("healthz answered %d (%r), expected 503" % (r.status, r.body[:200]))
            if time.monotonic() > deadline:
                return r.json()
            time.sleep(0.25)

    def metrics(self):
        """The /metrics text parsed: {(name, ((label, value), ...)): float}."""
        r = self.get("/metrics")
        if r.status != 200:
            fail("/metrics answered %d: %r" % (r.status, r.body[:300]))
        return parse_prometheus(r.body.decode("utf-8"))

    def metric(self, name, default=0.0, **labels):
        m = self.metrics()
        return m.get((name, tuple(sorted(labels.items()))), default)


_PROM_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
_PROM_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def parse_prometheus(text):
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = _PROM_LINE.match(line.strip())
        if not m:
            fail("not a Prometheus text line: %r" % line)
        labels = []
        if m.group(3):
            pos = 0
            s = m.group(3)
            while pos < len(s):
                lm = _PROM_LABEL.match(s, pos)
                if not lm:
                    fail("bad labels in Prometheus line: %r" % line)
                labels.append((lm.group(1), lm.group(2)))
                pos = lm.end()
        v = m.group(4)
        out[(m.group(1), tuple(sorted(labels)))] = float(v.replace("+Inf", "inf"))
    return out


# ---- raw sockets (hostile clients) -------------------------------------------


def raw_http(port, data, timeout=10.0, shut_write=False):
    """Sends raw bytes, returns everything answered until the server closes or
    the first complete response (by Content-Length) arrives; b'' on timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if shut_write:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the server already closed on the garbage: that is an answer too
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return buf
            except ConnectionResetError:
                return buf
            if not chunk:
                return buf
            buf += chunk
            head, sep, rest = buf.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if m and len(rest) >= int(m.group(1)):
                    return buf
    finally:
        s.close()


def status_of(raw):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    return int(m.group(1)) if m else None


# ---- private servers ---------------------------------------------------------


def _run_user():
    """The user PostgreSQL runs as (root is refused by PostgreSQL)."""
    if os.geteuid() != 0:
        return None
    user = os.environ.get("EF_SERVICES_USER", "easyflow")
    if subprocess.run(["id", "-u", user], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
                        "/nonexistent", "--shell", "/usr/sbin/nologin", user], check=True)
    return user


def _pg_bindir():
    cands = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                   key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)] or [0])
    for d in reversed(cands):
        if (d / "initdb").exists():
            return d
    pc = shutil.which("pg_config")
    if pc:
        d = Path(subprocess.run([pc, "--bindir"], capture_output=True, text=True).stdout.strip())
        if (d / "initdb").exists():
            return d
    fail("PostgreSQL server binaries not found (run scripts/deps.sh)")


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb in a temp folder under STATE,
    free port, fsync off), that the test may stop() -- also "immediate", a
    crash -- and start().
    url: the `easyflow` database, empty; call migrate() for the schema."""

    def __init__(self, start=True):
        self.bindir = _pg_bindir()
        self.user = _run_user()
        STATE.mkdir(parents=True, exist_ok=True)
        (STATE / "private").mkdir(exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="pg-", dir=STATE / "private"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = "postgresql://easyflow@127.0.0.1:%d/easyflow" % self.port
        self.admin_url = url_with_db(self.url, "postgres")
        self.log = log_dir() / ("postgres-%d.log" % self.port)
        self._running = False
        _resources.append(self)
        if self.user:
            shutil.chown(self.dir, self.user)
        self._as_user([str(self.bindir / "initdb"), "-D", str(self.data), "-U", "easyflow",
                       "--auth=trust", "-E", "UTF8", "--no-locale"])
        with open(self.data / "postgresql.conf", "a") as f:
            # fsync off: the data outlives a server crash (it is in the OS);
            # synchronous_commit stays on, or an "immediate" stop (a crash)
            # would lose commits the gateway has already acknowledged.
            f.write("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\n"
                    "fsync = off\nfull_page_writes = off\n" % (self.port, self.dir))
        if start:
            self.start()
            psql(self.admin_url, "CREATE DATABASE easyflow")

    def _as_user(self, cmd, timeout=120):
        if self.user:
            cmd = ["runuser", "-u", self.user, "--"] + cmd
        p = subprocess.run(cmd, capture_output=True, cwd=str(self.dir), timeout=timeout)
        if p.returncode != 0:
            fail("%s failed:\n%s%s" % (" ".join(cmd), p.stdout.decode(), p.stderr.decode()))
        return p

    def start(self):
        if self.user and not self.log.exists():
            self.log.touch()
            shutil.chown(self.log, self.user)
        self._as_user([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                       "-w", "-t", "60", "start"])
        self._running = True
        wait_until(lambda: subprocess.run([str(self.bindir / "pg_isready"), "-q", "-h",
                                           "127.0.0.1", "-p", str(self.port)]).returncode == 0,
                   timeout=30, what="private PostgreSQL to accept connections")

    def stop(self, mode="fast"):
        if self._running:
            self._as_user([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w",
                           "-t", "60", "stop"])
            self._running = False

    def migrate(self):
        rc, out = migrate(self.url)
        if rc != 0:
            fail("migrate failed on the private PostgreSQL (%d):\n%s" % (rc, out))

    def cleanup(self, ok):
        try:
            self.stop(mode="immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class PrivateRedis:
    """A redis-server of its own that the test may stop() and start()."""

    def __init__(self, start=True):
        self.port = free_port()
        self.url = "redis://127.0.0.1:%d/0" % self.port
        self.dir = Path(tempfile.mkdtemp(prefix="redis-", dir=str(STATE)))
        self.proc = None
        _resources.append(self)
        if start:
            self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=open(log_dir() / ("redis-%d.log" % self.port), "ab"), stderr=subprocess.STDOUT,
            start_new_session=True)
        wait_until(lambda: self._ping(), timeout=10, what="private Redis")

    def _ping(self):
        try:
            return redis(self.url, "PING", timeout=1) == "PONG"
        except (OSError, RedisError):
            return False

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def cleanup(self, ok):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def parallel(fn, items, workers=8):
    """Runs fn(item) on a thread pool; returns results in item order; re-raises
    the first exception."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(fn, items))
