#!/usr/bin/env python3
"""run.py -- runs the end-to-end tests: tests/e2e/[0-9][0-9]-*.py.

  EF_BIN=$PWD/build/easyflow python3 tests/e2e/run.py [-j N] [--list] [SELECT...]

SELECT is a file name prefix ("01-webhook", "06-failure-pg-restart") or
FILE::TEST ("01-webhook-store::test_text_message"). Each file runs in its own
process (files in parallel, -j, default 2); its test_* functions run in order,
each with its own databases and gateway. One line per test, the failure's
traceback and gateway log tails, and a last line `N passed, N failed`.
Exit status 1 when anything failed.
"""

import argparse
import importlib.util
import io
import json
import os
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

FILE_TIMEOUT = float(os.environ.get("EF_E2E_FILE_TIMEOUT", "600"))
TEST_TIMEOUT = int(os.environ.get("EF_E2E_TEST_TIMEOUT", "180"))


def discover():
    return sorted(p for p in HERE.glob("[0-9][0-9]-*.py"))


def load(path):
    spec = importlib.util.spec_from_file_location(path.stem.replace("-", "_"), str(path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_names(mod):
    # In definition order.
    return [n for n, v in vars(mod).items() if n.startswith("test_") and callable(v)]


# ---- child: run one file ------------------------------------------------------


class _Timeout(BaseException):
    pass


def _on_alarm(signum, frame):
    raise _Timeout("test timed out after %ds" % TEST_TIMEOUT)


def child(path, only):
    import signal

    import eftest
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a test prints goes to stderr
    sys.stdout = sys.stderr

    def emit(**kw):
        out.write(json.dumps(kw) + "\n")
        out.flush()

    path = Path(path)
    try:
        mod = load(path)
    except BaseException:
        emit(test=path.stem + "::<import>", ok=False, secs=0.0, detail=traceback.format_exc())
        return 1
    names = test_names(mod)
    if only:
        names = [n for n in names if n in only]
    signal.signal(signal.SIGALRM, _on_alarm)
    for name in names:
        full = "%s::%s" % (path.stem, name)
        eftest.begin_test(path.stem + "/" + name)
        emit(event="start", test=full)
        t0 = time.monotonic()
        ok, detail = True, ""
        signal.alarm(TEST_TIMEOUT)
        try:
            getattr(mod, name)()
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            ok = False
            detail = traceback.format_exc()
        finally:
            signal.alarm(0)
        context = eftest.failure_context() if not ok else ""
        try:
            problems = eftest.end_test(ok)
        except BaseException:
            problems = [traceback.format_exc()]
        if problems:
            if ok:
                context = eftest.failure_context()
            ok = False
            detail += "\n".join(problems)
        if not ok and context:
            detail += "\n" + context
        emit(test=full, ok=ok, secs=round(time.monotonic() - t0, 2), detail=detail)
    return 0


# ---- parent ------------------------------------------------------------------


def select(files, selectors):
    """[(path, [test names] or None)]"""
    if not selectors:
        return [(f, None) for f in files]
    chosen = {}
    for s in selectors:
        fname, _, test = s.partition("::")
        fname = fname[:-3] if fname.endswith(".py") else fname
        fname = os.path.basename(fname)
        matched = [f for f in files if f.stem.startswith(fname)]
        if not matched:
            sys.exit("run.py: no test file matches %r" % s)
        for f in matched:
            if test:
                cur = chosen.setdefault(f, [])
                if cur is not None:
                    cur.append(test)
            else:
                chosen[f] = None
    return sorted(chosen.items())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-j", "--jobs", type=int, default=int(os.environ.get("EF_E2E_JOBS", "2")))
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--only", action="append", help=argparse.SUPPRESS)
    ap.add_argument("selectors", nargs="*")
    args = ap.parse_args()

    if args.child:
        return child(args.child, args.only)

    plan = select(discover(), args.selectors)
    if args.list:
        for f, only in plan:
            for n in (only or test_names(load(f))):
                print("%s::%s" % (f.stem, n))
        return 0

    import eftest
    if not os.environ.get("EF_BIN"):
        print("run.py: EF_BIN is not set (the easyflow binary to test)", file=sys.stderr)
        return 2
    # The session's PostgreSQL + Redis, shared by every test process.
    sess = eftest.services_acquire()
    try:
        os.environ["EF_TEST_DATABASE_URL"] = sess["db"]
        os.environ["EF_TEST_REDIS_URL"] = sess["redis"]
        eftest.drop_stale_databases()
        rc = run_plan(plan, args.jobs)
        if rc == 0:
            eftest.drop_stale_databases()  # anything the test processes left
        return rc
    finally:
        eftest.services_release()


DURATIONS = HERE / ".logs" / "durations.json"


def run_plan(plan, jobs):
    lock = threading.Lock()
    results = []  # (name, ok)
    (HERE / ".logs").mkdir(exist_ok=True)
    # Longest files first (as measured last time; new ones count as long), so
    # that the parallel workers finish together.
    try:
        durations = json.loads(DURATIONS.read_text())
    except (OSError, ValueError):
        durations = {}
    queue = sorted(plan, key=lambda fo: -durations.get(fo[0].stem, 1e9))

    def report(rec):
        with lock:
            results.append((rec["test"], rec["ok"]))
            print("%s %s %.2fs" % ("PASS" if rec["ok"] else "FAIL", rec["test"], rec["secs"]),
                  flush=True)
            if not rec["ok"] and rec.get("detail"):
                for line in rec["detail"].rstrip().splitlines():
                    print("    " + line)
                sys.stdout.flush()

    def run_file(path, only):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(path)]
        for o in only or []:
            cmd += ["--only", o]
        errlog = HERE / ".logs" / (path.stem + ".stderr.log")
        expected = only or None
        seen = set()
        current = None
        t_file = time.monotonic()
        with open(errlog, "wb") as ef:
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=ef, start_new_session=True)
            killer = threading.Timer(FILE_TIMEOUT, lambda: p.kill())
            killer.start()
            try:
                for line in io.TextIOWrapper(p.stdout, encoding="utf-8"):
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if rec.get("event") == "start":
                        current = rec["test"]
                        continue
                    seen.add(rec["test"])
                    current = None
                    report(rec)
                rc = p.wait()
            finally:
                killer.cancel()
        if not only:
            with lock:
                durations[path.stem] = round(time.monotonic() - t_file, 1)
        if current is not None or rc != 0:
            tail = errlog.read_text(errors="replace").splitlines()[-30:]
            name = current or "%s::<process>" % path.stem
            if name not in seen:
                report({"test": name, "ok": False, "secs": 0.0,
                        "detail": "test process ended with %d (timeout %ds per file)\n%s" %
                                  (rc, FILE_TIMEOUT, "\n".join(tail))})
        if expected:
            for n in expected:
                full = "%s::%s" % (path.stem, n)
                if full not in seen and full != current:
                    report({"test": full, "ok": False, "secs": 0.0,
                            "detail": "no such test or it did not run"})

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                path, only = queue.pop(0)
            run_file(path, only)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        DURATIONS.write_text(json.dumps(durations, indent=1, sort_keys=True))
    except OSError:
        pass
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print("e2e: %.1fs" % (time.monotonic() - t0))
    if failed:
        print("failed:")
        for name, ok in results:
            if not ok:
                print("  " + name)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
