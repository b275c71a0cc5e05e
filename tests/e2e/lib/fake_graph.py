"""lib/fake_graph.py -- a WhatsApp Cloud API (Meta Graph API) server on loopback,
for end-to-end tests.

Speaks the real wire format (PLATFORMS.md B1, B7, B8, B10):
  POST /<version>/<phone_number_id>/messages, JSON body, header
  "Authorization: Bearer <token>".
    - a message ({"messaging_product":"whatsapp","to":..,"type":..,<type>:{..}})
      is answered {"messaging_product":"whatsapp","contacts":[{"input":..,
      "wa_id":..}],"messages":[{"id":"wamid.<unique>","message_status":
      "accepted"}]} (a BSUID recipient: wa_id "" and user_id);
    - mark-as-read ({"messaging_product":"whatsapp","status":"read",
      "message_id":..}) is answered {"success":true};
    - errors are Graph errors: {"error":{"message":..,"type":"OAuthException",
      "code":N,"error_data":{"messaging_product":"whatsapp","details":..},
      "fbtrace_id":..}} with HTTP 400 for most codes (as Meta answers them),
      401 for a bad token, 5xx for transient codes.
  The request is checked the way Meta checks it: wrong token -> 190; an
  unknown phone number id -> 100 (subcode 33); a version other than the
  configured one -> 400; interactive reply buttons: 1..3, titles <= 20
  characters, ids <= 256; lists: <= 10 rows, row titles <= 24; text body
  1..4096 characters -> 131009 / 100 otherwise.

Throughput: `rate_per_sec` accepted messages per business number per second
(sliding one-second window of message sends; mark-as-read calls are not
messages); beyond it 130429 "Rate limit hit".

Scripting:
  fail_next(code, n=1, to=None, kind="message"|"read"|None, http_status=None,
            details=None, drop=False)
      the next n matching calls answer that Graph error (or are dropped
      without an answer when drop=True); `to` matches the recipient.
  requests            every call received (Request objects), in order
  messages(to=None)   accepted message sends; reads() accepted mark-as-reads
  wait_for(pred, timeout, what)

Thread model: one thread per connection (ThreadingHTTPServer); all state is
guarded by one Condition.
"""

import itertools
import json
import os
import time

from .fakes import FakeHandler, FakeServer

DEFAULT_VERSION = "v25.0"
DEFAULT_TOKEN = "EAAGfakeWhatsAppAccessToken0123456789abcdefZZ"

# code -> (HTTP status, message, details). Messages and details as Meta
# words them (PLATFORMS.md B7 and Meta's error-code page).
ERRORS = {
    4: (400, "(#4) Application request limit reached",
        "Too many API calls from this app."),
    80007: (400, "(#80007) Rate limit issues",
            "The WhatsApp Business Account has reached its rate limit."),
    130429: (400, "(#130429) Rate limit hit",
             "Cloud API message throughput has been reached."),
    131056: (400, "(#131056) (Business Account, Consumer Account) pair rate limit hit",
             "Message failed to send because there were too many messages sent from this "
             "phone number to the same phone number in a short period of time."),
    131047: (400, "(#131047) Re-engagement message",
             "Message failed to send because more than 24 hours have passed since the "
             "customer last replied to this number."),
    131026: (400, "(#131026) Message undeliverable",
             "Message Undeliverable."),
    131000: (500, "(#131000) Something went wrong",
             "Something went wrong. Please try again later."),
    131016: (503, "(#131016) Service unavailable",
             "A service is temporarily unavailable."),
    131009: (400, "(#131009) Parameter value is not valid",
             "Parameter value is not valid."),
    131008: (400, "(#131008) Required parameter is missing",
             "A required parameter is missing."),
    100: (400, "(#100) Invalid parameter", "Invalid parameter."),
    132001: (400, "(#132001) Template name does not exist in the translation",
             "template name does not exist in the translation"),
    190: (401, "Error validating access token: Session has expired.",
          "The access token has expired."),
}


class Request:
    """One recorded Graph API call."""

    def __init__(self, http_method, path, headers, raw, t):
        self.http_method = http_method
        self.path = path
        self.headers = headers  # lower-case names
        self.raw = raw  # body bytes as received
        self.time = t  # time.monotonic() on arrival
        self.version = None
        self.number = None  # phone_number_id from the path
        self.body = None  # parsed JSON (None when unparseable)
        self.kind = None  # "message" | "read" | None
        self.status = None  # HTTP status answered (0: dropped)
        self.response = None  # the JSON answered
        self.error_code = None  # Graph error code answered, if any

    @property
    def to(self):
        return self.body.get("to") if isinstance(self.body, dict) else None

    @property
    def ok(self):
        return self.status == 200

    @property
    def wamid(self):
        """The message id answered for an accepted send."""
        try:
            return self.response["messages"][0]["id"]
        except (TypeError, KeyError, IndexError):
            return None

    def __repr__(self):
        return "Request(%s %s status=%s code=%s body=%s)" % (
            self.http_method, self.path, self.status, self.error_code,
            json.dumps(self.body, ensure_ascii=False)[:300])


