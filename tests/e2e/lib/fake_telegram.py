"""lib/fake_telegram.py -- a Telegram Bot API server on loopback, for end-to-end tests.

Speaks the real wire format (PLATFORMS.md A1, A3, A10, A11):
  GET or POST /bot<TOKEN>/<method>, parameters in the query string, as
  application/json, application/x-www-form-urlencoded or multipart/form-data
  (text fields); method names are case-insensitive; every reply is
  {"ok":true,"result":...} or {"ok":false,"error_code":N,"description":...}
  (+ "parameters" for 429 / migrations).

What it implements:
  getUpdates   offset (confirms: drops every update below it; negative = the
               last -offset updates), limit (1-100), timeout (long poll: waits
               up to timeout seconds, answers as soon as updates are queued),
               allowed_updates (recorded); a second concurrent getUpdates ends
               the first with 409 "terminated by other getUpdates request";
               409 "can't use getUpdates method while webhook is active" while
               a webhook is set.
  setWebhook / deleteWebhook / getWebhookInfo, getMe
  sendMessage, editMessageText, answerCallbackQuery, sendChatAction,
  deleteMessage: recorded, answered with real-format results (sendMessage
               returns a Message with an incrementing message_id); sending
               obeys a per-chat (default 1 msg/s) and a global (default 30
               msg/s) limit, answering 429 with parameters.retry_after beyond.

Several bots: one fake serves every token given to add_bot() besides its
own (`token`); each bot has its own update queue, long poll, message ids and
rate limits; any other token is answered 401 Unauthorized.

Scripting:
  push_update(dict, token=None) / push_updates(list)   queue updates
                                           (update_id assigned when absent)
  add_bot(token)                           serve one more bot
  revoke(token=None)                       the token is revoked: every call
                                           with it now answers 401
                                           Unauthorized, as Telegram does
  fail_next(n, status=502|500|..|"drop", method=None)  the next n matching
                                           calls fail (HTTP error or the
                                           connection dropped unanswered)
  set_webhook_active(url)                  getUpdates now answers 409
  blocked_chats / kicked_chats             sends to them answer 403
  requests / calls(method, token=None)     everything received, for asserts
  wait_for(predicate, timeout)             poll until predicate() is true

Thread model: one thread per connection (ThreadingHTTPServer); all state is
guarded by one Condition.
"""

import json
import time
import urllib.parse
from email.parser import BytesParser
from email.policy import HTTP as HTTP_POLICY

from .fakes import FakeHandler, FakeServer

DEFAULT_TOKEN = "123456789:AAHfake-Token_for_easyflow_tests_0123456"


class Request:
    """One recorded API call."""

    def __init__(self, method, http_method, path, params, status, t, token=None):
        self.method = method  # Bot API method name, lower case
        self.token = token  # the bot token of the path
        self.http_method = http_method
        self.path = path  # the raw path (contains the token)
        self.params = params  # dict of parameters, JSON-decoded where sent as JSON
        self.status = status  # HTTP status answered (0 = connection dropped)
        self.time = t  # time.monotonic() when it arrived
        self.result = None  # the "result" answered, when ok

    def __repr__(self):
        return "Request(%s %s status=%s params=%r)" % (self.http_method, self.method, self.status,
                                                       self.params)


def _int_param(params, name, default=None):
    v = params.get(name)
    if v is None or v == "":
        return default
    if isinstance(v, bool):
        raise ValueError(name)
    if isinstance(v, int):
        return v
    return int(str(v).strip())


def _json_param(params, name):
    """A parameter that Telegram accepts JSON-serialized in forms/queries."""
    v = params.get(name)
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


