"""30-chaos-under-load: the stack broken on purpose while it carries traffic
(issue 11, "tests that break things"), as the acceptance check does.

- Webhook updates from 30 chats (several each, in order per chat, each
  repeated until answered 2xx, as Telegram redelivers) while the gateway is
  killed with SIGKILL and started again, PostgreSQL is crashed (immediate
  stop) and started again, and Redis is killed with SIGKILL and started
  again. Afterwards every update is stored exactly once, every reply of the
  demo bot was delivered to the fake Bot API once, in the order of the
  messages of its chat, and the only 5xx answers were 503 with Retry-After
  while PostgreSQL was down (or reconnecting).
  Telegram's sendMessage has no idempotency key: a reply whose request had
  reached the Bot API when the gateway was killed, before its outcome was
  recorded, is sent again by the next process. Such a repeat is accepted
  only for a reply first delivered in the seconds before the SIGKILL, at
  most one per chat, right after itself.
- The Bot API misbehaving: one chat's sends answered slowly (within the send
  timeout), one chat's first send hung past the gateway's send timeout (30 s,
  CURLOPT_TIMEOUT in dispatch.c; no configuration key) and dropped
  unanswered, one chat's first sends answered 502/500/503, one chat's first
  send 429 with retry_after 30. The other chats' replies go out within a
  few seconds, the 429 chat's replies not before its retry_after, nothing is
  sent twice, and the gateway's resident memory stays bounded.
"""

import os
import signal
import sys
import threading
import time

import eftest
from eftest import (PrivatePostgres, PrivateRedis, assert_eq, fail, post_ok, psql, psql1,
                    tg_message, tg_user)
from reply_helpers import JITTER, LimitedTelegram, demo_gateway, replies, sends

CHATS = 30
MIN_PER_CHAT = 6  # each chat sends at least this many messages ...
MAX_PER_CHAT = 14  # ... and goes on (up to this many) until the breaking is over
PACE = 2.0  # seconds between two messages of a chat once the first was answered 2xx
UPDATE_DEADLINE = 120.0  # an update not answered 2xx within this long is lost
GATE = 2 * CHATS  # updates acknowledged between two breakages
PG_DOWN_S = 2.0
PG_GRACE_S = 20.0  # 503s accepted this long after PostgreSQL is back (reconnects)
KILL_REPEAT_WINDOW_S = 2.0  # a repeated reply was first delivered this long before a SIGKILL
# ... or this long after it: a request the killed process had written is
# still in the socket, and on a busy machine the fake Bot API's handler
# reads it after the kill. The next process sends nothing before the old
# sending lease ran out (LEASE_MS, 5 s in dispatch.c), so a reply first
# delivered this soon after a SIGKILL was the killed process's.
KILL_LATE_S = 1.0


def _order_no(chat_idx, k):
    return "A-%d" % (100000 + chat_idx * 100 + k)


def _ask(chat_idx, k):
    """Message k of a chat, and what the demo bot's reply to it contains
    whatever the conversation's state (lost with Redis) says."""
    num = _order_no(chat_idx, k)
    return "Мой заказ %s" % num, "Заказ %s" % num


def _rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _quiet_resets(fake):
    """The fake's keep-alive connections reset by a SIGKILLed gateway are no
    error worth a traceback on stderr; anything else still is one."""
    report = fake.server.handle_error

    def handle_error(request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            report(request, client_address)
    fake.server.handle_error = handle_error
    return fake


def _kill_redis(r):
    """SIGKILL of a PrivateRedis (its stop() is a SIGTERM)."""
    os.kill(r.proc.pid, signal.SIGKILL)
    r.proc.wait(10)
    r.proc = None


class _Load:
    """One thread per chat: messages in order, each posted until answered
    2xx; every answer recorded as (time, status, retry-after, chat, k)."""

    def __init__(self, gw, users):
        self.gw = gw
        self.users = users
        self.lock = threading.Lock()
        self.answers = []
        self.acked = {i: [] for i in range(len(users))}  # chat index -> acked updates
        self.lost = []
        self.breaking_over = threading.Event()
        self.threads = [threading.Thread(target=self._chat, args=(i,), daemon=True)
                        for i in range(len(users))]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self, timeout):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        if any(t.is_alive() for t in self.threads):
            fail("the senders did not finish within %.0fs" % timeout)

    def n_acked(self):
        with self.lock:
            return sum(len(v) for v in self.acked.values())

    def _post(self, upd):
        try:
            r = self.gw.post_update(upd, timeout=30)
            return r.status, r.headers.get("retry-after"), r.body[:200]
        except OSError:  # the gateway is down or died under the request
            return 0, None, b""

    def _chat(self, i):
        u = self.users[i]
        k = 1
        while k <= MAX_PER_CHAT and (k <= MIN_PER_CHAT or not self.breaking_over.is_set()):
            text, _ = _ask(i, k)
            upd = tg_message(k, text, user=u)
            deadline = time.monotonic() + UPDATE_DEADLINE
            while True:
                st, ra, body = self._post(upd)
                with self.lock:
                    self.answers.append((time.monotonic(), st, ra, i, k, body))
                if 200 <= st < 300:
                    with self.lock:
                        self.acked[i].append(k)
                    break
                if time.monotonic() > deadline:
                    with self.lock:
                        self.lost.append((i, k))
                    return
                time.sleep(0.25)
            k += 1
            time.sleep(PACE)


