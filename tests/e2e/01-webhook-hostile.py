"""01-webhook-hostile: bad input gets its HTTP error, stores nothing, and never
hurts the gateway: after each barrage a good update is still stored."""

import json
import socket
import threading
import time

import eftest
from eftest import (Gateway, assert_eq, assert_status, count, fail, nothing_stored, raw_http,
                    status_of, tg_message, tg_user)

PLAT = {"platform": "telegram"}


def _rejected(gw, reason):
    return gw.metric("ef_updates_rejected_total", platform="telegram", reason=reason)


def _still_serves(gw, mid, uid=6900000001):
    """A good update after the barrage is stored (and answered 200)."""
    gw.assert_alive("the bad input")
    upd = tg_message(mid, "всё ещё работает ✓", user=tg_user(uid=uid))
    assert_status(gw.post_update(upd), 200, "a good update after bad input")
    eftest.message_by_pmid(gw.db, "%d:%d" % (uid, mid))
    gw.wait_healthy(5)


def test_secret_token_checked():
    good = tg_message(1, "с неправильным секретом", user=tg_user(uid=6900000002))
    with Gateway() as gw:
        # (Whitespace around a header value is not part of it in HTTP, so
        # " secret" is not a wrong secret.)
        bad = [None, "", "wrong-secret", gw.secret[:-1], gw.secret + "x", gw.secret.upper(),
               gw.secret + "\t" + gw.secret]
        for s in bad:
            if s is None:
                r = gw.post_update(good, secret=None)
            else:
                r = gw.post_update(good, secret=s)
            assert_status(r, 401, "secret %r" % (s,))
        nothing_stored(gw.db)
        assert_eq(_rejected(gw, "bad_secret"), len(bad), "rejected{reason=bad_secret}")
        # Header names are case-insensitive in HTTP.
        r = gw.post("/webhook/telegram", good,
                    {"x-telegram-bot-api-secret-token": gw.secret})
        assert_status(r, 200, "lower-case header name")
        _still_serves(gw, 2)


def test_invalid_json_400():
    bodies = [b"", b"{", b"not json at all", b'{"update_id": 1,}', b'{"update_id": 1} trailing',
              b'{"update_id": 1, "message": {"text": "unterminated}}', b"[1, 2",
              b'{"update_id": 01}', b"{'update_id': 1}", b'{update_id: 1}',
              b'{"update_id": 1, "a": NaN}', b'{"update_id": 1, "a": Infinity}',
              b'{"update_id": 1, "a": tru}', b'{"update_id": 1, "a": "\\x41"}',
              b'{"update_id": 1, "a": 1.}', b'{"update_id": 1, "a": .5}',
              b'{"update_id": 1, "a": +1}', b'{"update_id": 1, "a": 0x10}',
              b'{"update_id": 1 /* comment */}', b'{"update_id": 1, "a": "raw\ttab"}',
              b'{"update_id": 1, "a": "raw\nnewline"}']
    with Gateway() as gw:
        wrong = []
        for b in bodies:
            st = gw.post_update(b).status
            if st != 400:
                wrong.append((b, st))
        if wrong:
            fail("invalid JSON not answered 400: %r" % wrong)
        nothing_stored(gw.db)
        assert_eq(_rejected(gw, "bad_json"), len(bodies), "rejected{reason=bad_json}")
        _still_serves(gw, 1)


def test_invalid_utf8_400():
    def body(text_bytes):
        return (b'{"update_id": 77, "message": {"message_id": 1, "date": 1700000000, '
                b'"chat": {"id": 6900000003, "type": "private"}, '
                b'"from": {"id": 6900000003, "is_bot": false, "first_name": "X"}, '
                b'"text": "' + text_bytes + b'"}}')
    bad = [b"\xff", b"abc\xfedef", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80",
           b"\xf4\x90\x80\x80", b"\xd0", b"\xd0\x41", "Привет".encode("cp1251")]
    with Gateway() as gw:
        for b in bad:
            assert_status(gw.post_update(body(b)), 400, "text bytes %r" % b)
        nothing_stored(gw.db)
        assert_eq(_rejected(gw, "bad_utf8"), len(bad), "rejected{reason=bad_utf8}")
        # The same body with valid UTF-8 is stored.
        assert_status(gw.post_update(body("Привет".encode())), 200)
        assert_eq(eftest.message_by_pmid(gw.db, "6900000003:1")["content"], "Привет")


