"""lib/fake_marketplaces.py -- fake Wildberries and Ozon seller APIs on
loopback, speaking their wire format: the real paths, auth headers, query
and body parameters, pagination (Wildberries' `next`, Ozon's `cursor` and
`offset`), error bodies and rate-limit answers.

  FakeWildberries  GET /ping, GET /api/v3/orders?limit&next&dateFrom&dateTo,
                   POST /api/v3/orders/status {"orders":[ids]}; buyer chats:
                   GET /api/v1/seller/events?next=<ms>, POST
                   /api/v1/seller/message (multipart: replySign, message);
                   Authorization: Bearer <token> (else 401 with the API
                   gateway's {"title","detail","code","requestId","origin",
                   "status","statusText"})
  FakeOzon         POST /v1/warehouse/list, /v4/posting/fbs/list (cursor,
                   filter.last_changed_status_date), /v3/posting/fbo/list
                   (offset); buyer chats: /v3/chat/list, /v3/chat/history,
                   /v1/chat/send/message, /v2/chat/read; Client-Id + Api-Key
                   headers (else 403
                   {"code":7,"message":...,"details":[]})

Both record every request (method, path, query, headers, JSON body, time)
and can be told to refuse the next matching request(s) with a status,
headers and body (`refuse(path, 429, headers={...}, times=1)`).
"""

import datetime
import email
import email.policy
import json
import threading
import time
import urllib.parse

from .fakes import FakeHandler, FakeServer, closed_at_end


def iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def parse_iso(s):
    s = s.replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(s).timestamp()


class Req:
    def __init__(self, method, path, query, headers, body, at):
        self.method, self.path, self.query = method, path, query
        self.headers, self.body, self.at = headers, body, at
        self.status = None

    def __repr__(self):
        return "%s %s %s -> %s" % (self.method, self.path, self.query or self.body, self.status)


class _Handler(FakeHandler):
    def _handle(self, http_method):
        fake = self.server.fake
        u = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(u.query))
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        req = Req(http_method, u.path, query, {k.lower(): v for k, v in self.headers.items()},
                  body, time.monotonic())
        req.raw = raw
        with fake.cond:
            fake.requests.append(req)
            refusal = fake._take_refusal(u.path)
        if refusal:
            status, headers, obj = refusal
        else:
            status, headers, obj = fake.answer(req)
        req.status = status
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        with fake.cond:
            fake.cond.notify_all()


class _Fake(FakeServer):
    handler = _Handler

    def __init__(self):
        self.refusals = []
        self.lock = threading.Lock()
        FakeServer.__init__(self)

    def refuse(self, path, status, headers=None, body=None, times=1, after=0):
        """The next `times` requests to path (after letting `after` through)
        are answered status/headers/body instead."""
        with self.cond:
            self.refusals.append({"path": path, "status": status, "headers": headers or {},
                                  "body": body if body is not None else {}, "times": times,
                                  "after": after})

    def _take_refusal(self, path):
        for r in self.refusals:
            if r["path"] == path and r["times"] > 0:
                if r["after"] > 0:
                    r["after"] -= 1
                    return None
                r["times"] -= 1
                return r["status"], r["headers"], r["body"]
        return None

    def calls(self, path):
        with self.cond:
            return [r for r in self.requests if r.path == path]


# ---- Wildberries -----------------------------------------------------------------------

WB_TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJlbnQiOjEsImlkIjoiZWYtdGVzdCJ9.fake-wb-signature-0123456789"


