"""17-make-run: scripts/run.sh (what `make run` runs) as a newcomer meets it,
driven against the harness's services: EF_STATE_DIR in a temporary folder,
EF_LISTEN on a free port, the binary under test from EF_BIN, a fresh
database and Redis database. The first run generates the demo operator's
password (kept with mode 600) and the account logs in with it through
/api/v1/auth/login; the banner names /console, the account and where its
password is; the printed "Try it" command sends a new update id each time it
runs (two tries, two stored messages, two `reply queued` log lines); a
second run keeps the password. The banner comes only once the gateway
answers; on a busy port run.sh shows only the reason (EF_LISTEN) and exits
non-zero."""

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import eftest
from eftest import (REPO, assert_eq, fail, free_port, fresh_db, fresh_redis_db, psql1, register,
                    wait_until)

RUN_SH = REPO / "scripts" / "run.sh"
DEMO = "demo@easyflow.local"
BANNER = "easyflow is running"


class RunSh:
    """scripts/run.sh $EF_BIN in its own session; output in a log file."""

    def __init__(self, env, log_path):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen([str(RUN_SH), eftest.ef_bin()], env=env,
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=str(REPO),
                                     start_new_session=True)
        register(self)

    def output(self):
        return Path(self.log_path).read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            fail("run.sh's gateway did not exit within 20 s of SIGTERM:\n" + self.output())
        self._log.close()
        return rc

    def cleanup(self, ok):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        if not self._log.closed:
            self._log.close()


class TempDir:
    def __init__(self):
        self.path = Path(tempfile.mkdtemp(prefix="ef-make-run-"))
        register(self)

    def cleanup(self, ok):
        if ok:
            shutil.rmtree(self.path, ignore_errors=True)


def http(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    rq = urllib.request.Request(url, data=data, method=method,
                                headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(rq, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def start(state, db, rd, port, n):
    env = eftest._clean_env()
    env.update(EF_STATE_DIR=str(state), EF_DATABASE_URL=db, EF_REDIS_URL=rd,
               EF_LISTEN="127.0.0.1:%d" % port)
    run = RunSh(env, str(eftest.log_dir() / ("run-sh-%d.log" % n)))
    base = "http://127.0.0.1:%d" % port

    def up():
        # The banner comes once the gateway answers.
        return run.proc.poll() is not None or (BANNER in run.output() and
                                               http("GET", base + "/healthz")[0] == 200)

    wait_until(up, timeout=60, what="run.sh's gateway answering /healthz and its banner")
    if run.proc.poll() is not None:
        fail("run.sh exited with %d:\n%s" % (run.proc.returncode, run.output()))
    return run, base


def password_of(state):
    f = state / "operator_password"
    if not f.exists():
        fail("run.sh kept no demo operator password in %s" % f)
    mode = stat.S_IMODE(f.stat().st_mode)
    assert_eq(mode, 0o600, "mode of %s" % f)
    pw = f.read_text().strip()
    if len(pw) < 16:
        fail("the generated password is too short: %d characters" % len(pw))
    return pw


def login_ok(base, pw, what):
    status, body = http("POST", base + "/api/v1/auth/login", {"email": DEMO, "password": pw})
    assert_eq(status, 200, "%s: login of %s (%s)" % (what, DEMO, body[:200]))
    if not json.loads(body).get("access_token"):
        fail("%s: no access_token in %r" % (what, body[:200]))


def try_it_command(out):
    """The printed "Try it" lines, from `n=...` through the curl's -d line."""
    m = re.search(r"^  (n=\$\(\(.*?\n(?:.*\\\n)*.*-d '.*?'\n)", out, re.M)
    if not m:
        fail("no `n=...; curl ...` Try it command in run.sh's output:\n" + out)
    return m.group(1)


def test_demo_operator_console_and_try_it():
    tmp = TempDir()
    state = tmp.path / "state"
    db, rd = fresh_db(), fresh_redis_db()
    run, base = start(state, db, rd, free_port(), 1)
    out = run.output()
    for want in (base + "/chat", base + "/console", DEMO, str(state / "operator_password")):
        if want not in out:
            fail("run.sh's output does not name %r:\n%s" % (want, out))
    pw = password_of(state)
    if pw in out:
        fail("run.sh printed the password itself")
    # The banner only after a successful start, naming the state folder.
    if out.find("listening on") < 0 or out.find("listening on") > out.find(BANNER):
        fail("run.sh's banner came before the gateway's start:\n" + out)
    if "state folder: %s" % state not in out:
        fail("the banner does not say where the state folder is:\n" + out)
    login_ok(base, pw, "first run")
    status, _ = http("POST", base + "/api/v1/auth/login", {"email": DEMO, "password": "admin"})
    assert_eq(status, 401, "login with a guessed default password")

    # The Try it command, run twice: two update ids, two stored messages.
    cmd = try_it_command(out)
    for i in range(2):
        p = subprocess.run(["bash", "-c", cmd], capture_output=True, timeout=30,
                           env=eftest._clean_env())
        assert_eq(p.stdout.decode().strip(), '{"ok":true}',
                  "answer to Try it #%d (stderr %r)" % (i + 1, p.stderr.decode()))
    assert_eq((state / "try_update_id").read_text().strip(), "1002", "try_update_id after two")
    # Each reply the bot queued is logged at info level: chat, first characters.
    wait_until(lambda: len(re.findall(r"INFO pipe reply queued telegram chat=42 "
                                      r"intent=greeting text=\"Здравствуйте", run.output())) == 2,
               timeout=20, what="two `reply queued` lines in make run's log")
    sql = ("SELECT count(*) FROM messages WHERE role = 'user' AND platform = 'telegram' "
           "AND content = 'Привет'")
    wait_until(lambda: psql1(db, sql) == "2", timeout=20, what="both tries stored")
    assert_eq(run.stop(), 0, "run.sh's gateway exit code after SIGTERM")

    # A second run: same account, same password, the counter kept.
    run, base = start(state, db, rd, free_port(), 2)
    assert_eq(password_of(state), pw, "the password after a second run")
    login_ok(base, pw, "second run")
    if base + "/console" not in run.output():
        fail("the second run's output does not name /console:\n" + run.output())
    assert_eq((state / "try_update_id").read_text().strip(), "1002", "try_update_id kept")
    n = psql1(db, "SELECT count(*) FROM users WHERE email = '%s'" % DEMO)
    assert_eq(n, "1", "demo operator accounts")
    assert_eq(run.stop(), 0, "second run's exit code after SIGTERM")


def test_busy_port_no_banner_names_ef_listen():
    """A port in use: run.sh shows the reason and EF_LISTEN, no banner, no
    raw libwebsockets line, and exits non-zero."""
    tmp = TempDir()
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    port = held.getsockname()[1]
    env = eftest._clean_env()
    env.update(EF_STATE_DIR=str(tmp.path / "state"), EF_DATABASE_URL=fresh_db(),
               EF_REDIS_URL=fresh_redis_db(), EF_LISTEN="127.0.0.1:%d" % port)
    run = RunSh(env, str(eftest.log_dir() / "run-sh-busy.log"))
    try:
        rc = run.proc.wait(60)
    finally:
        held.close()
    out = run.output()
    if rc == 0:
        fail("run.sh exited 0 on a busy port:\n" + out)
    for want in ("EF_LISTEN", "in use", "did not start"):
        if want not in out:
            fail("busy port: %r missing in run.sh's output:\n%s" % (want, out))
    for bad in (BANNER, "Talk to the bot", "lws:"):
        if bad in out:
            fail("busy port: %r in run.sh's output:\n%s" % (bad, out))