def test_json_escapes_that_are_not_text_never_5xx():
    """\\u0000 and lone surrogates are valid JSON but not storable text: the
    gateway may refuse them (400) or store a sanitized text (200), but must
    never fail with 5xx, crash, or store invalid UTF-8."""
    uid = 6900000004
    with Gateway() as gw:
        for i, esc in enumerate([r"a\u0000b", r"\ud800", r"x\udc00y", r"\udbff\u0041",
                                 r"\ud83d\ude00 ok"]):
            raw = ('{"update_id": %d, "message": {"message_id": %d, "date": 1700000000, '
                   '"chat": {"id": %d, "type": "private"}, "from": {"id": %d, "is_bot": false, '
                   '"first_name": "Y"}, "text": "%s"}}' % (eftest.next_update_id(), i + 1, uid, uid,
                                                          esc)).encode()
            r = gw.post_update(raw)
            assert_status(r, (200, 400), "escape %s" % esc)
        for row in eftest.message_rows(gw.db):
            if "\x00" in row["content"]:
                fail("NUL stored")
            row["content"].encode("utf-8")  # strict: raises on surrogates
        # The valid surrogate pair is an emoji and must be stored as one.
        assert_eq(eftest.message_by_pmid(gw.db, "%d:5" % uid)["content"], "😀 ok")
        _still_serves(gw, 100)


