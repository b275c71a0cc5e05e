"""09-whatsapp-inbound: WhatsApp Cloud API webhooks as Meta sends them
(compact, non-ASCII as \\uXXXX, '/' as \\/, signed over those bytes) are
verified, and every message type is stored once, on the right customer and
business number, with the fields a business needs; bad signatures, hostile
bodies and payloads for other numbers store nothing and never get a 5xx."""

import json
import threading

from eftest import assert_eq, assert_status, count, fail, lit, nothing_stored, parallel, psql, psql1
from wa_helpers import (APP_SECRET, DISPLAY_A, PNID_A, PNID_B, PNID_UNKNOWN, VERIFY_TOKEN, WABA_ID,
                        change, chat_key, contact, entry, inbound, message, meta_bytes, payload,
                        post_wa, post_wa_ok, sign, status, text, value, wa_count, wa_gateway,
                        wa_row, wa_rows, wamid)

ANNA = "79161234567"
ANNA_NAME = "Анна Иванова"


def _media_url(mid):
    return "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=%s&ext=1732&hash=ATt" \
           "-xJkQ/Zq+w" % mid


# ---- verification --------------------------------------------------------------


def test_verification_handshake():
    with wa_gateway() as gw:
        r = gw.get("/webhook/whatsapp?hub.mode=subscribe&hub.challenge=1158201444"
                   "&hub.verify_token=" + VERIFY_TOKEN)
        assert_status(r, 200, "right verify token")
        assert_eq(r.body, b"1158201444", "the challenge echoed")
        assert_eq((r.headers.get("content-type") or "").split(";")[0], "text/plain",
                  "content type")
        for q, what in [
                ("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=wrong", "wrong"),
                ("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=" +
                 VERIFY_TOKEN[:-1], "a prefix of the token"),
                ("hub.mode=subscribe&hub.challenge=1158201444", "no token"),
                ("hub.mode=unsubscribe&hub.challenge=1158201444&hub.verify_token=" +
                 VERIFY_TOKEN, "another mode"),
                ("hub.challenge=1158201444&hub.verify_token=" + VERIFY_TOKEN, "no mode")]:
            r = gw.get("/webhook/whatsapp?" + q)
            assert_status(r, 403, what)
            if b"1158201444" in r.body:
                fail("%s: the challenge was echoed on a refusal" % what)
        if VERIFY_TOKEN in gw.log_text():
            fail("the verify token appears in the log")


# ---- signatures ----------------------------------------------------------------


def test_bad_signatures_are_refused_and_nothing_is_stored():
    msg = text(ANNA, "Здравствуйте! Где мой заказ? Ссылка: https://shop.example/orders/42 🙏")
    body = inbound([msg], [contact(ANNA, ANNA_NAME)])
    raw = meta_bytes(body)
    if b"\\/" not in raw or b"\\u0417" not in raw:
        fail("the test body is not escaped as Meta escapes it: %r" % raw[:200])
    good = sign(raw)
    unescaped = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    cases = [
        (None, raw, "no X-Hub-Signature-256"),
        ("", raw, "an empty header"),
        (sign(raw, APP_SECRET + "x"), raw, "another app secret"),
        (good[len("sha256="):], raw, "no sha256= prefix"),
        ("sha1=" + good[len("sha256="):], raw, "sha1= prefix"),
        (good[:-2], raw, "a truncated digest"),
        (good + "00", raw, "a digest with extra digits"),
        (good[:-1] + ("0" if good[-1] != "0" else "1"), raw, "one digit wrong"),
        (good, raw.replace(b"42", b"43"), "the body changed after signing"),
        (good, unescaped, "the body re-serialized (unescaped) after signing"),
        (good, json.dumps(body, separators=(",", ":")).encode(), "'/' unescaped after signing"),
        (sign(unescaped), raw, "signed over the unescaped text"),
        (good, raw + b"\n", "a newline added after signing"),
    ]
    with wa_gateway() as gw:
        for sig, data, what in cases:
            r = post_wa(gw, data, signature=sig)
            assert_status(r, 401, what)
        nothing_stored(gw.db, "after bad signatures")
        if APP_SECRET in gw.log_text():
            fail("the app secret appears in the log")
        # The genuine delivery is accepted and stored, byte-exact.
        assert_status(post_wa(gw, raw, signature=good), 200, "the genuine body")
        row = wa_row(gw.db, msg["id"])
        assert_eq(row["content"], msg["text"]["body"], "content decoded from \\u and \\/ escapes")
        if "/" not in row["pmid"] or "\\" in row["pmid"]:
            fail("wamid not decoded: %r" % row["pmid"])


