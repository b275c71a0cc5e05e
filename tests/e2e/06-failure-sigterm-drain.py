"""06-failure-sigterm-drain: a deploy stops the gateway with SIGTERM while
Telegram is delivering. Requests already sent get their answer (200 means
stored), the process exits 0, and nothing acknowledged is missing."""

import json
import signal
import socket
import subprocess
import threading
import time

import eftest
from eftest import Gateway, assert_eq, fail, psql, status_of, tg_message, tg_user


def _request(gw, upd):
    body = json.dumps(upd, ensure_ascii=False).encode()
    return (b"POST /webhook/telegram HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nX-Telegram-Bot-Api-Secret-Token: " +
            gw.secret.encode() + b"\r\nContent-Length: " + str(len(body)).encode() +
            b"\r\n\r\n" + body)


def _read_response(s, timeout=15):
    s.settimeout(timeout)
    buf = b""
    try:
        while True:
            c = s.recv(65536)
            if not c:
                break
            buf += c
            head, sep, rest = buf.partition(b"\r\n\r\n")
            if sep:
                import re
                m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if not m or len(rest) >= int(m.group(1)):
                    break
    except (socket.timeout, ConnectionResetError):
        pass
    return buf


def _received(gw):
    return gw.metric("ef_updates_received_total", platform="telegram")


def test_sigterm_waits_for_commits_in_flight():
    """Updates received and waiting on a slow commit when SIGTERM arrives are
    committed and answered 200 before the process exits 0."""
    users = [tg_user(uid=7900000000 + i) for i in range(20)]
    updates = [tg_message(1, "в полёте %d" % i, user=u) for i, u in enumerate(users)]
    with Gateway() as gw:
        eftest.assert_status(gw.post_update(tg_message(1, "разогрев",
                                                       user=tg_user(uid=7900001000))), 200)
        # Make commits slow: hold a lock on messages for a moment.
        locker = subprocess.Popen(
            [eftest._psql_bin(), "-X", "-q", "-d", gw.db, "-c",
             "BEGIN; LOCK TABLE messages IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(2.5); COMMIT;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            eftest.wait_until(lambda: eftest.psql1(
                gw.db, "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                       "WHERE c.relname = 'messages' AND l.mode = 'AccessExclusiveLock' "
                       # pg_locks is the whole cluster's: other tests' databases,
                       # cloned from one template, have a messages of the same oid.
                       "AND l.database = (SELECT oid FROM pg_database "
                       "WHERE datname = current_database()) "
                       "AND l.granted") == "1", timeout=10, what="the lock on messages")
            base = _received(gw)
            socks = [socket.create_connection(("127.0.0.1", gw.port), timeout=10)
                     for _ in updates]
            for s, upd in zip(socks, updates):
                s.sendall(_request(gw, upd))
            eftest.wait_until(lambda: _received(gw) - base >= len(updates), timeout=10,
                              what="the gateway to receive every update")
            gw.signal(signal.SIGTERM)
            answers = eftest.parallel(_read_response, socks, workers=len(socks))
            for s in socks:
                s.close()
        finally:
            locker.wait(30)
        statuses = [status_of(a) for a in answers]
        assert_eq(gw.stop(), 0, "exit code")
        assert_eq(statuses, [200] * len(updates), "answers to updates in flight at SIGTERM")
        stored = {r[0] for r in psql(gw.db, "SELECT platform_message_id FROM messages")}
        for upd in updates:
            if "%d:1" % upd["message"]["chat"]["id"] not in stored:
                fail("update in flight at SIGTERM answered 200 but not stored")


def test_sigterm_right_after_a_burst():
    """A burst of requests, SIGTERM right after the last byte is sent: every
    request gets an answer (200 = stored, 503 = Telegram retries), none is
    left hanging or cut, and the exit code is 0."""
    users = [tg_user(uid=7900005000 + i) for i in range(30)]
    updates = [tg_message(1, "залп %d" % i, user=u) for i, u in enumerate(users)]
    with Gateway() as gw:
        eftest.assert_status(gw.post_update(tg_message(1, "разогрев",
                                                       user=tg_user(uid=7900006000))), 200)
        socks = [socket.create_connection(("127.0.0.1", gw.port), timeout=10) for _ in updates]
        for s, upd in zip(socks, updates):
            s.sendall(_request(gw, upd))
        gw.signal(signal.SIGTERM)
        answers = eftest.parallel(_read_response, socks, workers=len(socks))
        for s in socks:
            s.close()
        statuses = [status_of(a) for a in answers]
        assert_eq(gw.stop(), 0, "exit code")
        missing = [i for i, st in enumerate(statuses) if st is None]
        if missing:
            fail("%d requests sent before SIGTERM got no answer: %r" % (len(missing), missing[:10]))
        bad = [st for st in statuses if st not in (200, 503)]
        if bad:
            fail("requests in flight at SIGTERM answered %r" % bad)
        stored = {r[0] for r in psql(gw.db, "SELECT platform_message_id FROM messages")}
        for upd, st in zip(updates, statuses):
            pmid = "%d:1" % upd["message"]["chat"]["id"]
            if st == 200 and pmid not in stored:
                fail("%s answered 200 during shutdown but not stored" % pmid)


def test_sigterm_while_a_body_is_arriving():
    """A request whose body is still on its way when SIGTERM arrives is
    completed and answered, not cut off."""
    user = tg_user(uid=7900002000)
    with Gateway() as gw:
        data = _request(gw, tg_message(1, "тело приходит по частям", user=user))
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
        half = len(data) - 40
        s.sendall(data[:half])
        time.sleep(0.2)
        gw.signal(signal.SIGTERM)
        time.sleep(0.3)
        try:
            s.sendall(data[half:])
        except OSError as e:
            fail("the connection was cut while its body was arriving: %r" % e)
        st = status_of(_read_response(s))
        s.close()
        gw.stop()
        if st is None:
            fail("no answer to a request in flight at SIGTERM")
        if st == 200:
            eftest.message_by_pmid(gw.db, "7900002000:1")
        elif st != 503:
            fail("answered %d" % st)


def test_sigterm_under_steady_load_exits_zero():
    users = [tg_user(uid=7900003000 + i) for i in range(8)]
    results = []
    lock = threading.Lock()
    stop = threading.Event()
    with Gateway() as gw:
        def sender(u):
            mid = 0
            while not stop.is_set():
                mid += 1
                upd = tg_message(mid, "нагрузка %d" % mid, user=u)
                try:
                    st = gw.post_update(upd, timeout=15).status
                except OSError:
                    return
                with lock:
                    results.append((u["id"], mid, st))
                if st != 200:
                    return
        threads = [threading.Thread(target=sender, args=(u,)) for u in users]
        for t in threads:
            t.start()
        time.sleep(1.5)
        t0 = time.monotonic()
        rc = gw.stop()
        stop.set()
        for t in threads:
            t.join(20)
        assert_eq(rc, 0, "exit code under load")
        if time.monotonic() - t0 > 10:
            fail("shutdown took %.1fs" % (time.monotonic() - t0))
        stored = {r[0] for r in psql(gw.db, "SELECT platform_message_id FROM messages")}
        lost = ["%d:%d" % (c, m) for c, m, st in results if st == 200 and "%d:%d" % (c, m)
                not in stored]
        if lost:
            fail("acknowledged but not stored: %r" % lost[:10])
        if sum(1 for r in results if r[2] == 200) < 8:
            fail("the load did not get going: %r" % results[:10])
