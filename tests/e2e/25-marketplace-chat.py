"""25-marketplace-chat: Wildberries and Ozon buyer chats are channels like Telegram
(issue 10): the gateway polls GET /api/v1/seller/events with its `next`
cursor, stores each buyer message once (its eventID the platform id),
answers with the integration's bot through POST /api/v1/seller/message
(multipart, the chat's replySign), skips the seller's own messages that come
back as events, keeps the order a chat was opened from (goodCard.rid), and a
restart mid-stream neither loses nor repeats a message. A reply the
marketplace refuses is `failed` with its reason. "Где мой заказ?" is
answered from the shop's synced orders (bots/shop.yaml). Ozon: /v3/chat/list
(unread) then /v3/chat/history, replies through /v1/chat/send/message,
handled messages marked read (/v2/chat/read)."""

import json
import time

from eftest import REPO, assert_eq, fail, fresh_db, psql, psql1, wait_until
from api_helpers import add_operator, call, expect, login
from integration_helpers import bot_file, cli, integrations_gateway
from lib.fake_marketplaces import (OZON_API_KEY, OZON_CLIENT_ID, WB_TOKEN, fake_ozon,
                                   fake_wildberries)

SHOP_BOT = REPO / "bots" / "shop.yaml"


def add_shop(db, name="wb-shop"):
    r = cli(db, "add", "wildberries", "--name", name, "--bot", bot_file("магазин"),
            "--setting", "chat_poll_ms=200", stdin=json.dumps({"api_token": WB_TOKEN}))
    if r.code != 0:
        fail("integration add wildberries exited %d: %s%s" % (r.code, r.out, r.err))
    return r.out.splitlines()[0].strip().lower()


def gateway(wb, db):
    return integrations_gateway(wb, db=db, env={"WILDBERRIES_API_URL": wb.url,
                                                "TELEGRAM_BOT_TOKEN": None}, secret=None)


def inbound(db, iid):
    return psql(db, "SELECT platform_message_id, content, metadata::text FROM messages "
                    "WHERE integration_id = '%s' AND direction = 'inbound' AND "
                    "platform = 'wildberries' ORDER BY created_at" % iid)


def wait_sent(wb, chat, n, timeout=30):
    wait_until(lambda: len(wb.sent(chat)) >= n, timeout=timeout,
               what="%d replies in chat %s" % (n, chat))
    return [t for _, t in wb.sent(chat)]


def test_a_buyer_message_is_stored_once_and_answered_in_the_chat():
    wb = fake_wildberries()
    db = fresh_db()
    iid = add_shop(db)
    chat = "1:1e265a58-a120-b178-008c-60af2460207c"
    with gateway(wb, db):
        eid = wb.buyer_says(chat, "привет", rid="rid-5001.0.0")
        texts = wait_sent(wb, chat, 1)
        assert_eq(texts, ["Здравствуйте, это магазин"], "the bot's answer in the chat")
        # The answer comes back as a seller event: never stored as the buyer's.
        wb.buyer_says(chat, "что-то непонятное")
        texts = wait_sent(wb, chat, 2)
        assert_eq(texts[1], "магазин: не понял", "the second answer")
    rows = inbound(db, iid)
    assert_eq([r[0] for r in rows], [eid, "ev-%06d" % (int(eid[3:]) + 2)],
              "inbound rows: the buyer's two events, not the seller's")
    meta = json.loads(rows[0][2])
    assert_eq(meta.get("order_ref"), "rid-5001.0.0", "the chat's order (goodCard.rid) kept")
    sends = wb.calls("/api/v1/seller/message")
    if not sends or not sends[0].headers.get("content-type", "").startswith(
            "multipart/form-data"):
        fail("replies are not multipart/form-data: %r" % sends)
    out = psql1(db, "SELECT count(*) FROM messages WHERE integration_id = '%s' AND direction = "
                    "'outbound' AND delivery_status IN ('sent', 'delivered')" % iid)
    assert_eq(out, "2", "outbound rows marked sent")