# ---- every message type ---------------------------------------------------------------


def test_every_message_type_is_stored_with_its_fields():
    c = [contact(ANNA, ANNA_NAME)]
    bot_msg = wamid("15550783881")
    mids = {}
    sent = {}

    def send(key, mtype, obj, **kw):
        m = message(mtype, ANNA, obj, **kw)
        mids[key] = m["id"]
        sent[key] = m
        post_wa_ok(gw, inbound([m], c), key)
        return wa_row(gw.db, m["id"])

    with wa_gateway() as gw:
        r = send("text", "text", {"body": "Привет! Вот мой вопрос 😊"})
        assert_eq(r["content"], "Привет! Вот мой вопрос 😊", "text content")
        assert_eq((r["chat_id"], r["customer"], r["name"]), (chat_key(ANNA), ANNA, ANNA_NAME),
                  "conversation, customer, profile name")
        md = r["metadata"]
        assert_eq((md.get("type"), md.get("phone_number_id"), md.get("waba_id"),
                   md.get("display_phone_number")), ("text", PNID_A, WABA_ID, DISPLAY_A),
                  "text metadata")
        assert_eq(md.get("date"), int(sent["text"]["timestamp"]), "date (a string on the wire)")

        r = send("reply", "text", {"body": "а это ответ на ваше сообщение"},
                 context={"from": DISPLAY_A, "id": bot_msg})
        assert_eq((r["metadata"].get("reply_to") or {}).get("platform_message_id"), bot_msg,
                  "reply_to of a reply")
        assert_eq((r["metadata"].get("context") or {}).get("from"), DISPLAY_A, "context.from")

        media = {
            "image": ({"caption": "Фото товара / брак на рукаве", "mime_type": "image/jpeg",
                       "sha256": "HgJ/mQkZc+Ovq2t0Rx1x9n2bQk3a5QG2A2yGJ0bLfa4=",
                       "id": "1479537139650973"}, "Фото товара / брак на рукаве"),
            "voice": ({"mime_type": "audio/ogg; codecs=opus", "sha256": "v0Ic3/7bz+Q=",
                       "id": "1003383421387256", "voice": True}, ""),
            "video": ({"caption": "видео распаковки", "mime_type": "video/mp4",
                       "sha256": "n8Zz/8Q=", "id": "913318750862093"}, "видео распаковки"),
            "document": ({"caption": "счёт", "filename": "Счёт №17.pdf",
                          "mime_type": "application/pdf", "sha256": "kRpL/0Q=",
                          "id": "2183963968716016"}, "счёт"),
            "sticker": ({"mime_type": "image/webp", "sha256": "sT/1ck+Er=",
                         "id": "1055305845879735", "animated": False}, ""),
        }
        for key, (obj, content) in media.items():
            mtype = "audio" if key == "voice" else key
            obj = dict(obj, url=_media_url(obj["id"]))
            r = send(key, mtype, obj)
            assert_eq(r["content"], content, "%s content (the caption)" % key)
            got = r["metadata"].get("media") or {}
            for k in ("id", "mime_type", "sha256", "filename", "voice", "animated", "url"):
                if k in obj:
                    assert_eq(got.get(k), obj[k], "%s media.%s" % (key, k))
            assert_eq(got.get("type"), mtype, "%s media.type" % key)
            assert_eq(r["metadata"].get("type"), mtype, "%s type" % key)

        r = send("location", "location", {"latitude": 55.7539303, "longitude": 37.620795,
                                          "name": "Красная площадь", "address": "Москва, Россия",
                                          "url": "https://maps.example/?q=55.75,37.62"})
        loc = r["metadata"].get("location") or {}
        if abs(loc.get("latitude", 0) - 55.7539303) > 1e-7 or \
                abs(loc.get("longitude", 0) - 37.620795) > 1e-7:
            fail("location %r" % loc)
        assert_eq((loc.get("name"), loc.get("address")), ("Красная площадь", "Москва, Россия"),
                  "location name/address")
        if "Красная площадь" not in r["content"]:
            fail("location content %r" % r["content"])

        cards = [{"name": {"formatted_name": "Мария Смирнова", "first_name": "Мария",
                           "last_name": "Смирнова"},
                  "phones": [{"phone": "+7 916 765-43-21", "type": "CELL", "wa_id": "79167654321"}],
                  "emails": [{"email": "maria@example.ru", "type": "WORK"}]},
                 {"name": {"formatted_name": "Склад", "first_name": "Склад"},
                  "phones": [{"phone": "+7 495 000-00-00", "type": "WORK"}]}]
        r = send("contacts", "contacts", None, contacts=cards)
        assert_eq(r["content"], "Мария Смирнова, Склад", "contacts content")
        got = r["metadata"].get("contacts") or []
        assert_eq([x["phones"][0]["phone"] for x in got], ["+7 916 765-43-21", "+7 495 000-00-00"],
                  "contact cards kept")

        r = send("button_reply", "interactive",
                 {"type": "button_reply", "button_reply": {"id": "menu_delivery",
                                                           "title": "Доставка"}},
                 context={"from": DISPLAY_A, "id": bot_msg})
        assert_eq(r["content"], "Доставка", "button_reply: the title is the text")
        assert_eq(r["metadata"].get("payload"), "menu_delivery", "button_reply payload id")
        assert_eq((r["metadata"].get("interactive") or {}).get("type"), "button_reply",
                  "interactive.type")

        r = send("list_reply", "interactive",
                 {"type": "list_reply", "list_reply": {"id": "menu_returns", "title": "Возврат",
                                                       "description": "Как вернуть товар"}},
                 context={"from": DISPLAY_A, "id": bot_msg})
        assert_eq((r["content"], r["metadata"].get("payload")), ("Возврат", "menu_returns"),
                  "list_reply title and id")
        assert_eq((r["metadata"].get("interactive") or {}).get("description"),
                  "Как вернуть товар", "list_reply description")

        r = send("button", "button", {"payload": "reengage_yes", "text": "Да, продолжить"},
                 context={"from": DISPLAY_A, "id": bot_msg})
        assert_eq((r["content"], r["metadata"].get("payload")), ("Да, продолжить",
                                                                 "reengage_yes"),
                  "template quick-reply")

        order = {"catalog_id": "1234567890123456", "text": "Хочу заказать платье",
                 "product_items": [{"product_retailer_id": "SKU-DRESS-42", "quantity": 2,
                                    "item_price": 2990, "currency": "RUB"}]}
        r = send("order", "order", order)
        assert_eq(r["content"], "Хочу заказать платье", "order text")
        got = r["metadata"].get("order") or {}
        assert_eq((got.get("catalog_id"), got.get("product_items")),
                  (order["catalog_id"], order["product_items"]), "order kept")

        m = message("unsupported", ANNA, {"type": "poll"}, errors=[{
            "code": 131051, "title": "Message type unknown", "message": "Message type unknown",
            "error_data": {"details": "Message type is currently not supported."}}])
        mids["unsupported"] = m["id"]
        post_wa_ok(gw, inbound([m], c), "unsupported")
        r = wa_row(gw.db, m["id"])
        assert_eq(r["content"], "", "unsupported content")
        errs = r["metadata"].get("errors") or []
        assert_eq([e.get("code") for e in errs], [131051], "unsupported keeps its errors")

        r = send("future", "poll_vote", {"poll_id": "p-17", "options": ["красный"]})
        assert_eq(r["content"], "", "an unknown type is a placeholder")
        if "poll_vote" not in json.dumps(r["metadata"], ensure_ascii=False):
            fail("an unknown type's body is not kept: %r" % r["metadata"])

        # Reactions: recorded on the message reacted to, removal too.
        target = mids["text"]
        before = wa_count(gw.db)
        post_wa_ok(gw, inbound([message("reaction", ANNA, {"message_id": target, "emoji": "❤️"})], c))
        reactions = wa_row(gw.db, target)["metadata"].get("reactions")
        assert_eq(reactions, {ANNA: ["❤️"]}, "reaction recorded on its message")
        post_wa_ok(gw, inbound([message("reaction", ANNA, {"message_id": target, "emoji": ""})], c))
        assert_eq(wa_row(gw.db, target)["metadata"].get("reactions"), {ANNA: []},
                  "reaction removed")
        post_wa_ok(gw, inbound([message("reaction", ANNA, {"message_id": target, "emoji": "👍"})], c))
        post_wa_ok(gw, inbound([message("reaction", ANNA, {"message_id": target})], c))
        assert_eq(wa_row(gw.db, target)["metadata"].get("reactions"), {ANNA: []},
                  "reaction removed (no emoji)")
        assert_eq(wa_count(gw.db), before, "reactions are not messages of their own")

        n = len(mids)
        assert_eq(wa_count(gw.db), n, "one row per message")
        convs = psql(gw.db, "SELECT chat_id, messages_count FROM conversations")
        assert_eq(convs, [[chat_key(ANNA), str(n)]], "one conversation, messages_count")
        assert_eq(count(gw.db, "users WHERE platform = 'whatsapp'"), 1, "one customer")