def _wait_progress(load, more, what, timeout=60):
    want = load.n_acked() + more
    eftest.wait_until(lambda: load.n_acked() >= want, timeout=timeout, interval=0.05,
                      what="%d more updates acknowledged %s" % (more, what))


def _check_answers(load, pg_windows):
    """Every 5xx is a 503 with Retry-After, answered while PostgreSQL was
    down or reconnecting; no 4xx at all (the traffic is well-formed)."""
    for t, st, ra, i, k, body in load.answers:
        if st == 0 or 200 <= st < 300:
            continue
        where = "chat %d message %d: HTTP %d %r" % (i, k, st, body)
        if st != 503:
            fail("%s to a well-formed update (only 503 is allowed)" % where)
        if not ra:
            fail("%s without Retry-After" % where)
        if not any(a <= t <= b + PG_GRACE_S for a, b in pg_windows):
            fail("%s %.1fs outside the PostgreSQL outage (%r)" % (
                where, t, [(round(a, 1), round(b, 1)) for a, b in pg_windows]))


def _check_store(db, load, users):
    rows = psql(db, "SELECT platform_message_id, count(*) FROM messages WHERE "
                    "direction = 'inbound' AND platform = 'telegram' GROUP BY 1")
    dup = [r for r in rows if r[1] != "1"]
    if dup:
        fail("updates stored more than once: %r" % dup[:10])
    stored = {r[0] for r in rows}
    acked = {"%d:%d" % (users[i]["id"], k) for i, ks in load.acked.items() for k in ks}
    missing = sorted(acked - stored)
    if missing:
        fail("acknowledged updates not stored: %r" % missing[:10])
    extra = sorted(stored - acked)
    if extra:
        fail("stored updates no sender had acknowledged: %r" % extra[:10])
    for i, ks in load.acked.items():
        assert_eq(ks, list(range(1, len(ks) + 1)), "chat %d acknowledged in order" % i)
    return len(stored)


def _check_replies(fake, db, load, users, kill_times):
    """Per chat: the replies stored and sent, one per message, in order;
    each delivered once, but for a repeat of a reply the SIGKILL
    interrupted (first delivered just before it, or read by the fake just
    after it, and repeated right after)."""
    rows = replies(db)
    not_sent = [(r["chat_id"], r["delivery_status"], r["failed_reason"]) for r in rows
                if r["delivery_status"] != "sent"]
    if not_sent:
        fail("replies not sent: %r" % not_sent[:10])
    repeats, oldest = 0, 0.0
    for i, u in enumerate(users):
        ks = load.acked[i]
        want = [_ask(i, k)[1] for k in ks]
        stored = [r["content"] for r in rows if r["chat_id"] == str(u["id"])]
        if len(stored) != len(want) or any(w not in s for w, s in zip(want, stored)):
            fail("chat %d: stored replies %r, expected one per message containing %r" %
                 (i, [s[:20] for s in stored], want))
        got = sends(fake, u["id"])
        collapsed = []
        for r in got:
            text = r.params.get("text")
            if collapsed and collapsed[-1][0] == text:
                first = collapsed[-1][1]
                ages = [kt - first.time for kt in kill_times
                        if -KILL_LATE_S <= kt - first.time <= KILL_REPEAT_WINDOW_S]
                if not ages:
                    fail("chat %d: reply %r delivered twice (%.2fs and %.2fs; SIGKILLs at %r)" %
                         (i, text[:30], first.time, r.time, kill_times))
                repeats += 1
                oldest = max(oldest, min(ages))
                continue
            collapsed.append((text, r))
        texts = [t for t, _ in collapsed]
        if len(texts) != len(want) or any(w not in t for w, t in zip(want, texts)):
            fail("chat %d: delivered %r, expected in order replies containing %r" %
                 (i, [t[:20] for t in texts], want))
    if repeats > len(users):
        fail("%d replies repeated after the SIGKILL: more than one per chat" % repeats)
    return len(rows), repeats, oldest


