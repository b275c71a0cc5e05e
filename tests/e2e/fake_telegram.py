"""fake_telegram.py -- a Telegram Bot API server on loopback, for end-to-end tests.

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

Scripting:
  push_update(dict) / push_updates(list)   queue updates (update_id assigned
                                           when absent)
  fail_next(n, status=502|500|..|"drop", method=None)  the next n matching
                                           calls fail (HTTP error or the
                                           connection dropped unanswered)
  set_webhook_active(url)                  getUpdates now answers 409
  blocked_chats / kicked_chats             sends to them answer 403
  requests / calls(method)                 everything received, for asserts
  wait_for(predicate, timeout)             poll until predicate() is true

Thread model: one thread per connection (ThreadingHTTPServer); all state is
guarded by one Condition.
"""

import json
import socket
import threading
import time
import urllib.parse
from email.parser import BytesParser
from email.policy import HTTP as HTTP_POLICY
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_TOKEN = "123456789:AAHfake-Token_for_easyflow_tests_0123456"


class Request:
    """One recorded API call."""

    def __init__(self, method, http_method, path, params, status, t):
        self.method = method  # Bot API method name, lower case
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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeTelegram/1.0"

    def log_message(self, fmt, *args):  # quiet
        pass

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

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
            self._reply(400, {"ok": False, "error_code": 400, "description": "Bad Request: %s" % e})
            return
        parts = path.split("/")
        # ['', 'bot<TOKEN>', '<method>']
        if len(parts) != 3 or not parts[1].startswith("bot"):
            self._reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        token = parts[1][3:]
        method = parts[2].lower()
        req = fake._record(method, http_method, self.path, params)
        status, body = fake._dispatch(req, token, params)
        req.status = status
        if status == 0:
            # A network drop: close without an answer.
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.close_connection = True
            return
        if body.get("ok"):
            req.result = body.get("result")
        self._reply(status, body)

    def _reply(self, status, obj):
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True