def test_restart_mid_stream_loses_and_repeats_nothing():
    wb = fake_wildberries()
    db = fresh_db()
    iid = add_shop(db)
    chats = ["1:chat-a", "1:chat-b"]
    gw = gateway(wb, db)
    with gw:
        for i in range(3):
            wb.buyer_says(chats[i % 2], "привет")
        wait_until(lambda: len(wb.sent()) >= 3, timeout=30, what="3 replies")
        gw.stop()
        for i in range(3, 6):
            wb.buyer_says(chats[i % 2], "привет")
        gw.start()
        wait_until(lambda: len(wb.sent()) >= 6, timeout=30, what="6 replies after the restart")
    rows = inbound(db, iid)
    ids = [r[0] for r in rows]
    assert_eq(len(ids), 6, "inbound rows after the restart")
    assert_eq(len(set(ids)), 6, "no event stored twice")
    assert_eq(len(wb.sent()), 6, "one reply per buyer message")
    cursor = psql1(db, "SELECT cursor FROM poll_cursors WHERE integration_id = '%s'" % iid)
    if not cursor or not cursor.isdigit():
        fail("the events cursor (next, ms) is not saved: %r" % cursor)


def test_a_refused_reply_is_failed_with_the_marketplace_reason():
    wb = fake_wildberries()
    db = fresh_db()
    iid = add_shop(db)
    wb.refuse("/api/v1/seller/message", 400,
              body={"result": {}, "errors": ["Чат закрыт: покупатель не может получить "
                                             "сообщение"]}, times=5)
    with gateway(wb, db):
        wb.buyer_says("1:closed-chat", "привет")
        wait_until(lambda: psql1(db, "SELECT failed_reason FROM messages WHERE integration_id "
                                     "= '%s' AND direction = 'outbound' AND delivery_status = "
                                     "'failed'" % iid), timeout=30, what="a failed reply")
    reason = psql1(db, "SELECT failed_reason FROM messages WHERE integration_id = '%s' AND "
                       "direction = 'outbound'" % iid)
    if "Чат закрыт" not in reason:
        fail("failed_reason does not carry the marketplace's reason: %r" % reason)


MONTHS = ["января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
          "сентября", "октября", "ноября", "декабря"]


def msk_date(ts):
    t = time.gmtime(ts + 3 * 3600)
    return "%d %s" % (t.tm_mday, MONTHS[t.tm_mon - 1])


def test_where_is_my_order_is_answered_from_the_shops_orders():
    wb = fake_wildberries()
    created = time.time() - 2 * 86400
    wb.add_order(5001, supplier="confirm", wb="waiting", created=created)
    wb.add_order(5002, supplier="confirm", wb="waiting", created=created, rid="rid-5002.0.0")
    db = fresh_db()
    r = cli(db, "add", "wildberries", "--name", "wb-shop", "--bot", str(SHOP_BOT), "--setting",
            "chat_poll_ms=200", stdin=json.dumps({"api_token": WB_TOKEN}))
    if r.code != 0:
        fail("integration add exited %d: %s" % (r.code, r.err))
    iid = r.out.splitlines()[0].strip().lower()
    # Another business's shop with an order 777: never answered to this one.
    psql(db, "INSERT INTO users (email, name, role) VALUES ('other@example.com', 'other', 'operator')",
         "INSERT INTO integrations (user_id, platform_id, name, external_id) SELECT id, "
         "'wildberries', 'other-shop', NULL FROM users WHERE email = 'other@example.com'",
         "INSERT INTO orders (integration_id, marketplace, order_number, scheme, status, "
         "status_rank, status_raw) SELECT id, 'wildberries', '777', 'fbs', 'delivered', 3, "
         "'complete/sold' FROM integrations WHERE name = 'other-shop'")
    env = {"WILDBERRIES_API_URL": wb.url}
    if cli(db, "sync", iid, env=env).code != 0:
        fail("the first sync failed")
    wb.set_status(5001, "complete", "sorted")
    if cli(db, "sync", iid, env=env).code != 0:
        fail("the second sync failed")
    today = msk_date(time.time())
    with gateway(wb, db):
        wb.buyer_says("1:chat-1", "Где мой заказ 5001?")
        texts = wait_sent(wb, "1:chat-1", 1)
        assert_eq(texts[0], "Заказ 5001: передан в доставку %s (shirt-blue-42)." % today,
                  "the answer from the synced order")
        # The chat was opened from order 5002 (goodCard.rid): no number needed.
        wb.buyer_says("1:chat-2", "где мой заказ?", rid="rid-5002.0.0")
        texts = wait_sent(wb, "1:chat-2", 1)
        assert_eq(texts[0], "Заказ 5002: собирается, принят %s (shirt-blue-42)." %
                  msk_date(created), "the answer about the chat's own order")
        wb.buyer_says("1:chat-3", "Где мой заказ 777?")
        texts = wait_sent(wb, "1:chat-3", 1)
        if "не найден" not in texts[0] or "777" not in texts[0]:
            fail("another business's order was not refused: %r" % texts[0])
        wb.buyer_says("1:chat-4", "где мой заказ?")
        texts = wait_sent(wb, "1:chat-4", 1)
        if "номер заказа" not in texts[0]:
            fail("without a number the bot should ask for it: %r" % texts[0])


