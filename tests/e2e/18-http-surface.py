"""18-http-surface: a request already decided is answered at once and its
connection closed without reading the body; one deadline per request (408);
connection caps per client address and in total; chunked bodies refused with
411, never taken for an empty body. Loopback only, every wait bounded."""

import json
import re
import socket
import time

import eftest
from eftest import Gateway, assert_eq, assert_status, fail, nothing_stored, status_of, tg_message, \
    tg_user

TRILLION = 1000000000000


def _head(path, secret, extra=""):
    h = "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" % path
    if secret is not None:
        h += "X-Telegram-Bot-Api-Secret-Token: %s\r\n" % secret
    return (h + extra + "\r\n").encode()


def _read_answer(s, limit):
    """The response head and body (by Content-Length) read within limit
    seconds, or fail."""
    s.settimeout(limit)
    buf = b""
    t0 = time.monotonic()
    while True:
        try:
            c = s.recv(65536)
        except socket.timeout:
            fail("no answer within %.1fs (got %r)" % (limit, buf[:80]))
        except ConnectionResetError:
            c = b""
        buf += c
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if sep:
            m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            if not m or len(rest) >= int(m.group(1)):
                return buf, time.monotonic() - t0
        if not c:
            fail("connection closed without an answer (got %r)" % buf[:80])


def _closed_within(s, limit):
    """True when the server closes the connection within limit seconds."""
    s.settimeout(limit)
    end = time.monotonic() + limit
    try:
        while time.monotonic() < end:
            if not s.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    return False


def _decided_at_once(gw, head, want, what):
    """Headers and one body byte: the answer within 1 s, then the server
    closes (the declared body is never read)."""
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    try:
        s.sendall(head + b"{")
        resp, _ = _read_answer(s, 1.0)
        assert_eq(status_of(resp), want, what)
        if b"connection: close" not in resp.lower():
            fail("%s: no Connection: close in %r" % (what, resp[:200]))
        try:
            s.sendall(b"x")  # trickling on: the server does not wait for it
        except OSError:
            pass
        if not _closed_within(s, 1.0):
            fail("%s: connection still open 1 s after the answer" % what)
    finally:
        s.close()


def test_decided_requests_answered_without_reading_the_body():
    with Gateway() as gw:
        big = "Content-Length: %d\r\n" % TRILLION
        _decided_at_once(gw, _head("/webhook/telegram", "wrong-secret", big), 401,
                         "wrong secret, 1e12 declared")
        _decided_at_once(gw, _head("/webhook/telegram", None, big), 401, "no secret, 1e12")
        _decided_at_once(gw, _head("/webhook/telegram", gw.secret, big), 413,
                         "right secret, 1e12 declared")
        _decided_at_once(gw, _head("/no/such/path", gw.secret, big), 404, "unknown path")
        _decided_at_once(gw, _head("/healthz", None, big).replace(b"POST", b"PUT", 1), 405,
                         "PUT /healthz with a body")
        # 200 MB declared with a wrong secret: 401 before any of it is sent.
        _decided_at_once(gw, _head("/webhook/telegram", "nope", "Content-Length: 200000000\r\n"),
                         401, "200 MB, wrong secret")
        nothing_stored(gw.db)
        gw.assert_alive("decided requests")
        upd = tg_message(1, "после отказов", user=tg_user(uid=6918000001))
        assert_status(gw.post_update(upd), 200, "a good update afterwards")


def _slow_headers_closed(gw, deadline):
    """Headers trickled a byte every 200 ms: the connection is closed at the
    deadline (counted from the accept), not kept alive by each byte."""
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    s.settimeout(0.2)
    t0 = time.monotonic()
    hdr = b"POST /webhook/telegram HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    closed = None
    try:
        for i in range(len(hdr)):
            try:
                s.sendall(hdr[i:i + 1])
                if not s.recv(4096):
                    closed = time.monotonic() - t0
            except socket.timeout:
                pass
            except OSError:
                closed = time.monotonic() - t0
            if closed is not None or time.monotonic() - t0 > deadline + 3:
                break
    finally:
        s.close()
    if closed is None or closed > deadline + 1.5:
        fail("slow headers: connection %s" % ("open after %.1fs" % (time.monotonic() - t0)
                                               if closed is None else "closed after %.1fs" % closed))


