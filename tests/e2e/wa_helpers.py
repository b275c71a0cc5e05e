"""wa_helpers.py -- WhatsApp Cloud API webhooks as Meta sends them, for the
end-to-end tests (09-*): payload builders, Meta's serialization and
signature, the gateway configured for WhatsApp, and the stored rows.

Meta's webhook bodies are compact JSON with every non-ASCII character
escaped as a lowercase \\uXXXX (astral characters as surrogate pairs) and
'/' escaped as '\\/'; X-Hub-Signature-256 is "sha256=" + the hex
HMAC-SHA256 of those exact bytes under the app secret (PLATFORMS.md B3).
meta_bytes() produces exactly that; post_wa() signs and posts it.
"""

import base64
import hashlib
import hmac
import json
import os
import time

from eftest import Gateway, assert_status, fail, fake_graph, lit, outbound_rows, psql  # noqa: F401

APP_SECRET = "e2e-wa-App-Secret-5f0c2a9d7e3b41c8a6"
VERIFY_TOKEN = "e2e-wa-verify-Token-7731"
WABA_ID = "102290129340398"
PNID_A = "106540352242922"  # the business's first number
DISPLAY_A = "15550783881"
PNID_B = "113300008877221"  # the second number
DISPLAY_B = "15550783882"
PNID_UNKNOWN = "199999999999999"  # a number this gateway does not serve


def meta_bytes(obj):
    """obj serialized the way Meta serializes webhook bodies."""
    s = json.dumps(obj, ensure_ascii=True, separators=(",", ":"))
    return s.replace("/", "\\/").encode("ascii")


def sign(body, secret=APP_SECRET):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


_seq = [int(time.time() * 1000) % 10 ** 9]


def wamid(phone="79161234567"):
    """A new message id in Meta's shape: "wamid." + base64 of a protobuf-ish
    blob; these always contain a '/' and a '+', as real ones often do."""
    _seq[0] += 1
    raw = b"\x1c\x18\x0b" + phone.encode() + b"\x15\x02\x00\x12\x18\x14" + \
        ("%020d" % _seq[0]).encode() + os.urandom(6)
    b = base64.b64encode(raw).decode()
    return "wamid." + b[:10] + "/" + b[10:20] + "+" + b[20:]


def now_ts():
    return str(int(time.time()))


# ---- payload builders ----------------------------------------------------------


def contact(wa_id, name="Анна Иванова", user_id=None, username=None):
    c = {"profile": {"name": name}, "wa_id": wa_id}
    if username is not None:
        c["profile"]["username"] = username
    if user_id is not None:
        c["user_id"] = user_id
    return c


def message(mtype, frm, obj=None, mid=None, ts=None, context=None, from_user_id=None, **extra):
    """One messages[] item; obj is the type's object (e.g. {"body": ..})."""
    m = {"from": frm}
    if from_user_id is not None:
        m["from_user_id"] = from_user_id
    m.update({"id": mid or wamid(frm or "0"), "timestamp": ts or now_ts(), "type": mtype})
    if context is not None:
        m["context"] = context
    if obj is not None:
        m[mtype] = obj
    m.update(extra)
    return m


def text(frm, body, **kw):
    return message("text", frm, {"body": body}, **kw)


def status(mid, st, recipient, ts=None, errors=None, recipient_user_id=None):
    """One statuses[] item, as Meta sends it (per-message pricing)."""
    s = {"id": mid, "status": st, "timestamp": ts or now_ts(), "recipient_id": recipient}
    if recipient_user_id is not None:
        s["recipient_user_id"] = recipient_user_id
    if st in ("sent", "delivered", "read"):
        s["conversation"] = {"id": "0b5d1e7c2a9f4c1d8e6a3b2c1d0e9f8a",
                             "origin": {"type": "service"}}
        s["pricing"] = {"billable": False, "pricing_model": "PMP", "category": "service",
                        "type": "free_customer_service"}
    if errors is not None:
        s["errors"] = errors
    return s