class FakeWildberries(_Fake):
    label = "fake Wildberries"

    def __init__(self, token=WB_TOKEN):
        self.token = token
        self.orders = {}  # id -> {order fields..., "_supplier", "_wb"}
        self.chats = {}  # chatID -> {"replySign", "client", "rid"}
        self.events = []  # buyer-chat events, oldest first
        self.sent_messages = []  # (chatID, text) the seller sent
        self.chat_seq = 0
        self.last_ts = 0
        _Fake.__init__(self)

    def add_order(self, oid, created=None, supplier="new", wb="waiting", price=129900,
                  nm=123456789, article="shirt-blue-42", rid=None):
        created = created if created is not None else time.time() - 3600
        with self.cond:
            self.orders[oid] = {
                "address": None, "scanPrice": None, "deliveryType": "fbs",
                "supplyId": "", "orderUid": "uid%d" % oid, "article": article,
                "colorCode": "", "rid": rid or "rid-%d.0.0" % oid,
                "createdAt": iso(created), "offices": ["Москва"],
                "skus": ["20000%08d" % oid], "id": oid, "warehouseId": 658434,
                "nmId": nm, "chrtId": 987654321, "price": price,
                "convertedPrice": price, "currencyCode": 643, "convertedCurrencyCode": 643,
                "cargoType": 1, "isZeroOrder": False,
                "_supplier": supplier, "_wb": wb, "_created": created,
            }

    def set_status(self, oid, supplier, wb):
        with self.cond:
            self.orders[oid]["_supplier"] = supplier
            self.orders[oid]["_wb"] = wb

    # -- buyer chats (buyer-chat-api) --

    def buyer_says(self, chat, text, client="186132", name="Никита", rid=None):
        """A buyer's message in chat (created on its first message); returns
        the event id. rid: the order (srid) the chat was opened from."""
        with self.cond:
            self.chat_seq += 1
            ts = max(int(time.time() * 1000), self.last_ts + 1)
            self.last_ts = ts
            new = chat not in self.chats
            self.chats.setdefault(chat, {"replySign": "%s:sign-%d" % (chat, len(self.chats) + 1),
                                         "client": client, "rid": rid})
            msg = {"text": text, "attachments": {}}
            if rid:
                msg["attachments"]["goodCard"] = {"date": iso(time.time() - 86400),
                                                  "needRefund": False, "nmID": 123456789,
                                                  "price": 1299, "priceCurrency": "RUB",
                                                  "rid": rid, "size": "0", "statusID": 1}
            ev = {"chatID": chat, "eventID": "ev-%06d" % self.chat_seq,
                  "eventType": "message", "isNewChat": new, "message": msg,
                  "source": "rusite", "addTimestamp": ts, "addTime": iso(ts / 1000),
                  "replySign": self.chats[chat]["replySign"], "sender": "client",
                  "clientID": client, "clientName": name}
            self.events.append(ev)
            return ev["eventID"]

    def sent(self, chat=None):
        """Texts the seller sent (accepted), in order: [(chat, text)]."""
        with self.cond:
            return [(c, t) for c, t in self.sent_messages if chat is None or c == chat]

    def _events(self, q):
        try:
            nxt = int(q.get("next", "0"))
        except ValueError:
            return 400, {}, {"result": {}, "errors": ["next: not a number"]}
        with self.cond:
            page = [e for e in self.events if e["addTimestamp"] > nxt][:100]
        return 200, {}, {"result": {"next": page[-1]["addTimestamp"] if page else nxt,
                                    "newestEventTime": page[-1]["addTime"] if page else None,
                                    "oldestEventTime": page[0]["addTime"] if page else None,
                                    "totalEvents": len(page), "events": page},
                         "errors": []}

    def _message(self, req):
        ctype = req.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            return 400, {}, {"result": {}, "errors": ["Content-Type must be "
                                                      "multipart/form-data"]}
        msg = email.message_from_bytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" +
                                       req.raw, policy=email.policy.HTTP)
        fields = {p.get_param("name", header="content-disposition"):
                  p.get_payload(decode=True).decode("utf-8") for p in msg.iter_parts()}
        sign, text = fields.get("replySign"), fields.get("message")
        with self.cond:
            chat = next((c for c, v in self.chats.items() if v["replySign"] == sign), None)
            if chat is None:
                return 400, {}, {"result": {}, "errors": ["replySign: unknown chat"]}
            if not text or len(text) > 1000:
                return 400, {}, {"result": {}, "errors": ["message: 1..1000 characters"]}
            self.sent_messages.append((chat, text))
            ts = max(int(time.time() * 1000), self.last_ts + 1)
            self.last_ts = ts
            self.chat_seq += 1
            self.events.append({"chatID": chat, "eventID": "ev-%06d" % self.chat_seq,
                                "eventType": "message", "isNewChat": False,
                                "message": {"text": text}, "source": "seller-portal",
                                "addTimestamp": ts, "addTime": iso(ts / 1000),
                                "sender": "seller"})
        return 200, {}, {"result": {"addTime": ts, "chatID": chat}, "errors": []}

    def answer(self, req):
        if req.headers.get("authorization") != "Bearer " + self.token:
            return 401, {}, {"title": "unauthorized", "detail": "token is malformed: could "
                             "not parse the token", "code": "07e4668e--a53a3d31f8b0-[UK-oGU7D]",
                             "requestId": "0c1d2f6a", "origin": "s2s-api-auth-marketplace",
                             "status": 401, "statusText": "Unauthorized",
                             "timestamp": iso(time.time())}
        if req.path == "/ping" and req.method == "GET":
            return 200, {}, {"TS": iso(time.time()), "Status": "OK"}
        if req.path == "/api/v3/orders" and req.method == "GET":
            return self._orders(req.query)
        if req.path == "/api/v3/orders/status" and req.method == "POST":
            return self._status(req.body)
        if req.path == "/api/v1/seller/events" and req.method == "GET":
            return self._events(req.query)
        if req.path == "/api/v1/seller/message" and req.method == "POST":
            return self._message(req)
        return 404, {}, {"code": "NotFound", "message": "Not found"}

    def _orders(self, q):
        try:
            limit, nxt = int(q["limit"]), int(q["next"])
            frm, to = int(q.get("dateFrom", 0)), int(q.get("dateTo", 2 ** 40))
        except (KeyError, ValueError):
            return 400, {}, {"code": "IncorrectParameter", "message": "Передан некорректный "
                             "параметр"}
        if not 1 <= limit <= 1000 or to - frm > 30 * 86400 + 60:
            return 400, {}, {"code": "IncorrectParameter", "message": "limit 1..1000, "
                             "dateFrom..dateTo at most 30 days"}
        with self.cond:
            rows = sorted((o for o in self.orders.values()
                           if frm <= o["_created"] <= to and o["id"] > nxt),
                          key=lambda o: o["id"])[:limit]
            page = [{k: v for k, v in o.items() if not k.startswith("_")} for o in rows]
        return 200, {}, {"next": page[-1]["id"] if page else nxt, "orders": page}

    def _status(self, body):
        ids = (body or {}).get("orders")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 1000:
            return 400, {}, {"code": "IncorrectRequestBody", "message": "orders: 1..1000 ids"}
        with self.cond:
            out = [{"id": i, "supplierStatus": self.orders[i]["_supplier"],
                    "wbStatus": self.orders[i]["_wb"]} for i in ids if i in self.orders]
        return 200, {}, {"orders": out}