def test_changed_number_remaps_the_customer():
    old, new = "79160000001", "79160000002"
    with wa_gateway() as gw:
        m1 = text(old, "Здравствуйте, это мой старый номер")
        post_wa_ok(gw, inbound([m1], [contact(old, "Ольга")]))
        sysmsg = message("system", old, {"body": "\u200eUser A changed from \u200e%s to \u200e%s"
                                                 % (old, new), "wa_id": new,
                                         "type": "user_changed_number"})
        # System messages come without a contacts array.
        post_wa_ok(gw, payload([entry([change(value(PNID_A, messages=[sysmsg]))])]), "system message")
        m2 = text(new, "А теперь пишу с нового")
        post_wa_ok(gw, inbound([m2], [contact(new, "Ольга")]))
        users = psql(gw.db, "SELECT platform_user_id FROM users WHERE platform = 'whatsapp'")
        assert_eq(users, [[new]], "the customer now has the new number")
        convs = psql(gw.db, "SELECT chat_id FROM conversations")
        assert_eq(convs, [[chat_key(new)]], "the conversation follows the number")
        r1, r2 = wa_row(gw.db, m1["id"]), wa_row(gw.db, m2["id"])
        assert_eq(r1["chat_id"], r2["chat_id"], "old and new messages in one conversation")