class FakeTelegram:
    """A scriptable Bot API server. Use as a context manager or call close()."""

    def __init__(self, token=DEFAULT_TOKEN, per_chat_per_sec=1.0, global_per_sec=30.0,
                 enforce_limits=True, max_long_poll=None, first_update_id=700000000, port=0):
        self.token = token
        self.per_chat_per_sec = per_chat_per_sec
        self.global_per_sec = global_per_sec
        self.enforce_limits = enforce_limits
        # Tests may cap how long a long poll really waits (None: as asked).
        self.max_long_poll = max_long_poll
        self.cond = threading.Condition()
        self.updates = []  # queued, unconfirmed, ascending update_id
        self.next_update_id = first_update_id
        self.requests = []
        self.failures = []  # [status_or_drop, method_or_None] consumed in order
        self.webhook_url = ""
        self.blocked_chats = set()
        self.kicked_chats = set()
        self.sent = []  # every Message the bot sent, in order
        self.next_message_id = {}  # chat_id -> next message_id
        self.chat_last_send = {}
        self.global_sends = []
        self.poll_generation = 0
        self.highest_offset = None  # the largest offset getUpdates was called with
        self.allowed_updates = None  # the last allowed_updates asked for
        self._closed = False
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.server.daemon_threads = True
        self.server.fake = self
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self._thread = threading.Thread(target=self.server.serve_forever, name="fake-telegram",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def bot_id(self):
        return self.token.split(":", 1)[0]

    # ---- lifecycle -----------------------------------------------------

    def close(self):
        with self.cond:
            self._closed = True
            self.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- scripting -----------------------------------------------------

    def push_update(self, update):
        """Queues one update (a dict without update_id gets the next one).
        Returns the update_id."""
        with self.cond:
            u = dict(update)
            if "update_id" not in u:
                u["update_id"] = self.next_update_id
            self.next_update_id = max(self.next_update_id, u["update_id"]) + 1
            self.updates.append(u)
            self.updates.sort(key=lambda x: x["update_id"])
            self.cond.notify_all()
            return u["update_id"]

    def push_updates(self, updates):
        return [self.push_update(u) for u in updates]

    def fail_next(self, n, status=502, method=None):
        """The next n calls (of `method` when given) fail with HTTP `status`,
        or with the connection dropped when status == "drop"."""
        with self.cond:
            for _ in range(n):
                self.failures.append([status, method.lower() if method else None])

    def set_webhook_active(self, url="https://example.invalid/webhook/telegram"):
        with self.cond:
            self.webhook_url = url

    def pending(self):
        """Updates not yet confirmed."""
        with self.cond:
            return list(self.updates)

    def calls(self, method=None):
        with self.cond:
            if method is None:
                return list(self.requests)
            m = method.lower()
            return [r for r in self.requests if r.method == m]

    def wait_for(self, predicate, timeout=10.0, what="condition"):
        deadline = time.monotonic() + timeout
        while True:
            v = predicate()
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError("fake Telegram: timed out after %.1fs waiting for %s" %
                                     (timeout, what))
            time.sleep(0.02)

    # ---- the server side -------------------------------------------------

    def _record(self, method, http_method, path, params):
        with self.cond:
            r = Request(method, http_method, path, params, None, time.monotonic())
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
        if token != self.token:
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
            return handler(params)
        except (ValueError, TypeError, KeyError) as e:
            return self._error(400, "Bad Request: %s" % e)

    def _m_getme(self, params):
        return 200, {"ok": True, "result": {
            "id": int(self.bot_id), "is_bot": True, "first_name": "Easyflow Test Bot",
            "username": "easyflow_test_bot", "can_join_groups": True,
            "can_read_all_group_messages": False, "supports_inline_queries": False}}

    def _m_getupdates(self, params):
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
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
            elif offset < 0:
                self.updates = self.updates[offset:]
            self.poll_generation += 1
            gen = self.poll_generation
            self.cond.notify_all()  # an older long poll ends with 409
            wait = float(timeout)
            if self.max_long_poll is not None:
                wait = min(wait, self.max_long_poll)
            deadline = time.monotonic() + wait
            while not self.updates and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
                if self.poll_generation != gen:
                    return self._error(409, "Conflict: terminated by other getUpdates request; "
                                            "make sure that only one bot instance is running")
                if self.webhook_url:
                    return self._error(409, "Conflict: can't use getUpdates method while webhook "
                                            "is active; use deleteWebhook to delete the webhook "
                                            "first")
            batch = self.updates[:limit]
            return 200, {"ok": True, "result": batch}

    def _m_setwebhook(self, params):
        with self.cond:
            self.webhook_url = params.get("url") or ""
            self.cond.notify_all()
        return 200, {"ok": True, "result": True, "description": "Webhook was set"}

    def _m_deletewebhook(self, params):
        drop = str(params.get("drop_pending_updates", "")).lower() in ("true", "1")
        with self.cond:
            self.webhook_url = ""
            if drop:
                self.updates = []
        return 200, {"ok": True, "result": True, "description": "Webhook was deleted"}

    def _m_getwebhookinfo(self, params):
        with self.cond:
            return 200, {"ok": True, "result": {
                "url": self.webhook_url, "has_custom_certificate": False,
                "pending_update_count": len(self.updates) if self.webhook_url else 0}}

    def _rate_check(self, chat_key):
        """429 when the per-chat or the global limit is exceeded."""
        if not self.enforce_limits:
            return None
        now = time.monotonic()
        last = self.chat_last_send.get(chat_key)
        if last is not None and self.per_chat_per_sec and now - last < 1.0 / self.per_chat_per_sec:
            retry = max(1, int(1.0 / self.per_chat_per_sec - (now - last) + 0.999))
            return retry
        self.global_sends = [t for t in self.global_sends if now - t < 1.0]
        if self.global_per_sec and len(self.global_sends) >= self.global_per_sec:
            return 1
        self.chat_last_send[chat_key] = now
        self.global_sends.append(now)
        return None

    def _chat_check(self, chat_key):
        if chat_key in self.blocked_chats:
            return self._error(403, "Forbidden: bot was blocked by the user")
        if chat_key in self.kicked_chats:
            return self._error(403, "Forbidden: bot was kicked from the group chat")
        return None

    def _m_sendmessage(self, params):
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
            retry = self._rate_check(chat_key)
            if retry is not None:
                return self._error(429, "Too Many Requests: retry after %d" % retry,
                                   {"retry_after": retry})
            mid = self.next_message_id.get(chat_key, 1)
            self.next_message_id[chat_key] = mid + 1
            try:
                chat_id = int(chat_key)
            except ValueError:
                chat_id = chat_key
            msg = {
                "message_id": mid,
                "from": {"id": int(self.bot_id), "is_bot": True, "first_name": "Easyflow Test Bot",
                         "username": "easyflow_test_bot"},
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

    def _m_editmessagetext(self, params):
        if "inline_message_id" in params:
            return 200, {"ok": True, "result": True}
        chat_key = str(params["chat_id"])
        mid = int(params["message_id"])
        with self.cond:
            for m in self.sent:
                if str(m["chat"]["id"]) == chat_key and m["message_id"] == mid:
                    m["text"] = params.get("text")
                    m["edit_date"] = int(time.time())
                    return 200, {"ok": True, "result": m}
        return self._error(400, "Bad Request: message to edit not found")

    def _m_answercallbackquery(self, params):
        if not params.get("callback_query_id"):
            raise ValueError("callback_query_id is empty")
        return 200, {"ok": True, "result": True}

    def _m_sendchataction(self, params):
        return 200, {"ok": True, "result": True}

    def _m_deletemessage(self, params):
        return 200, {"ok": True, "result": True}