def test_request_deadline_gives_408():
    with Gateway(env={"EF_REQUEST_DEADLINE_MS": "1500"}) as gw:
        upd = json.dumps(tg_message(1, "медленно", user=tg_user(uid=6918000002)),
                         ensure_ascii=False).encode()
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
        try:
            t0 = time.monotonic()
            s.sendall(_head("/webhook/telegram", gw.secret, "Content-Length: %d\r\n" % len(upd)))
            # A byte every 200 ms: each read would restart a per-read timeout.
            s.settimeout(0.2)
            resp = b""
            for i in range(len(upd) - 1):
                try:
                    s.sendall(upd[i:i + 1])
                except OSError:
                    break
                try:
                    resp += s.recv(65536)
                except socket.timeout:
                    continue
                except ConnectionResetError:
                    break
                if b"\r\n\r\n" in resp or time.monotonic() - t0 > 5:
                    break
            if b"\r\n\r\n" not in resp:
                more, _ = _read_answer(s, 2.0)
                resp += more
            took = time.monotonic() - t0
            assert_eq(status_of(resp), 408, "a body still trickling at its deadline")
            if not 1.3 <= took <= 3.0:
                fail("408 after %.2fs, deadline 1.5 s" % took)
            if not _closed_within(s, 1.0):
                fail("connection still open after the 408")
        finally:
            s.close()
        _slow_headers_closed(gw, 1.5)
        nothing_stored(gw.db)
        # A prompt request on a fresh connection is unaffected.
        assert_status(gw.post_update(tg_message(2, "вовремя", user=tg_user(uid=6918000002))),
                      200, "a prompt update")


def _healthz_from(port, src_ip, limit=1.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(limit)
        s.bind((src_ip, 0))
        t0 = time.monotonic()
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        resp, _ = _read_answer(s, limit)
        took = time.monotonic() - t0
        if took > limit:
            fail("/healthz took %.2fs" % took)
        return status_of(resp)
    finally:
        s.close()


def _open_idle(port, n, src_ip="127.0.0.1", trickle=False):
    socks = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        s.bind((src_ip, 0))
        s.connect(("127.0.0.1", port))
        if trickle and i % 2:
            s.sendall(b"POST /webhook/telegram HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        socks.append(s)
    return socks


def _closed_count(socks, limit=1.0):
    end = time.monotonic() + limit
    closed = set()
    while time.monotonic() < end and len(closed) < len(socks):
        for i, s in enumerate(socks):
            if i in closed:
                continue
            s.settimeout(0.01)
            try:
                if not s.recv(1):
                    closed.add(i)
            except socket.timeout:
                pass
            except OSError:
                closed.add(i)
    return len(closed)


def test_per_address_cap_keeps_healthz_answering():
    cap = 20
    with Gateway(env={"EF_MAX_CONNECTIONS_PER_IP": str(cap)}) as gw:
        socks = _open_idle(gw.port, cap + 5, trickle=True)
        try:
            time.sleep(0.3)
            assert_eq(_healthz_from(gw.port, "127.0.0.2"), 200, "/healthz from another address")
            # (The harness may hold a connection of its own from 127.0.0.1.)
            n = _closed_count(socks)
            if not 5 <= n <= 6:
                fail("%d of %d connections closed with a per-address cap of %d" %
                     (n, len(socks), cap))
        finally:
            for s in socks:
                s.close()
        time.sleep(0.3)
        assert_eq(_healthz_from(gw.port, "127.0.0.1"), 200, "/healthz after they went away")


def test_total_cap_closes_the_oldest_idle():
    with Gateway(env={"EF_MAX_CONNECTIONS": "10"}) as gw:
        socks = _open_idle(gw.port, 10, src_ip="127.0.0.3")
        try:
            time.sleep(0.3)
            assert_eq(_healthz_from(gw.port, "127.0.0.2"), 200, "/healthz at the total cap")
            # The oldest idle connection made room.
            if _closed_count(socks[:1]) != 1:
                fail("the oldest idle connection was not closed")
            assert_eq(_closed_count(socks[1:], 0.3), 0, "the newer idle connections stay")
        finally:
            for s in socks:
                s.close()


def test_chunked_body_refused_411_content_length_accepted():
    with Gateway() as gw:
        upd = json.dumps(tg_message(1, "по кускам", user=tg_user(uid=6918000003)),
                         ensure_ascii=False).encode()
        body = b""
        for i in range(0, len(upd), 40):
            part = upd[i:i + 40]
            body += b"%x\r\n%s\r\n" % (len(part), part)
        body += b"0\r\n\r\n"
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
        try:
            s.sendall(_head("/webhook/telegram", gw.secret, "Transfer-Encoding: chunked\r\n") +
                      body)
            resp, _ = _read_answer(s, 1.0)
            assert_eq(status_of(resp), 411, "a chunked body")
            if b"Content-Length" not in resp:
                fail("411 without a clear message: %r" % resp[-200:])
            if not _closed_within(s, 1.0):
                fail("connection still open after the 411")
        finally:
            s.close()
        nothing_stored(gw.db)
        # The same update with a Content-Length is stored.
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
        try:
            s.sendall(_head("/webhook/telegram", gw.secret, "Content-Length: %d\r\n" % len(upd)) +
                      upd)
            resp, _ = _read_answer(s, 5.0)
            assert_eq(status_of(resp), 200, "the same body with Content-Length")
        finally:
            s.close()
        eftest.message_by_pmid(gw.db, "6918000003:1")