# ---- batches, duplicates, identities ------------------------------------------------------


def test_batches_of_entries_changes_messages_and_statuses():
    a, b, cc = "79161111111", "79162222222", "79163333333"
    ms = [text(a, "первое от A"), text(b, "первое от B"), text(a, "второе от A")]
    mb = [text(cc, "на второй номер")]
    body = payload([
        entry([change(value(PNID_A, contacts=[contact(a, "Алексей"), contact(b, "Борис")],
                            messages=ms)),
               change({"event": "VERIFIED_ACCOUNT", "ban_info": {}}, field="account_update"),
               change(value(PNID_A, statuses=[status(wamid(), "delivered", a)]))]),
        entry([change(value(PNID_B, contacts=[contact(cc, "Вера")], messages=mb)),
               change(value(PNID_B, statuses=[status(wamid(), "read", cc),
                                              status(wamid(), "sent", cc)]))],
              waba="102290129340399"),
    ])
    with wa_gateway() as gw:
        post_wa_ok(gw, body, "the batch")
        rows = wa_rows(gw.db)
        assert_eq(sorted(r["pmid"] for r in rows), sorted(m["id"] for m in ms + mb),
                  "every message of the batch stored")
        by = {r["pmid"]: r for r in rows}
        assert_eq(by[ms[0]["id"]]["chat_id"], chat_key(a), "A on number A")
        assert_eq(by[ms[1]["id"]]["name"], "Борис", "B's profile name")
        assert_eq(by[mb[0]["id"]]["chat_id"], chat_key(cc, PNID_B), "C on number B")
        assert_eq(by[mb[0]["id"]]["metadata"].get("waba_id"), "102290129340399", "second WABA")
        a_rows = [r["content"] for r in rows if r["customer"] == a]
        assert_eq(a_rows, ["первое от A", "второе от A"], "A's messages in order")
        assert_eq(count(gw.db, "conversations"), 3, "conversations")
        # The same batch again: nothing new.
        post_wa_ok(gw, body, "the batch redelivered")
        assert_eq(wa_count(gw.db), 4, "rows after the redelivery")