def test_kill_gateway_restart_postgres_kill_redis_under_load():
    fake = _quiet_resets(eftest.closed_at_end(LimitedTelegram()))
    pg = PrivatePostgres()
    pg.migrate()
    rd = PrivateRedis()
    users = [tg_user(uid=8300000000 + i, first="Хаос%d" % i, last=None, username=None,
                     lang="ru") for i in range(CHATS)]
    kill_times, pg_windows = [], []
    with demo_gateway(fake, db=pg.url, redis_url=rd.url) as gw:
        load = _Load(gw, users)
        t0 = time.monotonic()
        load.start()
        try:
            _wait_progress(load, GATE, "before the gateway is killed")
            kill_times.append(time.monotonic())
            gw.kill()
            time.sleep(0.5)
            gw.start()
            _wait_progress(load, GATE, "after the gateway's restart")
            down = time.monotonic()
            pg.stop(mode="immediate")
            time.sleep(PG_DOWN_S)
            pg.start()
            pg_windows.append((down, time.monotonic()))
            _wait_progress(load, GATE, "after PostgreSQL's restart")
            _kill_redis(rd)
            time.sleep(1.0)
            rd.start()
            _wait_progress(load, GATE, "after Redis' restart")
        finally:
            load.breaking_over.set()
        load.join(UPDATE_DEADLINE + 30)
        if load.lost:
            fail("updates never answered 2xx (lost): %r" % load.lost[:10])
        _check_answers(load, pg_windows)
        n_in = _check_store(pg.url, load, users)
        eftest.wait_until(lambda: psql1(pg.url, "SELECT count(*) FROM messages WHERE "
                                                "direction = 'outbound' AND delivery_status "
                                                "NOT IN ('sent', 'failed')") == "0",
                          timeout=90, interval=0.5, what="every reply sent")
        time.sleep(2.0)  # nothing more may come
        n_out, repeats, oldest = _check_replies(fake, pg.url, load, users, kill_times)
        gw.assert_alive("the breaking")
        print("%d updates stored once, %d replies in order (%d repeated across the SIGKILL, "
              "first sent up to %.2fs before it), %.1fs; answers: %d, 503s: %d, refused "
              "connections: %d" %
              (n_in, n_out, repeats, oldest, time.monotonic() - t0, len(load.answers),
               sum(1 for a in load.answers if a[1] == 503),
               sum(1 for a in load.answers if a[1] == 0)))


# ---- the platform API misbehaving ---------------------------------------------------

SEND_TIMEOUT_S = 30.0  # dispatch.c: CURLOPT_TIMEOUT (not configurable)
SLOW_S = 4.0  # answers after this long: slow, within the send timeout
RETRY_AFTER_S = 30
PROMPT_S = 8.0  # a healthy chat's reply is delivered within this long of its update's 200
RSS_GROWTH_MAX_KB = 64 * 1024  # resident memory may grow by this much during the run