def value(pnid=PNID_A, display=None, contacts=None, messages=None, statuses=None, errors=None):
    v = {"messaging_product": "whatsapp",
         "metadata": {"display_phone_number": display or (DISPLAY_B if pnid == PNID_B
                                                          else DISPLAY_A),
                      "phone_number_id": pnid}}
    if contacts is not None:
        v["contacts"] = contacts
    if messages is not None:
        v["messages"] = messages
    if statuses is not None:
        v["statuses"] = statuses
    if errors is not None:
        v["errors"] = errors
    return v


def change(val, field="messages"):
    return {"value": val, "field": field}


def entry(changes, waba=WABA_ID):
    return {"id": waba, "changes": changes}


def payload(entries):
    return {"object": "whatsapp_business_account", "entry": entries}


def inbound(msgs, contacts, pnid=PNID_A):
    """One entry, one change, the messages of `contacts`."""
    return payload([entry([change(value(pnid, contacts=contacts, messages=msgs))])])


def statuses_payload(sts, pnid=PNID_A):
    return payload([entry([change(value(pnid, statuses=sts))])])


# ---- the gateway -------------------------------------------------------------------


def wa_env(graph=None, numbers=(PNID_A, PNID_B), bot=None, template=None, extra=None):
    e = {"WHATSAPP_APP_SECRET": APP_SECRET, "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
         "WHATSAPP_PHONE_NUMBER_ID": ",".join(numbers)}
    if graph is not None:
        e["WHATSAPP_ACCESS_TOKEN"] = graph.token
        e["WHATSAPP_API_URL"] = graph.url
    if bot:
        e["EF_BOT_FILE"] = bot
    if template:
        e["WHATSAPP_TEMPLATE"] = template
    e.update(extra or {})
    return e


def wa_gateway(graph=None, **kw):
    env = wa_env(graph, **{k: kw.pop(k) for k in ("numbers", "bot", "template", "extra")
                           if k in kw})
    return Gateway(env=env, **kw)


def post_wa(gw, body, signature=True, secret=APP_SECRET, headers=None, timeout=30.0):
    """POST /webhook/whatsapp. body: a dict (serialized as Meta does) or raw
    bytes. signature: True signs the bytes, a string is sent as is, None
    sends no header."""
    raw = body if isinstance(body, (bytes, bytearray)) else meta_bytes(body)
    h = {"Content-Type": "application/json"}
    if signature is True:
        h["X-Hub-Signature-256"] = sign(raw, secret)
    elif signature is not None:
        h["X-Hub-Signature-256"] = signature
    h.update(headers or {})
    return gw.post("/webhook/whatsapp", bytes(raw), h, timeout)


def post_wa_ok(gw, body, what="webhook"):
    """post_wa, which must be answered 200."""
    r = post_wa(gw, body)
    assert_status(r, 200, what)
    return r


# ---- what the store holds -------------------------------------------------------------


def wa_rows(url, where="true"):
    """Inbound WhatsApp rows (oldest first), metadata parsed."""
    rows = psql(url, "SELECT m.platform_message_id, m.content, m.metadata, c.chat_id, "
                     "u.platform_user_id, u.name, u.username, m.intent, m.created_at "
                     "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                     "JOIN users u ON u.id = m.user_id WHERE m.platform = 'whatsapp' AND "
                     "m.direction = 'inbound' AND (%s) ORDER BY m.created_at" % where)
    keys = ["pmid", "content", "metadata", "chat_id", "customer", "name", "username", "intent",
            "created_at"]
    out = []
    for r in rows:
        d = dict(zip(keys, r))
        d["metadata"] = json.loads(d["metadata"]) if d["metadata"] else {}
        out.append(d)
    return out


def wa_row(url, mid):
    rows = wa_rows(url, "m.platform_message_id = %s" % lit(mid))
    if len(rows) != 1:
        fail("expected exactly one inbound WhatsApp row %r, found %d" % (mid, len(rows)))
    return rows[0]


def wa_count(url, where="true"):
    return int(psql(url, "SELECT count(*) FROM messages WHERE platform = 'whatsapp' AND "
                         "direction = 'inbound' AND (%s)" % where)[0][0])


def wa_outbound(url, chat_id=None):
    """Outbound WhatsApp rows (oldest first), metadata parsed."""
    return outbound_rows(url, chat_id, "whatsapp")


def chat_key(customer, pnid=PNID_A):
    """The conversation key of a customer on a business number."""
    return "%s@%s" % (customer, pnid)