def test_duplicates_sequential_and_concurrent_are_stored_once():
    m = text(ANNA, "повтор доставки 🔁")
    body = inbound([m], [contact(ANNA, ANNA_NAME)])
    with wa_gateway() as gw:
        for i in range(3):
            post_wa_ok(gw, body, "delivery %d" % (i + 1))
        assert_eq(wa_count(gw.db, "platform_message_id = %s" % lit(m["id"])), 1, "rows")
        # Ten concurrent redeliveries of a new message.
        m2 = text(ANNA, "одновременно")
        body2 = inbound([m2], [contact(ANNA, ANNA_NAME)])
        barrier = threading.Barrier(10)

        def deliver(_):
            barrier.wait(10)
            return post_wa(gw, body2).status
        assert_eq(parallel(deliver, range(10), workers=10), [200] * 10, "concurrent deliveries")
        assert_eq(wa_count(gw.db, "platform_message_id = %s" % lit(m2["id"])), 1, "rows")
        # A later batch carrying an old message and a new one.
        m3 = text(ANNA, "новое")
        post_wa_ok(gw, inbound([m, m3], [contact(ANNA, ANNA_NAME)]))
        assert_eq(wa_count(gw.db), 3, "rows")
        assert_eq(psql1(gw.db, "SELECT messages_count FROM conversations"), "3", "messages_count")


def test_bsuid_customers_are_keyed_on_the_bsuid_and_never_merged():
    u1, u2 = "US.13491208655302741918", "US.99887766554433221100"
    m1 = text("", "Привет, я без номера", from_user_id=u1)
    m2 = text("", "И я тоже", from_user_id=u2)
    with wa_gateway() as gw:
        post_wa_ok(gw, inbound([m1, m2], [contact("", "Первый", user_id=u1, username="first.user"),
                                   contact("", "Второй", user_id=u2, username="second.user")]))
        post_wa_ok(gw, inbound([text("", "ещё раз", from_user_id=u1)],
                        [contact("", "Первый", user_id=u1, username="first.user")]))
        users = psql(gw.db, "SELECT platform_user_id, name, username FROM users WHERE "
                            "platform = 'whatsapp' ORDER BY platform_user_id")
        assert_eq(users, [[u1, "Первый", "first.user"], [u2, "Второй", "second.user"]],
                  "two customers keyed on their BSUIDs")
        convs = psql(gw.db, "SELECT chat_id, messages_count FROM conversations ORDER BY chat_id")
        assert_eq(convs, [[chat_key(u1), "2"], [chat_key(u2), "1"]], "two conversations")
        if count(gw.db, "users WHERE platform_user_id = ''"):
            fail("a customer was keyed on the empty wa_id")


# ---- what is acknowledged but not stored ----------------------------------------------------