def test_ozon_buyer_chat_answered_from_its_order_and_marked_read():
    oz = fake_ozon()
    oz.add_posting("0123456789-0001-1", status="delivering")
    oz.set_status("0123456789-0001-1", "delivering")
    db = fresh_db()
    r = cli(db, "add", "ozon", "--name", "ozon-shop", "--bot", str(SHOP_BOT), "--setting",
            "chat_poll_ms=200",
            stdin=json.dumps({"client_id": OZON_CLIENT_ID, "api_key": OZON_API_KEY}))
    if r.code != 0:
        fail("integration add ozon exited %d: %s" % (r.code, r.err))
    iid = r.out.splitlines()[0].strip().lower()
    if cli(db, "sync", iid, env={"OZON_API_URL": oz.url}).code != 0:
        fail("the Ozon sync failed")
    chat = "8a7b6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c2d"
    env = {"OZON_API_URL": oz.url, "TELEGRAM_BOT_TOKEN": None}
    with integrations_gateway(oz, db=db, env=env, secret=None) as gw:
        first = oz.buyer_says(chat, "Где мой заказ?", order_number="0123456789-0001")
        texts = [t for _, t in oz.wait_for(lambda: oz.sent(chat), timeout=30,
                                           what="the bot's answer in the Ozon chat")]
        if not texts[0].startswith("Заказ 0123456789-0001-1: передан в доставку"):
            fail("the Ozon chat was not answered from its order: %r" % texts)
        oz.wait_for(lambda: oz.calls("/v2/chat/read"), timeout=30, what="POST /v2/chat/read")
        second = oz.buyer_says(chat, "привет")
        oz.wait_for(lambda: len(oz.sent(chat)) >= 2, timeout=30, what="a second answer")
        gw.stop()
        third = oz.buyer_says(chat, "Где мой заказ 5555555?")
        gw.start()
        oz.wait_for(lambda: len(oz.sent(chat)) >= 3, timeout=30, what="the answer after restart")
        if "не найден" not in oz.sent(chat)[2][1]:
            fail("an unknown number was not refused: %r" % oz.sent(chat))
    rows = psql(db, "SELECT platform_message_id FROM messages WHERE integration_id = '%s' AND "
                    "direction = 'inbound' ORDER BY created_at" % iid)
    assert_eq([r[0] for r in rows], [str(first), str(second), str(third)],
              "each buyer message stored once, the seller's never")
    sends = oz.calls("/v1/chat/send/message")
    if any(s.headers.get("client-id") != OZON_CLIENT_ID or
           s.headers.get("api-key") != OZON_API_KEY for s in sends):
        fail("a reply without both Client-Id and Api-Key headers")


def test_an_escalated_buyer_chat_is_answered_by_an_operator_from_the_console():
    wb = fake_wildberries()
    db = fresh_db()
    r = cli(db, "add", "wildberries", "--name", "wb-shop", "--bot", str(SHOP_BOT), "--setting",
            "chat_poll_ms=200", stdin=json.dumps({"api_token": WB_TOKEN}))
    if r.code != 0:
        fail("integration add exited %d: %s" % (r.code, r.err))
    iid = r.out.splitlines()[0].strip().lower()
    add_operator(db, "olga@shop.example", name="Ольга")
    chat = "1:9d8c7b6a-5f4e-4d3c-2b1a-0f9e8d7c6b5a"
    with gateway(wb, db) as gw:
        wb.buyer_says(chat, "абырвалг")
        wb.buyer_says(chat, "главрыба")
        wait_sent(wb, chat, 2)
        wait_until(lambda: psql1(db, "SELECT status FROM conversations WHERE integration_id = "
                                     "'%s'" % iid) == "escalated", timeout=30,
                   what="the chat escalated after two fallbacks")
        cid = psql1(db, "SELECT id FROM conversations WHERE integration_id = '%s'" % iid)
        token = login(gw, "olga@shop.example")["access_token"]
        expect(call(gw, "POST", "/conversations/%s/claim" % cid, token=token), 200, "claim")
        expect(call(gw, "POST", "/conversations/%s/messages" % cid,
                    {"text": "Здравствуйте, я Ольга из магазина. Чем помочь?"}, token=token),
               201, "the operator's reply")
        texts = wait_sent(wb, chat, 3)
        assert_eq(texts[2], "Здравствуйте, я Ольга из магазина. Чем помочь?",
                  "the operator's reply in the buyer chat")