def _chars(s):
    return len(s) if isinstance(s, str) else 0


class _Handler(FakeHandler):
    server_version = "FakeGraph/1.0"

    def _handle(self, http_method):
        fake = self.server.fake
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = fake._record(http_method, self.path, headers, raw)
        status, body = fake._dispatch(req)
        with fake.cond:
            req.status = status
            req.response = body
            if isinstance(body, dict) and isinstance(body.get("error"), dict):
                req.error_code = body["error"].get("code")
            fake.cond.notify_all()
        if status == 0:
            self.drop()
            return
        self.send_json(status, body, "application/json; charset=UTF-8", ensure_ascii=True)


class FakeGraph(FakeServer):
    """A scriptable WhatsApp Cloud API. Use as a context manager or close()."""

    handler = _Handler
    label = "fake Graph API"

    def __init__(self, token=DEFAULT_TOKEN, version=DEFAULT_VERSION, numbers=None,
                 rate_per_sec=80):
        self.token = token
        self.version = version
        self.numbers = set(numbers) if numbers else None  # None: any number
        self.rate_per_sec = rate_per_sec
        self.failures = []  # dicts, consumed in order
        self.window = {}  # number -> [times of accepted calls within the last second]
        self._seq = itertools.count(1)
        self._tag = os.urandom(3).hex().upper()
        super().__init__(path="/" + version)  # url: WHATSAPP_API_URL

    # ---- scripting -----------------------------------------------------

    def fail_next(self, code, n=1, to=None, kind="message", http_status=None, details=None,
                  drop=False):
        """The next n calls matching (kind, to) answer Graph error `code`."""
        with self.cond:
            for _ in range(n):
                self.failures.append({"code": code, "to": to, "kind": kind,
                                      "http_status": http_status, "details": details,
                                      "drop": drop})

    def pending_failures(self):
        with self.cond:
            return len(self.failures)

    def calls(self, kind=None, to=None, number=None):
        with self.cond:
            return [r for r in self.requests
                    if (kind is None or r.kind == kind) and (to is None or r.to == to) and
                    (number is None or r.number == number)]

    def messages(self, to=None, number=None):
        """Accepted message sends, in arrival order."""
        return [r for r in self.calls("message", to, number) if r.ok]

    def reads(self, number=None):
        """Accepted mark-as-read calls."""
        return [r for r in self.calls("read", None, number) if r.ok]

    def _wait_context(self):
        return "; requests: %r" % (self.calls()[-10:],)

    # ---- the server side -------------------------------------------------

    def _record(self, http_method, path, headers, raw):
        with self.cond:
            r = Request(http_method, path, headers, raw, time.monotonic())
            self.requests.append(r)
            return r

    def _fbtrace(self):
        return "A%s%06dZ" % (self._tag, next(self._seq))

    def _error(self, code, details=None, http_status=None, message=None, subcode=None):
        st, msg, det = ERRORS.get(code, (400, "(#%d) Error" % code, "Error."))
        err = {"message": message or msg, "type": "OAuthException", "code": code,
               "error_data": {"messaging_product": "whatsapp", "details": details or det},
               "fbtrace_id": self._fbtrace()}
        if subcode is not None:
            err["error_subcode"] = subcode
        if code in (131000, 131016, 1, 2):
            err["is_transient"] = True
        return (http_status or st), {"error": err}

    def _take_failure(self, req):
        with self.cond:
            for i, f in enumerate(self.failures):
                if f["kind"] is not None and f["kind"] != req.kind:
                    continue
                if f["to"] is not None and f["to"] != req.to:
                    continue
                del self.failures[i]
                return f
        return None

    def _rate_ok(self, number, now):
        """Counts an accepted call against the number's throughput; False
        when the number is over its limit."""
        with self.cond:
            w = [t for t in self.window.get(number, []) if now - t < 1.0]
            if self.rate_per_sec and len(w) >= self.rate_per_sec:
                self.window[number] = w
                return False
            w.append(now)
            self.window[number] = w
            return True

    def _dispatch(self, req):
        parts = req.path.split("?")[0].split("/")
        # ['', '<version>', '<phone_number_id>', 'messages']
        if req.http_method != "POST" or len(parts) != 4 or parts[3] != "messages":
            return self._error(100, "Unknown path components: %s" % req.path,
                               message="Unsupported %s request." % req.http_method)
        req.version, req.number = parts[1], parts[2]
        try:
            req.body = json.loads(req.raw.decode("utf-8")) if req.raw else None
        except (ValueError, UnicodeDecodeError):
            req.body = None
        if isinstance(req.body, dict):
            req.kind = "read" if req.body.get("status") == "read" else "message"
        auth = req.headers.get("authorization", "")
        if auth != "Bearer " + self.token:
            return self._error(190, "Invalid OAuth access token - Cannot parse access token",
                               http_status=401, message="Invalid OAuth access token - Cannot "
                               "parse access token")
        if req.version != self.version:
            return self._error(100, "Unknown version %s" % req.version,
                               message="Unknown path components: /%s" % req.version)
        if self.numbers is not None and req.number not in self.numbers:
            return self._error(100, "Object with ID '%s' does not exist" % req.number,
                               subcode=33,
                               message="Unsupported post request. Object with ID '%s' does "
                                       "not exist, cannot be loaded due to missing "
                                       "permissions, or does not support this operation."
                                       % req.number)
        if not isinstance(req.body, dict):
            return self._error(100, "The request body is not a JSON object")
        if req.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return self._error(100, "Content-Type must be application/json")
        f = self._take_failure(req)
        if f:
            if f["drop"]:
                return 0, None
            return self._error(f["code"], f["details"], f["http_status"])
        problem = self._validate(req.body)
        if problem:
            return self._error(problem[0], problem[1])
        if req.kind == "read":
            return 200, {"success": True}
        if not self._rate_ok(req.number, req.time):
            return self._error(130429)
        to = req.body["to"]
        wamid = "wamid.HBgL%s%s%06dFQIAERgS" % (self._tag, "".join(c for c in to if c.isalnum())
                                               [:16], next(self._seq))
        contact = {"input": to, "wa_id": to.lstrip("+") if to.lstrip("+").isdigit() else ""}
        if not contact["wa_id"]:
            contact["user_id"] = to
        return 200, {"messaging_product": "whatsapp", "contacts": [contact],
                     "messages": [{"id": wamid, "message_status": "accepted"}]}

    @staticmethod
    def _validate(b):
        """(code, details) of what Meta would refuse in this body, or None."""
        if b.get("messaging_product") != "whatsapp":
            return 100, "messaging_product must be whatsapp"
        if b.get("status") == "read":
            mid = b.get("message_id")
            if not isinstance(mid, str) or not mid.startswith("wamid."):
                return 131009, "message_id is not a valid message id"
            return None
        to = b.get("to")
        if not isinstance(to, str) or not to:
            return 131008, "to is required"
        t = b.get("type", "text")
        obj = b.get(t)
        if not isinstance(obj, dict):
            return 131008, "%s object is required" % t
        if "context" in b:
            ctx = b["context"]
            if not isinstance(ctx, dict) or not str(ctx.get("message_id", "")).startswith("wamid."):
                return 131009, "context.message_id is not a valid message id"
        if t == "text":
            body = obj.get("body")
            if not isinstance(body, str) or not body or _chars(body) > 4096:
                return 100, "text.body must be 1-4096 characters"
        elif t == "interactive":
            itype = obj.get("type")
            body = (obj.get("body") or {}).get("text")
            if not isinstance(body, str) or not body or _chars(body) > 1024:
                return 131009, "interactive.body.text must be 1-1024 characters"
            action = obj.get("action") or {}
            if itype == "button":
                btns = action.get("buttons")
                if not isinstance(btns, list) or not 1 <= len(btns) <= 3:
                    return 131009, "buttons: between 1 and 3 reply buttons"
                ids = set()
                for btn in btns:
                    reply = btn.get("reply") if isinstance(btn, dict) else None
                    if btn.get("type") != "reply" or not isinstance(reply, dict):
                        return 131009, "button type must be reply"
                    if not 1 <= _chars(reply.get("title")) <= 20:
                        return 131009, "button title must be 1-20 characters"
                    if not 1 <= _chars(reply.get("id")) <= 256 or reply["id"] in ids:
                        return 131009, "button ids must be unique, 1-256 characters"
                    ids.add(reply["id"])
            elif itype == "list":
                if not 1 <= _chars(action.get("button")) <= 20:
                    return 131009, "list button text must be 1-20 characters"
                secs = action.get("sections")
                if not isinstance(secs, list) or not 1 <= len(secs) <= 10:
                    return 131009, "a list has 1-10 sections"
                rows = [r for s in secs for r in (s.get("rows") or [])]
                if not 1 <= len(rows) <= 10:
                    return 131009, "a list has 1-10 rows in total"
                for r in rows:
                    if not 1 <= _chars(r.get("title")) <= 24 or not 1 <= _chars(r.get("id")) <= 200:
                        return 131009, "row title 1-24 characters, id 1-200"
            else:
                return 131009, "interactive type %r not supported here" % itype
        elif t == "template":
            if not obj.get("name") or not isinstance(obj.get("language"), dict) or \
                    not obj["language"].get("code"):
                return 131008, "template name and language.code are required"
        return None
