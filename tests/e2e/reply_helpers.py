"""reply_helpers.py -- what the reply tests (08-*) share: a Telegram fake
with the limits and scripted answers the reply tests need, the demo bot's
gateway, and checks of delivery order and rate limits made from the fake's
recorded arrival times.

FakeTelegram (fake_telegram.py) enforces 1 msg/s per chat and 30 msg/s per
bot. LimitedTelegram adds what the reply tests also need:
  - Telegram's 20 messages per minute per group (negative chat ids), answered
    429 with retry_after like the other limits;
  - force_429(chat_id, retry_after, n): the next n sendMessage calls to that
    chat answer 429 with parameters.retry_after = retry_after, whatever the
    limits say (Telegram's flood control does that).
"""

import json
import math
import time

import eftest
from eftest import FakeTelegram, Gateway, fail, outbound_rows, psql  # noqa: F401 (re-exported)

DEMO_BOT = "bots/demo.yaml"


class LimitedTelegram(FakeTelegram):
    def __init__(self, group_per_min=20, **kw):
        super().__init__(**kw)
        self.group_per_min = group_per_min
        self.group_sends = {}  # chat key -> arrival times of accepted sends
        self.forced = {}  # chat key -> [retry_after, ...]

    def force_429(self, chat_id, retry_after, n=1):
        with self.cond:
            self.forced.setdefault(str(chat_id), []).extend([retry_after] * n)

    def _m_sendmessage(self, params, bot):
        chat_key = str(params.get("chat_id"))
        with self.cond:
            q = self.forced.get(chat_key)
            if q:
                retry = q.pop(0)
                return self._error(429, "Too Many Requests: retry after %d" % retry,
                                   {"retry_after": retry})
            if chat_key.startswith("-") and self.enforce_limits and self.group_per_min:
                now = time.monotonic()
                times = [t for t in self.group_sends.get(chat_key, []) if now - t < 60.0]
                self.group_sends[chat_key] = times
                if len(times) >= self.group_per_min:
                    retry = max(1, int(math.ceil(60.0 - (now - times[0]))))
                    return self._error(429, "Too Many Requests: retry after %d" % retry,
                                       {"retry_after": retry})
            status, body = super()._m_sendmessage(params, bot)
            if status == 200 and chat_key.startswith("-"):
                self.group_sends.setdefault(chat_key, []).append(time.monotonic())
            return status, body


def limited_telegram(**kw):
    """A LimitedTelegram closed when the test ends."""
    return eftest.closed_at_end(LimitedTelegram(**kw))


def demo_gateway(fake, env=None, **kw):
    """The gateway serving bots/demo.yaml, replying through `fake`."""
    e = {"EF_BOT_FILE": DEMO_BOT, "TELEGRAM_BOT_TOKEN": fake.token,
         "TELEGRAM_API_URL": fake.url}
    e.update(env or {})
    return Gateway(env=e, **kw)


# ---- what the fake received ----------------------------------------------------


def sends(fake, chat_id=None, ok_only=True):
    """sendMessage calls (to chat_id when given), in arrival order."""
    out = []
    for r in fake.calls("sendMessage"):
        if chat_id is not None and str(r.params.get("chat_id")) != str(chat_id):
            continue
        if ok_only and r.status != 200:
            continue
        out.append(r)
    return out


def texts(fake, chat_id):
    return [r.params.get("text") for r in sends(fake, chat_id)]


def markup(req):
    m = req.params.get("reply_markup")
    if isinstance(m, str):
        m = json.loads(m)
    return m


def wait_texts(fake, chat_id, n, timeout=20.0):
    """Waits until chat_id received n messages; returns their texts."""
    fake.wait_for(lambda: len(sends(fake, chat_id)) >= n, timeout=timeout,
                  what="%d messages to chat %s (have %r)" % (n, chat_id, texts(fake, chat_id)))
    return texts(fake, chat_id)


def assert_quiet(fake, chat_id, n, secs):
    """chat_id still has exactly n messages after secs more seconds (the
    dispatcher checks its outbox every second and sends at once)."""
    time.sleep(secs)
    got = texts(fake, chat_id)
    if len(got) != n:
        fail("chat %s: expected %d messages, got %d: %r" % (chat_id, n, len(got), got[n:]))


# ---- limits, from arrival times ---------------------------------------------------

# Arrival times at the fake differ from the dispatcher's send times by the
# request's latency; a window this much shorter than the limit's absorbs it.
JITTER = 0.05


def max_in_window(times, span):
    """The most events of `times` within any half-open window of span seconds."""
    times = sorted(times)
    best = 0
    j = 0
    for i in range(len(times)):
        while times[i] - times[j] >= span:
            j += 1
        best = max(best, i - j + 1)
    return best


def check_limits(fake, per_chat=1.0, global_per_sec=30, group_per_min=20):
    """Every sendMessage ATTEMPT (accepted or not) the fake saw respects the
    limits: per chat >= per_chat seconds apart, at most global_per_sec in any
    second, at most group_per_min per group in any minute."""
    reqs = fake.calls("sendMessage")
    by_chat = {}
    for r in reqs:
        by_chat.setdefault(str(r.params.get("chat_id")), []).append(r.time)
    for chat, ts in by_chat.items():
        ts.sort()
        for a, b in zip(ts, ts[1:]):
            if b - a < per_chat - JITTER:
                fail("chat %s: two sendMessage calls %.3f s apart (limit: one per %.1f s)" %
                     (chat, b - a, per_chat))
        if chat.startswith("-"):
            n = max_in_window(ts, 60.0 - JITTER)
            if n > group_per_min:
                fail("group %s: %d sendMessage calls within one minute (limit %d)" %
                     (chat, n, group_per_min))
    n = max_in_window([r.time for r in reqs], 1.0 - JITTER)
    if n > global_per_sec:
        fail("%d sendMessage calls within one second (limit %d per bot)" % (n, global_per_sec))
    return len(reqs)


# ---- what the store holds ------------------------------------------------------------


def replies(url, chat_id=None, platform="telegram"):
    """The bot's replies (role assistant), oldest first."""
    return [r for r in outbound_rows(url, chat_id, platform) if r["role"] == "assistant"]


def inbound_row(url, pmid, platform="telegram"):
    rows = psql(url, "SELECT content, intent, entities, confidence, metadata FROM messages "
                     "WHERE platform = %s AND direction = 'inbound' AND platform_message_id = %s"
                % (eftest.lit(platform), eftest.lit(pmid)))
    if len(rows) != 1:
        fail("expected one inbound row %r, found %d" % (pmid, len(rows)))
    r = rows[0]
    return {"content": r[0], "intent": r[1], "entities": json.loads(r[2]) if r[2] else None,
            "confidence": float(r[3]) if r[3] is not None else None,
            "metadata": json.loads(r[4]) if r[4] else {}}


def conversation(url, chat_id, platform="telegram"):
    rows = psql(url, "SELECT status, current_state, context_data, undeliverable, "
                     "undeliverable_reason, last_inbound_at FROM conversations "
                     "WHERE platform = %s AND chat_id = %s ORDER BY created_at DESC LIMIT 1"
                % (eftest.lit(platform), eftest.lit(str(chat_id))))
    if not rows:
        fail("no conversation for %s chat %s" % (platform, chat_id))
    r = rows[0]
    return {"status": r[0], "state": r[1], "context": json.loads(r[2]) if r[2] else {},
            "undeliverable": r[3] == "t", "undeliverable_reason": r[4],
            "last_inbound_at": r[5]}