class _Handler(FakeHandler):
    server_version = "FakeTelegram/1.0"

    def _read_params(self):
        parsed = urllib.parse.urlsplit(self.path)
        params = {}
        for k, v in urllib.parse.parse_qsl(parsed.query, keep_blank_values=True):
            params[k] = v
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else b""
        ctype = (self.headers.get("Content-Type") or "").lower()
        if body:
            if ctype.startswith("application/json"):
                obj = json.loads(body.decode("utf-8"))
                if not isinstance(obj, dict):
                    raise ValueError("JSON body is not an object")
                params.update(obj)
            elif ctype.startswith("application/x-www-form-urlencoded"):
                for k, v in urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True):
                    params[k] = v
            elif ctype.startswith("multipart/form-data"):
                msg = BytesParser(policy=HTTP_POLICY).parsebytes(
                    b"Content-Type: " + self.headers.get("Content-Type").encode() + b"\r\n\r\n" + body)
                for part in msg.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    if name:
                        payload = part.get_payload(decode=True) or b""
                        if part.get_filename():
                            params[name] = {"filename": part.get_filename(), "size": len(payload)}
                        else:
                            params[name] = payload.decode("utf-8")
            else:
                raise ValueError("unsupported Content-Type %r" % ctype)
        return parsed.path, params

    def _handle(self, http_method):
        fake = self.server.fake
        try:
            path, params = self._read_params()
        except (ValueError, UnicodeDecodeError) as e:
            self.send_json(400, {"ok": False, "error_code": 400, "description": "Bad Request: %s" % e})
            return
        parts = path.split("/")
        # ['', 'bot<TOKEN>', '<method>']
        if len(parts) != 3 or not parts[1].startswith("bot"):
            self.send_json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        token = parts[1][3:]
        method = parts[2].lower()
        req = fake._record(method, http_method, self.path, params, token)
        status, body = fake._dispatch(req, token, params)
        req.status = status
        if status == 0:
            self.drop()  # a network drop: close without an answer
            return
        if body.get("ok"):
            req.result = body.get("result")
        self.send_json(status, body)


class _Bot:
    """What the Bot API keeps per bot."""

    def __init__(self, token, username):
        self.token = token
        self.id = int(token.split(":", 1)[0])
        self.username = username
        self.revoked = False
        self.updates = []  # queued, unconfirmed, ascending update_id
        self.poll_generation = 0
        self.next_message_id = {}  # chat key -> next message_id
        self.chat_last_send = {}
        self.global_sends = []