# ---- Ozon --------------------------------------------------------------------------------

OZON_CLIENT_ID = "836492"
OZON_API_KEY = "5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c"


class FakeOzon(_Fake):
    label = "fake Ozon"

    def __init__(self, client_id=OZON_CLIENT_ID, api_key=OZON_API_KEY):
        self.client_id, self.api_key = client_id, api_key
        self.postings = {}  # posting_number -> posting (+ "_scheme", "_changed")
        self.chats = {}  # chat_id -> {"created_at", "messages", "read_upto"}
        self.sent_messages = []  # (chat_id, text)
        self.msg_seq = 3000000000817031942
        _Fake.__init__(self)

    def add_posting(self, number, scheme="fbs", status="awaiting_packaging", created=None,
                    price="1390.000000", qty=1, name="Футболка синяя", offer="tee-blue-m",
                    sku=180550365):
        created = created if created is not None else time.time() - 7200
        order_number = number.rsplit("-", 1)[0]
        p = {"posting_number": number, "order_id": abs(hash(order_number)) % 10 ** 9,
             "order_number": order_number, "status": status, "substatus": "",
             "in_process_at": iso(created), "shipment_date": iso(created + 86400),
             "delivering_date": None,
             "products": [{"price": price, "offer_id": offer, "name": name, "sku": sku,
                           "quantity": qty, "currency_code": "RUB"}],
             "_scheme": scheme, "_changed": time.time(), "_created": created}
        if scheme == "fbo":
            p["created_at"] = iso(created)
        with self.cond:
            self.postings[number] = p

    def set_status(self, number, status):
        with self.cond:
            self.postings[number]["status"] = status
            self.postings[number]["_changed"] = time.time()
            if status == "delivering":
                self.postings[number]["delivering_date"] = iso(time.time())

    # -- buyer chats --

    def buyer_says(self, chat, text, user="15", order_number=None):
        """A buyer's message in chat (opened on its first message); returns
        its message_id (an int, as Ozon sends it)."""
        with self.cond:
            self.msg_seq += 1
            c = self.chats.setdefault(chat, {"created_at": iso(time.time()), "messages": [],
                                             "read_upto": 0})
            m = {"message_id": self.msg_seq, "user": {"id": user, "type": "Customer"},
                 "created_at": iso(time.time()), "data": [text], "is_image": False,
                 "is_read": False, "moderate_image_status": "",
                 "context": {"order_number": order_number or "", "sku": ""}}
            c["messages"].append(m)
            return m["message_id"]

    def sent(self, chat=None):
        with self.cond:
            return [(c, t) for c, t in self.sent_messages if chat is None or c == chat]

    def _unread(self, c):
        return [m for m in c["messages"]
                if m["user"]["type"] == "Customer" and m["message_id"] > c["read_upto"]]

    def _chat_list(self, b):
        only = ((b.get("filter") or {}).get("unread_only")) is True
        with self.cond:
            out = []
            for cid, c in sorted(self.chats.items()):
                unread = self._unread(c)
                if only and not unread:
                    continue
                out.append({"chat": {"chat_id": cid, "chat_status": "Opened",
                                     "chat_type": "Buyer_Seller",
                                     "created_at": c["created_at"]},
                            "first_unread_message_id": unread[0]["message_id"] if unread else 0,
                            "last_message_id": c["messages"][-1]["message_id"],
                            "unread_count": len(unread)})
        return 200, {}, {"chats": out, "total_unread_count": sum(o["unread_count"] for o in out),
                         "cursor": "", "has_next": False}

    def _chat_history(self, b):
        cid, frm, limit = b.get("chat_id"), b.get("from_message_id"), b.get("limit", 50)
        with self.cond:
            c = self.chats.get(cid)
            if c is None:
                return 404, {}, {"code": 5, "message": "chat not found", "details": []}
            rows = [m for m in c["messages"] if frm is None or m["message_id"] >= int(frm)]
            page = rows[:limit]
            return 200, {}, {"has_next": len(rows) > limit, "messages": page}

    def _chat_send(self, b):
        cid, text = b.get("chat_id"), b.get("text")
        with self.cond:
            c = self.chats.get(cid)
            if c is None:
                return 404, {}, {"code": 5, "message": "chat not found", "details": []}
            if not isinstance(text, str) or not 1 <= len(text) <= 1000:
                return 400, {}, {"code": 3, "message": "text: 1..1000 characters",
                                 "details": []}
            self.sent_messages.append((cid, text))
            self.msg_seq += 1
            c["messages"].append({"message_id": self.msg_seq,
                                  "user": {"id": OZON_CLIENT_ID, "type": "Seller"},
                                  "created_at": iso(time.time()), "data": [text],
                                  "is_image": False, "is_read": True})
        return 200, {}, {"result": "success"}

    def _chat_read(self, b):
        cid, frm = b.get("chat_id"), b.get("from_message_id")
        with self.cond:
            c = self.chats.get(cid)
            if c is None or not isinstance(frm, int):
                return 400, {}, {"code": 3, "message": "chat_id and from_message_id",
                                 "details": []}
            c["read_upto"] = max(c["read_upto"], frm)
            return 200, {}, {"unread_count": len(self._unread(c))}

    def answer(self, req):
        if req.headers.get("client-id") != self.client_id or \
                req.headers.get("api-key") != self.api_key:
            return 403, {}, {"code": 7, "message": "Invalid Api-Key, please contact support",
                             "details": []}
        if req.method != "POST":
            return 405, {}, {"code": 12, "message": "Method Not Allowed", "details": []}
        if req.path == "/v1/warehouse/list":
            return 200, {}, {"result": [{"warehouse_id": 15588127982000, "name": "Склад",
                                         "is_rfbs": False}]}
        if req.path == "/v4/posting/fbs/list":
            return self._fbs(req.body or {})
        if req.path == "/v3/posting/fbo/list":
            return self._fbo(req.body or {})
        chat = {"/v3/chat/list": self._chat_list, "/v3/chat/history": self._chat_history,
                "/v1/chat/send/message": self._chat_send, "/v2/chat/read": self._chat_read}
        if req.path in chat:
            return chat[req.path](req.body or {})
        return 404, {}, {"code": 5, "message": "Not Found", "details": []}

    def _public(self, p):
        return {k: v for k, v in p.items() if not k.startswith("_")}

    def _window(self, f):
        try:
            return parse_iso(f["since"]), parse_iso(f["to"])
        except (KeyError, ValueError, TypeError):
            return None

    def _fbs(self, b):
        f = b.get("filter") or {}
        win = self._window(f)
        limit = b.get("limit")
        if win is None or not isinstance(limit, int) or not 1 <= limit <= 100:
            return 400, {}, {"code": 3, "message": "filter.since, filter.to and limit 1..100 "
                             "are required", "details": []}
        ch = f.get("last_changed_status_date") or {}
        ch_from = parse_iso(ch["from"]) if ch.get("from") else 0
        ch_to = parse_iso(ch["to"]) if ch.get("to") else 2 ** 40
        start = int(b.get("cursor") or "0")
        with self.cond:
            rows = sorted((p for p in self.postings.values()
                           if p["_scheme"] == "fbs" and win[0] <= p["_created"] <= win[1]
                           and ch_from <= p["_changed"] <= ch_to),
                          key=lambda p: p["posting_number"])
            page = [self._public(p) for p in rows[start:start + limit]]
        more = start + limit < len(rows)
        return 200, {}, {"postings": page, "cursor": str(start + limit) if more else "",
                         "has_next": more}

    def _fbo(self, b):
        f = b.get("filter") or {}
        win = self._window(f)
        limit, offset = b.get("limit"), b.get("offset", 0)
        if win is None or not isinstance(limit, int) or not 1 <= limit <= 1000:
            return 400, {}, {"code": 3, "message": "filter.since, filter.to and limit "
                             "1..1000 are required", "details": []}
        with self.cond:
            rows = sorted((p for p in self.postings.values()
                           if p["_scheme"] == "fbo" and win[0] <= p["_created"] <= win[1]),
                          key=lambda p: p["posting_number"])
            page = [self._public(p) for p in rows[offset:offset + limit]]
        return 200, {}, {"result": page}


def fake_wildberries(**kw):
    """A FakeWildberries closed when the test ends."""
    return closed_at_end(FakeWildberries(**kw))


def fake_ozon(**kw):
    """A FakeOzon closed when the test ends."""
    return closed_at_end(FakeOzon(**kw))