def _big_update(size):
    text = "я" * (size // 2)
    return json.dumps(tg_message(1, text, user=tg_user(uid=6900000005)),
                      ensure_ascii=False).encode()


def _post_declared(gw, body):
    """POSTs body with its Content-Length over a raw socket. The gateway
    answers a declared length beyond its limit at once and closes without
    reading the body, so the send may break: the answer is what counts."""
    head = ("POST /webhook/telegram HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "X-Telegram-Bot-Api-Secret-Token: %s\r\nContent-Length: %d\r\n\r\n"
            % (gw.secret, len(body))).encode()
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    resp = b""
    try:
        try:
            s.sendall(head + body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while b"\r\n\r\n" not in resp:
                c = s.recv(65536)
                if not c:
                    break
                resp += c
        except (ConnectionResetError, socket.timeout):
            pass
    finally:
        s.close()
    return status_of(resp)


def test_body_too_large_413():
    with Gateway() as gw:
        body = _big_update(2 * 1024 * 1024)
        assert len(body) > 2 * 1024 * 1024
        # (The contract changed with 18-http-surface: the 413 comes before the
        # body is read, and the connection is closed.)
        assert_eq(_post_declared(gw, body), 413, "2 MiB body")
        # Declared length within limits but more bytes than that: never stored beyond.
        nothing_stored(gw.db)
        assert_eq(_rejected(gw, "too_large"), 1, "rejected{reason=too_large}")
        # Just under 1 MiB of valid update is fine.
        ok = _big_update(1024 * 1024 - 2048)
        assert len(ok) < 1024 * 1024
        assert_status(gw.post_update(ok), 200, "just under 1 MiB")
        assert_eq(len(eftest.content_bytes(gw.db, "6900000005:1")),
                  len(json.loads(ok)["message"]["text"].encode()), "stored size")
        _still_serves(gw, 2)


def test_max_body_is_configurable():
    with Gateway(env={"EF_MAX_BODY": "4096"}) as gw:
        assert_eq(_post_declared(gw, _big_update(5000)), 413, "5000 bytes > EF_MAX_BODY")
        assert_status(gw.post_update(_big_update(3000)), 200, "3000 bytes < EF_MAX_BODY")


def test_chunked_oversized_body_refused():
    """A chunked body (no Content-Length) larger than the limit is refused with
    a 4xx without buffering it all, and the gateway keeps serving."""
    with Gateway() as gw:
        head = ("POST /webhook/telegram HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "X-Telegram-Bot-Api-Secret-Token: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
                % gw.secret).encode()
        chunk = b'{"update_id": 1, "x": "' + b"a" * 65536
        data = head
        for _ in range(40):  # 2.5 MiB
            data += b"%x\r\n%s\r\n" % (len(chunk), chunk)
        data += b"0\r\n\r\n"
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
        resp = b""
        try:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may stop reading once it has refused
            try:
                while b"\r\n\r\n" not in resp:
                    c = s.recv(65536)
                    if not c:
                        break
                    resp += c
            except (ConnectionResetError, socket.timeout):
                pass
        finally:
            s.close()
        st = status_of(resp)
        if st is not None and not 400 <= st < 500:
            fail("chunked 2.5 MiB body answered %s" % st)
        nothing_stored(gw.db)
        _still_serves(gw, 3)


def test_nesting_too_deep_400():
    with Gateway() as gw:
        deep_arrays = b'{"update_id": 5, "extra": ' + b"[" * 100 + b"]" * 100 + b"}"
        deep_objects = b'{"update_id": 6, "message": ' + b'{"a":' * 100 + b"1" + b"}" * 100 + b"}"
        # 200 000 levels: a recursive parser without a limit would blow its stack.
        very_deep = b"[" * 200000 + b"]" * 200000
        unclosed = b'{"update_id": 7, "x": ' + b"[" * 100000
        for b in (deep_arrays, deep_objects, very_deep, unclosed):
            r = gw.post_update(b)
            assert_status(r, 400, "nesting, %d bytes" % len(b))
        assert_eq(_rejected(gw, "too_deep") >= 3, True, "rejected{reason=too_deep} counted")
        nothing_stored(gw.db)
        _still_serves(gw, 4)


def test_not_an_update_400():
    user = tg_user(uid=6900000006)
    good_msg = tg_message(1, "текст", user=user)["message"]
    cases = [
        ("array", [1, 2, 3]),
        ("string", "update"),
        ("number", 12345),
        ("no update_id", {"message": good_msg}),
        ("update_id string", {"update_id": "12", "message": good_msg}),
        ("update_id float", {"update_id": 1.5, "message": good_msg}),
        ("update_id bool", {"update_id": True, "message": good_msg}),
        ("update_id null", {"update_id": None, "message": good_msg}),
        ("message not object", {"update_id": 3, "message": "hello"}),
        ("message_id string", {"update_id": 4, "message": dict(good_msg, message_id="x")}),
        ("chat missing", {"update_id": 5, "message": {k: v for k, v in good_msg.items()
                                                      if k != "chat"}}),
        ("chat id string", {"update_id": 6, "message": dict(good_msg, chat={"id": "abc",
                                                                           "type": "private"})}),
        ("text not string", {"update_id": 7, "message": dict(good_msg, text=["a"])}),
    ]
    overflow = [
        ("update_id > int64", b'{"update_id": 9223372036854775808}'),
        ("update_id huge", b'{"update_id": 123456789012345678901234567890}'),
        ("chat.id > int64", ('{"update_id": 8, "message": {"message_id": 1, "date": 1700000000, '
                             '"chat": {"id": 99999999999999999999, "type": "private"}, '
                             '"from": {"id": 1, "is_bot": false, "first_name": "Z"}, '
                             '"text": "x"}}').encode()),
        ("from.id < int64", ('{"update_id": 9, "message": {"message_id": 1, "date": 1700000000, '
                             '"chat": {"id": 5, "type": "private"}, '
                             '"from": {"id": -9223372036854775809, "is_bot": false, '
                             '"first_name": "Z"}, "text": "x"}}').encode()),
    ]
    with Gateway() as gw:
        wrong = []
        for what, body in cases:
            raw = json.dumps(body, ensure_ascii=False).encode()
            st = gw.post_update(raw).status
            if st != 400:
                wrong.append((what, st))
        for what, raw in overflow:
            st = gw.post_update(raw).status
            if st != 400:
                wrong.append((what, st))
        if wrong:
            fail("not answered 400: %r" % wrong)
        # JSON null is no Update either (counted as bad JSON or bad payload).
        assert_status(gw.post_update(b"null"), 400, "null")
        nothing_stored(gw.db)
        assert_eq(_rejected(gw, "bad_payload"), len(cases) + len(overflow),
                  "rejected{reason=bad_payload}")
        # The largest int64 itself is a fine update_id.
        ok = dict(tg_message(2, "ok", user=user), update_id=9223372036854775807)
        assert_status(gw.post_update(ok), 200, "update_id = INT64_MAX")
        _still_serves(gw, 5)


def test_methods_and_paths():
    with Gateway() as gw:
        assert_status(gw.get("/webhook/telegram"), 405, "GET on the webhook")
        upd = tg_message(1, "не туда", user=tg_user(uid=6900000007))
        h = {"X-Telegram-Bot-Api-Secret-Token": gw.secret}
        for path in ("/no-such-path", "/webhook/telegramm", "/webhook/telegram/extra",
                     "/webhook/", "/webhook/viber"):
            assert_status(gw.post(path, upd, h), 404, "POST %s" % path)
        assert_status(gw.get("/definitely/not/here"), 404, "GET unknown path")
        nothing_stored(gw.db)
        _still_serves(gw, 6)


def test_garbage_requests_do_not_wedge():
    with Gateway() as gw:
        junk = [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS hello
                b"GET / HTTP/9.9\r\n\r\n",
                b"POST /webhook/telegram HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                b"POST /webhook/telegram HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
                b"\r\n\r\n\r\n",
                b"A" * 70000 + b"\r\n\r\n",
                b"POST /webhook/telegram HTTP/1.1\r\nX: " + b"b" * 100000 + b"\r\n\r\n"]
        for j in junk + [b""]:  # b"": connect and close (a TCP health check)
            try:
                resp = raw_http(gw.port, j, timeout=5, shut_write=True)
            except (ConnectionResetError, BrokenPipeError):
                continue
            st = status_of(resp)
            if st is not None and st >= 500:
                fail("junk %r answered %d" % (j[:30], st))
            time.sleep(0.1)
            gw.assert_alive("junk %r" % j[:30])
        nothing_stored(gw.db)
        _still_serves(gw, 7)


def test_slow_and_partial_requests_do_not_block_others():
    with Gateway() as gw:
        stalled = []
        head = ("POST /webhook/telegram HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "X-Telegram-Bot-Api-Secret-Token: %s\r\n" % gw.secret).encode()
        try:
            for i in range(40):
                s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
                if i % 3 == 0:
                    s.sendall(b"POST /webhook/tele")  # half a request line
                elif i % 3 == 1:
                    s.sendall(head)  # headers never finished
                else:
                    s.sendall(head + b"Content-Length: 5000\r\n\r\n" + b'{"update_id": 1')
                stalled.append(s)
            gw.assert_alive("40 stalled connections")
            # Meanwhile a normal update goes through promptly.
            t0 = time.monotonic()
            _still_serves(gw, 8)
            if time.monotonic() - t0 > 5:
                fail("a good update took %.1fs while 40 connections stalled" %
                     (time.monotonic() - t0))
            # A body dribbled a few bytes at a time still makes a valid request.
            upd = json.dumps(tg_message(9, "медленно, но верно", user=tg_user(uid=6900000001)),
                             ensure_ascii=False).encode()
            s = socket.create_connection(("127.0.0.1", gw.port), timeout=15)
            s.sendall(head + b"Content-Length: %d\r\n\r\n" % len(upd))
            for i in range(0, len(upd), 16):
                s.sendall(upd[i:i + 16])
                time.sleep(0.02)
            resp = b""
            while b"\r\n\r\n" not in resp:
                c = s.recv(4096)
                if not c:
                    break
                resp += c
            s.close()
            assert_eq(status_of(resp), 200, "dribbled body")
            eftest.message_by_pmid(gw.db, "6900000001:9")
        finally:
            for s in stalled:
                s.close()
        time.sleep(0.2)
        gw.assert_alive("the stalled clients went away")
        _still_serves(gw, 10)


def test_flood_of_bad_requests_in_parallel():
    """Many clients sending bad input at once: every one gets a 4xx, the good
    ones in between are all stored."""
    with Gateway() as gw:
        uid = 6900000008
        good = [tg_message(i, "хорошее %d" % i, user=tg_user(uid=uid)) for i in range(1, 21)]
        bad = [b"{", b'{"update_id": "x"}', b"\xff\xfe", b"[" * 1000] * 10
        results = {}
        lock = threading.Lock()

        def send_bad(b):
            st = gw.post_update(b).status
            with lock:
                results.setdefault("bad", []).append(st)

        def send_good():
            for u in good:  # one chat: in order
                st = gw.post_update(u).status
                with lock:
                    results.setdefault("good", []).append(st)
        t = threading.Thread(target=send_good)
        t.start()
        eftest.parallel(send_bad, bad, workers=8)
        t.join(60)
        if any(not 400 <= s < 500 for s in results["bad"]):
            fail("bad requests answered %r" % sorted(set(results["bad"])))
        assert_eq(results["good"], [200] * len(good), "good updates")
        assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), len(good), "rows")