class FakeTelegram(FakeServer):
    """A scriptable Bot API server. Use as a context manager or call close()."""

    handler = _Handler
    label = "fake Telegram"

    def __init__(self, token=DEFAULT_TOKEN, per_chat_per_sec=1.0, global_per_sec=30.0,
                 enforce_limits=True, max_long_poll=None, first_update_id=700000000, port=0):
        self.token = token
        self.per_chat_per_sec = per_chat_per_sec
        self.global_per_sec = global_per_sec
        self.enforce_limits = enforce_limits
        # Tests may cap how long a long poll really waits (None: as asked).
        self.max_long_poll = max_long_poll
        self.bots = {token: _Bot(token, "easyflow_test_bot")}
        self.next_update_id = first_update_id
        self.failures = []  # [status_or_drop, method_or_None] consumed in order
        self.webhook_url = ""
        self.blocked_chats = set()
        self.kicked_chats = set()
        self.sent = []  # every Message the bots sent, in order
        self.highest_offset = None  # the largest offset getUpdates was called with
        self.allowed_updates = None  # the last allowed_updates asked for
        self._closed = False
        super().__init__(port)

    @property
    def bot_id(self):
        return self.token.split(":", 1)[0]

    @property
    def updates(self):
        """The default bot's queued, unconfirmed updates."""
        return self.bots[self.token].updates

    # ---- lifecycle -----------------------------------------------------

    def close(self):
        with self.cond:
            self._closed = True
            self.cond.notify_all()
        super().close()

    # ---- scripting -----------------------------------------------------

    def add_bot(self, token):
        """Serves one more bot (its token: "<bot id>:<secret part>")."""
        with self.cond:
            bot_id = token.split(":", 1)[0]
            self.bots[token] = _Bot(token, "easyflow_test_bot_%s" % bot_id)
        return token

    def revoke(self, token=None):
        """Revokes a bot's token (default: the fake's own): every later call
        with it answers 401 Unauthorized."""
        with self.cond:
            self.bots[token or self.token].revoked = True
            self.cond.notify_all()  # a long poll in progress ends with 401

    def push_update(self, update, token=None):
        """Queues one update for a bot (default: the fake's own; a dict
        without update_id gets the next one). Returns the update_id."""
        with self.cond:
            q = self.bots[token or self.token].updates
            u = dict(update)
            if "update_id" not in u:
                u["update_id"] = self.next_update_id
            self.next_update_id = max(self.next_update_id, u["update_id"]) + 1
            q.append(u)
            q.sort(key=lambda x: x["update_id"])
            self.cond.notify_all()
            return u["update_id"]

    def push_updates(self, updates, token=None):
        return [self.push_update(u, token) for u in updates]

    def fail_next(self, n, status=502, method=None):
        """The next n calls (of `method` when given) fail with HTTP `status`,
        or with the connection dropped when status == "drop"."""
        with self.cond:
            for _ in range(n):
                self.failures.append([status, method.lower() if method else None])

    def set_webhook_active(self, url="https://example.invalid/webhook/telegram"):
        with self.cond:
            self.webhook_url = url

    def pending(self, token=None):
        """A bot's updates not yet confirmed."""
        with self.cond:
            return list(self.bots[token or self.token].updates)

    def calls(self, method=None, token=None):
        """Recorded calls (of one method, with one token, when given)."""
        m = method.lower() if method else None
        with self.cond:
            return [r for r in self.requests
                    if (m is None or r.method == m) and (token is None or r.token == token)]

    # ---- the server side -------------------------------------------------

    def _record(self, method, http_method, path, params, token):
        with self.cond:
            r = Request(method, http_method, path, params, None, time.monotonic(), token)
            self.requests.append(r)
            return r

    def _take_failure(self, method):
        with self.cond:
            for i, (status, m) in enumerate(self.failures):
                if m is None or m == method:
                    del self.failures[i]
                    return status
        return None

    @staticmethod
    def _error(code, description, parameters=None):
        body = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return code, body

    def _dispatch(self, req, token, params):
        with self.cond:
            bot = self.bots.get(token)
            if bot is None or bot.revoked:
                return self._error(401, "Unauthorized")
        failure = self._take_failure(req.method)
        if failure == "drop":
            return 0, {}
        if failure is not None:
            desc = {500: "Internal Server Error", 502: "Bad Gateway",
                    503: "Service Unavailable", 504: "Gateway Timeout"}.get(failure, "Error")
            return self._error(int(failure), desc)
        handler = getattr(self, "_m_" + req.method, None)
        if handler is None:
            return self._error(404, "Not Found: method not found")
        try:
            return handler(params, bot)
        except (ValueError, TypeError, KeyError) as e:
            return self._error(400, "Bad Request: %s" % e)

    def _m_getme(self, params, bot):
        return 200, {"ok": True, "result": {
            "id": bot.id, "is_bot": True, "first_name": "Easyflow Test Bot",
            "username": bot.username, "can_join_groups": True,
            "can_read_all_group_messages": False, "supports_inline_queries": False}}

    def _m_getupdates(self, params, bot):
        offset = _int_param(params, "offset", 0)
        limit = _int_param(params, "limit", 100)
        timeout = _int_param(params, "timeout", 0)
        if limit < 1 or limit > 100:
            limit = max(1, min(100, limit))
        if timeout < 0:
            timeout = 0
        allowed = _json_param(params, "allowed_updates")
        with self.cond:
            if self.webhook_url:
                return self._error(409, "Conflict: can't use getUpdates method while webhook is "
                                        "active; use deleteWebhook to delete the webhook first")
            if allowed is not None:
                self.allowed_updates = allowed
            if self.highest_offset is None or offset > self.highest_offset:
                self.highest_offset = offset
            # Confirm: everything below offset is forgotten.
            if offset > 0:
                bot.updates = [u for u in bot.updates if u["update_id"] >= offset]
            elif offset < 0:
                bot.updates = bot.updates[offset:]
            bot.poll_generation += 1
            gen = bot.poll_generation
            self.cond.notify_all()  # an older long poll ends with 409
            wait = float(timeout)
            if self.max_long_poll is not None:
                wait = min(wait, self.max_long_poll)
            deadline = time.monotonic() + wait
            while not bot.updates and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
                if bot.revoked:
                    return self._error(401, "Unauthorized")
                if bot.poll_generation != gen:
                    return self._error(409, "Conflict: terminated by other getUpdates request; "
                                            "make sure that only one bot instance is running")
                if self.webhook_url:
                    return self._error(409, "Conflict: can't use getUpdates method while webhook "
                                            "is active; use deleteWebhook to delete the webhook "
                                            "first")
            batch = bot.updates[:limit]
            return 200, {"ok": True, "result": batch}

    def _m_setwebhook(self, params, bot):
        with self.cond:
            self.webhook_url = params.get("url") or ""
            self.cond.notify_all()
        return 200, {"ok": True, "result": True, "description": "Webhook was set"}

    def _m_deletewebhook(self, params, bot):
        drop = str(params.get("drop_pending_updates", "")).lower() in ("true", "1")
        with self.cond:
            self.webhook_url = ""
            if drop:
                bot.updates = []
        return 200, {"ok": True, "result": True, "description": "Webhook was deleted"}

    def _m_getwebhookinfo(self, params, bot):
        with self.cond:
            return 200, {"ok": True, "result": {
                "url": self.webhook_url, "has_custom_certificate": False,
                "pending_update_count": len(bot.updates) if self.webhook_url else 0}}

    def _rate_check(self, bot, chat_key):
        """429 when the per-chat or the global limit is exceeded."""
        if not self.enforce_limits:
            return None
        now = time.monotonic()
        last = bot.chat_last_send.get(chat_key)
        if last is not None and self.per_chat_per_sec and now - last < 1.0 / self.per_chat_per_sec:
            retry = max(1, int(1.0 / self.per_chat_per_sec - (now - last) + 0.999))
            return retry
        bot.global_sends = [t for t in bot.global_sends if now - t < 1.0]
        if self.global_per_sec and len(bot.global_sends) >= self.global_per_sec:
            return 1
        bot.chat_last_send[chat_key] = now
        bot.global_sends.append(now)
        return None

    def _chat_check(self, chat_key):
        if chat_key in self.blocked_chats:
            return self._error(403, "Forbidden: bot was blocked by the user")
        if chat_key in self.kicked_chats:
            return self._error(403, "Forbidden: bot was kicked from the group chat")
        return None

    def _m_sendmessage(self, params, bot):
        if "chat_id" not in params:
            raise ValueError("chat_id is empty")
        text = params.get("text")
        if text is None or text == "":
            raise ValueError("message text is empty")
        if len(str(text).encode("utf-16-le")) // 2 > 4096:
            raise ValueError("message is too long")
        chat_key = str(params["chat_id"])
        with self.cond:
            err = self._chat_check(chat_key)
            if err:
                return err
            retry = self._rate_check(bot, chat_key)
            if retry is not None:
                return self._error(429, "Too Many Requests: retry after %d" % retry,
                                   {"retry_after": retry})
            mid = bot.next_message_id.get(chat_key, 1)
            bot.next_message_id[chat_key] = mid + 1
            try:
                chat_id = int(chat_key)
            except ValueError:
                chat_id = chat_key
            msg = {
                "message_id": mid,
                "from": {"id": bot.id, "is_bot": True, "first_name": "Easyflow Test Bot",
                         "username": bot.username},
                "chat": {"id": chat_id, "type": "private" if isinstance(chat_id, int) and
                         chat_id > 0 else "supergroup"},
                "date": int(time.time()),
                "text": text,
            }
            thread = params.get("message_thread_id")
            if thread is not None:
                msg["message_thread_id"] = int(thread)
            markup = _json_param(params, "reply_markup")
            if isinstance(markup, dict) and "inline_keyboard" in markup:
                msg["reply_markup"] = markup
            self.sent.append(msg)
            return 200, {"ok": True, "result": msg}

    def _m_editmessagetext(self, params, bot):
        if "inline_message_id" in params:
            return 200, {"ok": True, "result": True}
        chat_key = str(params["chat_id"])
        mid = int(params["message_id"])
        with self.cond:
            for m in self.sent:
                if str(m["chat"]["id"]) == chat_key and m["message_id"] == mid and \
                        m["from"]["id"] == bot.id:
                    m["text"] = params.get("text")
                    m["edit_date"] = int(time.time())
                    return 200, {"ok": True, "result": m}
        return self._error(400, "Bad Request: message to edit not found")

    def _m_answercallbackquery(self, params, bot):
        if not params.get("callback_query_id"):
            raise ValueError("callback_query_id is empty")
        return 200, {"ok": True, "result": True}

    def _m_sendchataction(self, params, bot):
        return 200, {"ok": True, "result": True}

    def _m_deletemessage(self, params, bot):
        return 200, {"ok": True, "result": True}