class _MisbehavingTelegram(LimitedTelegram):
    """slow[chat] = seconds: every send to chat answered that much later.
    hang[chat] = n: the next n sends to chat hang past the gateway's send
    timeout, then the connection is dropped unanswered (nothing delivered).
    errors[chat] = [status, ...]: the next sends to chat answer these."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.slow = {}
        self.hang = {}
        self.errors = {}

    def _m_sendmessage(self, params, bot):
        chat_key = str(params.get("chat_id"))
        with self.cond:
            delay = self.slow.get(chat_key, 0.0)
            hang = self.hang.get(chat_key, 0) > 0
            if hang:
                self.hang[chat_key] -= 1
            errs = self.errors.get(chat_key)
            err = errs.pop(0) if errs else None
        if hang:
            time.sleep(SEND_TIMEOUT_S + 3.0)
            return 0, {}
        if err is not None:
            return self._error(err, {500: "Internal Server Error", 502: "Bad Gateway",
                                     503: "Service Unavailable"}.get(err, "Error"))
        if delay:
            time.sleep(delay)
        return super()._m_sendmessage(params, bot)


def test_platform_slow_hung_5xx_and_long_429_other_chats_unaffected():
    fake = eftest.closed_at_end(_MisbehavingTelegram())
    users = [tg_user(uid=8300100000 + i, first="Клиент%d" % i, last=None, username=None,
                     lang="ru") for i in range(24)]
    slow, hung, erring, limited = users[:4]
    healthy = users[4:]
    fake.slow[str(slow["id"])] = SLOW_S
    fake.hang[str(hung["id"])] = 1
    fake.errors[str(erring["id"])] = [502, 500, 503]
    fake.force_429(limited["id"], RETRY_AFTER_S)
    rss = []
    with demo_gateway(fake) as gw:
        # Warm-up: a reply out and back, so the baseline holds what any run does.
        warm = tg_user(uid=8300199999, first="Разогрев", last=None, username=None, lang="ru")
        post_ok(gw, tg_message(1, _ask(99, 1)[0], user=warm))
        fake.wait_for(lambda: sends(fake, warm["id"]), timeout=20, what="the warm-up reply")
        base = _rss_kb(gw.proc.pid)
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                rss.append(_rss_kb(gw.proc.pid))
                stop.wait(0.25)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            t0 = time.monotonic()
            acked_at = {}
            for k in (1, 2):  # the misbehaving chats first, so they are in flight
                for i, u in enumerate(users):
                    post_ok(gw, tg_message(k, _ask(i, k)[0], user=u))
                    acked_at[(i, k)] = time.monotonic()
            # Healthy chats: both replies promptly, while the others wait.
            worst = 0.0
            for i, u in enumerate(users[4:], start=4):
                fake.wait_for(lambda: len(sends(fake, u["id"])) >= 2,
                              timeout=PROMPT_S + 1.0 + 30.0, what="chat %d's replies" % i)
                late = sends(fake, u["id"])[1].time - acked_at[(i, 2)]
                worst = max(worst, late)
                if late > PROMPT_S + 1.0:  # + the 1 s per chat between its two replies
                    fail("healthy chat %d's second reply %.1fs after its update (limit %.0fs)"
                         % (i, late, PROMPT_S + 1.0))
            healthy_done = time.monotonic()
            if sends(fake, limited["id"]):
                fail("the 429 chat got a reply %.1fs into its retry_after of %ds" %
                     (healthy_done - t0, RETRY_AFTER_S))
            # Every misbehaving chat ends with both replies.
            for u in (slow, erring, hung, limited):
                fake.wait_for(lambda: len(sends(fake, u["id"])) >= 2,
                              timeout=SEND_TIMEOUT_S + RETRY_AFTER_S,
                              what="chat %s's replies" % u["id"])
            time.sleep(2.0)  # nothing more may come
        finally:
            stop.set()
            sampler.join(5)
        gw.assert_alive("the misbehaving Bot API")

        # Nothing twice; every chat's replies in order.
        for i, u in enumerate(users):
            texts = [r.params.get("text") for r in sends(fake, u["id"])]
            want = [_ask(i, 1)[1], _ask(i, 2)[1]]
            if len(texts) != 2 or any(w not in t for w, t in zip(want, texts)):
                fail("chat %d: delivered %r, expected once each, in order: %r" %
                     (i, [t[:20] for t in texts], want))
        rows = replies(gw.db)
        assert_eq(sorted(set(r["delivery_status"] for r in rows)), ["sent"], "reply statuses")
        assert_eq(len(rows), 2 * len(users) + 1, "reply rows")

        # The 429: one refused attempt, then nothing before retry_after.
        attempts = [r for r in fake.calls("sendMessage")
                    if str(r.params.get("chat_id")) == str(limited["id"])]
        assert_eq([r.status for r in attempts], [429, 200, 200], "attempts to the 429 chat")
        waited = attempts[1].time - attempts[0].time
        if waited < RETRY_AFTER_S - JITTER:
            fail("the 429 chat was retried %.2fs after retry_after=%d" % (waited, RETRY_AFTER_S))
        # The hung send: given up after the send timeout, then sent once.
        attempts = [r for r in fake.calls("sendMessage")
                    if str(r.params.get("chat_id")) == str(hung["id"])]
        assert_eq([r.status for r in attempts][-2:], [200, 200], "the hung chat's last sends")
        if attempts[1].time - attempts[0].time < SEND_TIMEOUT_S - 1.0:
            fail("the hung send was given up after %.1fs (send timeout %.0fs)" %
                 (attempts[1].time - attempts[0].time, SEND_TIMEOUT_S))
        attempts = [r for r in fake.calls("sendMessage")
                    if str(r.params.get("chat_id")) == str(erring["id"])]
        assert_eq([r.status for r in attempts], [502, 500, 503, 200, 200],
                  "attempts to the chat whose sends failed")

        peak = max(rss) if rss else 0
        if not rss or peak == 0:
            fail("no VmRSS sample of the gateway")
        if peak - base > RSS_GROWTH_MAX_KB:
            fail("the gateway's VmRSS grew from %d kB to %d kB (bound: +%d kB)" %
                 (base, peak, RSS_GROWTH_MAX_KB))
        print("VmRSS %d kB -> peak %d kB (+%d kB, bound +%d kB) over %d samples; healthy "
              "chats' second reply within %.1fs; 429 chat waited %.1fs" %
              (base, peak, peak - base, RSS_GROWTH_MAX_KB, len(rss), worst, waited))