def test_unknown_number_is_refused_other_fields_are_acknowledged_not_stored():
    with wa_gateway() as gw:
        # An event for a number no integration serves is refused (never
        # acknowledged and dropped): Meta redelivers it once the number is
        # connected.
        r = post_wa(gw, inbound([text(ANNA, "на чужой номер")], [contact(ANNA, ANNA_NAME)],
                                pnid=PNID_UNKNOWN))
        assert_status(r, 422, "unknown number refused")
        gw.wait_log(PNID_UNKNOWN, timeout=5)
        others = [
            change({"event": "FLAGGED", "phone_number": "15550783881"}, field="account_update"),
            change({"event": "APPROVED", "message_template_id": 1200345678,
                    "message_template_name": "reengage", "message_template_language": "ru",
                    "reason": "NONE"}, field="message_template_status_update"),
            change({"messaging_product": "whatsapp", "metadata": {
                "display_phone_number": DISPLAY_A, "phone_number_id": PNID_A},
                "user_preferences": [{"wa_id": ANNA, "detail": "User requested to stop "
                                      "marketing messages", "category": "marketing_messages",
                                      "value": "stop", "timestamp": 1731705721}]},
                field="user_preferences"),
            change({"messaging_product": "whatsapp", "metadata": {
                "display_phone_number": DISPLAY_A, "phone_number_id": PNID_A},
                "errors": [{"code": 131000, "title": "Something went wrong",
                            "message": "Something went wrong",
                            "error_data": {"details": "Unsupported webhook payload"}}]}),
        ]
        for ch in others:
            post_wa_ok(gw, payload([entry([ch])]), "field %s" % ch["field"])
        nothing_stored(gw.db, "after other numbers and fields")
        # A batch mixing an unknown number and ours is refused whole: nothing
        # of it is stored, so its redelivery stores each message once.
        mine = text(ANNA, "на наш номер")
        body = payload([entry([change(value(PNID_UNKNOWN, contacts=[contact(ANNA)],
                                            messages=[text(ANNA, "чужой")])),
                               change(value(PNID_B, contacts=[contact(ANNA)],
                                            messages=[mine]))])])
        r = post_wa(gw, body)
        assert_status(r, 422, "mixed batch refused")
        nothing_stored(gw.db, "after the mixed batch")


def test_hostile_bodies_get_4xx_never_5xx():
    deep = b'{"object":"whatsapp_business_account","entry":[' + b'[' * 5000 + b']' * 5000 + b']}'
    big_text = "я" * (600 * 1024)  # 1.2 MB as UTF-8, more once escaped
    big = meta_bytes(inbound([text(ANNA, big_text)], [contact(ANNA)]))
    bodies = [
        (b'{"object":"whatsapp_business_account","entry":[', "truncated JSON"),
        (b'not json at all', "not JSON"),
        (b'', "an empty body"),
        (b'[]', "an array"),
        (b'{"object":"whatsapp_business_account","entry":{}}', "entry not an array"),
        (b'{"object":"page","entry":[]}', "another object"),
        (deep, "deep nesting"),
        (b'{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":'
         b'"messages","value":{"metadata":{"phone_number_id":"' + PNID_A.encode() +
         b'"},"messages":[{"from":"1","id":"wamid.x","timestamp":"1","type":"text","text":'
         b'{"body":"\xff\xfe"}}]}}]}]}', "invalid UTF-8"),
        (b'{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":'
         b'"messages","value":{"metadata":{"phone_number_id":"' + PNID_A.encode() +
         b'"},"messages":[{"from":"1","id":"wamid.y","timestamp":"1","type":"text","text":'
         b'{"body":"\\ud800"}}]}}]}]}', "a lone surrogate"),
        (meta_bytes(inbound([message("text", ANNA, {"body": "x"}, ts=1731705721)],
                            [contact(ANNA)])), "a numeric timestamp"),
        (big, "a body over 1 MiB"),
    ]
    with wa_gateway() as gw:
        for data, what in bodies:
            r = post_wa(gw, data)  # validly signed
            if not 400 <= r.status < 500:
                fail("%s: expected 4xx, got %d %r" % (what, r.status, r.body[:200]))
        r = post_wa(gw, big)
        assert_status(r, 413, "over 1 MiB")
        nothing_stored(gw.db, "after hostile bodies")
        assert_status(gw.healthz(), 200, "healthz after hostile bodies")
        m = text(ANNA, "а это нормальное сообщение")
        post_wa_ok(gw, inbound([m], [contact(ANNA)]), "a genuine body afterwards")
        wa_row(gw.db, m["id"])
