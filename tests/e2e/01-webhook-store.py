"""01-webhook-store: each customer update type arrives by webhook and is stored
as the row a business would expect to find: byte-exact text, the right chat,
the right customer, int64 ids intact, one open conversation per chat."""

import json

import eftest
from eftest import (Gateway, assert_eq, assert_status, content_bytes, conversations, count, entity,
                    fail, lit, message_by_pmid, post_ok, psql, psql1, tg_message, tg_user)


def _cmd(c):
    """'/start@bot' and 'start' name the same command."""
    return (c or "").lstrip("/").split("@")[0]


def _user_row(url, platform_user_id):
    rows = psql(url, "SELECT name, username, language_code, role, email, platform, "
                     "platform_user_id FROM users WHERE platform = 'telegram' AND "
                     "platform_user_id = %s" % lit(platform_user_id))
    if len(rows) != 1:
        fail("expected one users row for telegram user %s, got %d" % (platform_user_id, len(rows)))
    return dict(zip(["name", "username", "language_code", "role", "email", "platform",
                     "platform_user_id"], rows[0]))


def _check_entities(meta, text, expected):
    """expected: [(type, substring)] -- each must appear with UTF-16 and byte
    positions that locate exactly that substring."""
    got = meta.get("entities")
    if not isinstance(got, list):
        fail("metadata.entities missing: %r" % meta)
    b = text.encode("utf-8")
    for etype, sub in expected:
        start16 = eftest.utf16_len(text[:text.index(sub)])
        start = len(text[:text.index(sub)].encode("utf-8"))
        want = {"type": etype, "offset16": start16, "length16": eftest.utf16_len(sub),
                "start": start, "end": start + len(sub.encode("utf-8")), "text": sub}
        match = [e for e in got if e.get("type") == etype and e.get("offset16") == start16]
        if len(match) != 1:
            fail("entity %s at offset16 %d not found in %r" % (etype, start16, got))
        e = match[0]
        for k, v in want.items():
            assert_eq(e.get(k), v, "entity %s field %s" % (etype, k))
        assert_eq(b[e["start"]:e["end"]].decode("utf-8"), sub, "bytes located by start/end")


def test_text_message_stored_byte_exact():
    user = tg_user(uid=7712345678, first="Анна", last="Иванова", username="anna_iv", lang="ru")
    text = "Привет 👋 /help — нужен заказ №42, «срочно»\nвторая строка 🇷🇺 e\u0301"
    ents = [entity(text, "/help", "bot_command")]
    upd = tg_message(101, text, user=user, entities=ents)
    with Gateway() as gw:
        post_ok(gw, upd)
        # Answered 200 => committed: the row is there without waiting.
        pmid = "7712345678:101"
        row = message_by_pmid(gw.db, pmid)
        assert_eq(content_bytes(gw.db, pmid), text.encode("utf-8"), "content bytes")
        assert_eq((row["role"], row["direction"], row["platform"]), ("user", "inbound", "telegram"))
        meta = row["metadata"]
        assert_eq(meta.get("content_type"), "text", "content_type")
        assert_eq(meta.get("update_type"), "message", "update_type")
        _check_entities(meta, text, [("bot_command", "/help")])
        # The worked example: in "Привет 👋 /help" the command starts at UTF-16
        # unit 10 (emoji = 2 units) and byte 18 (Cyrillic = 2 bytes, emoji = 4).
        e = [x for x in meta["entities"] if x["type"] == "bot_command"][0]
        assert_eq((e["offset16"], e["length16"], e["start"], e["end"]), (10, 5, 18, 23))

        u = _user_row(gw.db, "7712345678")
        assert_eq(u["name"], "Анна Иванова", "users.name")
        assert_eq((u["username"], u["language_code"], u["role"], u["email"]),
                  ("anna_iv", "ru", "customer", None))
        convs = conversations(gw.db)
        assert_eq(len(convs), 1, "conversations")
        c = convs[0]
        assert_eq((c["chat_id"], c["status"], c["messages_count"], c["undeliverable"]),
                  ("7712345678", "active", 1, False))
        if not c["session_id"]:
            fail("conversation without session_id")
        assert_eq(row["conversation_id"], c["id"], "message.conversation_id")
        assert_eq(row["session_id"], c["session_id"], "message.session_id")
        assert_eq(row["user_id"], psql1(gw.db, "SELECT id FROM users WHERE platform_user_id = "
                                               "'7712345678'"), "message.user_id")


def test_commands_and_deep_links():
    user = tg_user(uid=5100000001)
    cases = [
        (1, "/start промо_42 и ещё", "start", "промо_42 и ещё"),
        (2, "/order@easyflow_test_bot 12345", "order", "12345"),
        (3, "/help", "help", None),
    ]
    with Gateway() as gw:
        for mid, text, cmd, args in cases:
            cmdtext = text.split(" ")[0]
            post_ok(gw, tg_message(mid, text, user=user,
                                    entities=[entity(text, cmdtext, "bot_command")]))
            meta = message_by_pmid(gw.db, "5100000001:%d" % mid)["metadata"]
            assert_eq(_cmd(meta.get("command")), cmd, "command of %r" % text)
            assert_eq(meta.get("command_args") or None, args, "command_args of %r" % text)
        # A command entity not at the start is not the message's command.
        text = "скажите /help пожалуйста"
        post_ok(gw, tg_message(4, text, user=user,
                                entities=[entity(text, "/help", "bot_command")]))
        meta = message_by_pmid(gw.db, "5100000001:4")["metadata"]
        if meta.get("command"):
            fail("a command in the middle of the text became the message's command: %r" % meta)


def test_entities_utf16_offsets():
    user = tg_user(uid=5100000002)
    text = "👨‍👩‍👧 Семья: @ivan_petrov, почта ivan@example.ru, сайт https://пример.рф 😀 #скидка"
    ents = [entity(text, "@ivan_petrov", "mention"),
            entity(text, "ivan@example.ru", "email"),
            entity(text, "https://пример.рф", "url"),
            entity(text, "#скидка", "hashtag"),
            entity(text, "Семья", "bold")]
    with Gateway() as gw:
        post_ok(gw, tg_message(7, text, user=user, entities=ents))
        meta = message_by_pmid(gw.db, "5100000002:7")["metadata"]
        _check_entities(meta, text, [("mention", "@ivan_petrov"), ("email", "ivan@example.ru"),
                                     ("url", "https://пример.рф"), ("hashtag", "#скидка"),
                                     ("bold", "Семья")])
        assert_eq(content_bytes(gw.db, "5100000002:7"), text.encode("utf-8"))


PHOTO = [{"file_id": "AgACAgIAAxkBAAIBsmall", "file_unique_id": "AQADsmall", "file_size": 1290,
          "width": 90, "height": 67},
         {"file_id": "AgACAgIAAxkBAAIBlarge", "file_unique_id": "AQADlarge", "file_size": 3145728,
          "width": 1280, "height": 960}]


def _media_cases():
    """(field, value, caption, expected media subset, expected content_type)"""
    return [
        ("photo", PHOTO, "Вот фото товара 📷", {"type": "photo", "file_id": "AgACAgIAAxkBAAIBlarge",
                                                "file_unique_id": "AQADlarge",
                                                "file_size": 3145728}, "photo"),
        ("voice", {"file_id": "AwACAgIAAxkBvoice", "file_unique_id": "AgADvoice", "duration": 7,
                   "mime_type": "audio/ogg", "file_size": 23456}, None,
         {"type": "voice", "file_id": "AwACAgIAAxkBvoice", "mime_type": "audio/ogg",
          "file_size": 23456}, "voice"),
        ("document", {"file_id": "BQACAgIAAxkBdoc", "file_unique_id": "AgADdoc",
                      "file_name": "Счёт №17.pdf", "mime_type": "application/pdf",
                      "file_size": 5000000000}, "счёт во вложении",
         {"type": "document", "file_id": "BQACAgIAAxkBdoc", "file_name": "Счёт №17.pdf",
          "mime_type": "application/pdf", "file_size": 5000000000}, "document"),
        ("video", {"file_id": "BAACAgIAAxkBvideo", "file_unique_id": "AgADvideo", "width": 640,
                   "height": 360, "duration": 12, "mime_type": "video/mp4", "file_size": 912345},
         None, {"type": "video", "file_id": "BAACAgIAAxkBvideo", "mime_type": "video/mp4"},
         "video"),
        ("audio", {"file_id": "CQACAgIAAxkBaudio", "file_unique_id": "AgADaudio", "duration": 180,
                   "title": "Песня", "file_name": "song.mp3", "mime_type": "audio/mpeg",
                   "file_size": 4000000}, None,
         {"type": "audio", "file_id": "CQACAgIAAxkBaudio", "file_name": "song.mp3"}, "audio"),
        ("sticker", {"file_id": "CAACAgIAAxkBsticker", "file_unique_id": "AgADsticker",
                     "type": "regular", "width": 512, "height": 512, "is_animated": False,
                     "is_video": False, "emoji": "😂", "set_name": "FunnyCats",
                     "file_size": 20480}, None,
         {"type": "sticker", "file_id": "CAACAgIAAxkBsticker"}, "sticker"),
        ("video_note", {"file_id": "DQACAgIAAxkBnote", "file_unique_id": "AgADnote", "length": 240,
                        "duration": 5, "file_size": 300000}, None,
         {"type": "video_note", "file_id": "DQACAgIAAxkBnote"}, "video_note"),
    ]


def test_media_messages():
    user = tg_user(uid=5100000003, first="Пётр", last=None, username=None)
    with Gateway() as gw:
        mid = 0
        for field, value, caption, media, ctype in _media_cases():
            mid += 1
            extra = {field: value}
            if caption is not None:
                extra["caption"] = caption
            post_ok(gw, tg_message(mid, None, user=user, **extra), field)
            pmid = "5100000003:%d" % mid
            row = message_by_pmid(gw.db, pmid)
            assert_eq(content_bytes(gw.db, pmid), (caption or "").encode("utf-8"),
                      "%s content (caption or '')" % field)
            meta = row["metadata"]
            assert_eq(meta.get("content_type"), ctype, "%s content_type" % field)
            got = meta.get("media") or {}
            for k, v in media.items():
                assert_eq(got.get(k), v, "%s media.%s" % (field, k))
        # animation: Telegram also sets `document`; it is still an animation.
        mid += 1
        anim = {"file_id": "CgACAgIAAxkBanim", "file_unique_id": "AgADanim", "width": 320,
                "height": 240, "duration": 3, "file_name": "cat.mp4", "mime_type": "video/mp4",
                "file_size": 77777}
        post_ok(gw, tg_message(mid, None, user=user, animation=anim, document=anim,
                                caption="кот 🐈"))
        meta = message_by_pmid(gw.db, "5100000003:%d" % mid)["metadata"]
        assert_eq(meta.get("content_type"), "animation", "animation content_type")
        assert_eq((meta.get("media") or {}).get("file_id"), "CgACAgIAAxkBanim")
        assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), mid, "rows")
        assert_eq(_user_row(gw.db, "5100000003")["name"], "Пётр", "name without last_name")
        assert_eq(_user_row(gw.db, "5100000003")["username"], None, "no username")
        assert_eq(conversations(gw.db)[0]["messages_count"], mid, "messages_count")


def test_location_venue_contact():
    user = tg_user(uid=5100000004)
    loc = {"latitude": 55.751244, "longitude": 37.618423, "horizontal_accuracy": 25.5}
    venue = {"location": {"latitude": 59.939095, "longitude": 30.315868},
             "title": "Эрмитаж", "address": "Дворцовая пл., 2, Санкт-Петербург"}
    contact = {"phone_number": "+79161234567", "first_name": "Мария", "last_name": "Смирнова",
               "user_id": 6987654321}
    with Gateway() as gw:
        post_ok(gw, tg_message(1, None, user=user, location=loc))
        post_ok(gw, tg_message(2, None, user=user, venue=venue, location=venue["location"]))
        post_ok(gw, tg_message(3, None, user=user, contact=contact))
        m1 = message_by_pmid(gw.db, "5100000004:1")
        assert_eq(m1["content"], "", "location content")
        assert_eq(m1["metadata"].get("content_type"), "location")
        got = m1["metadata"].get("location") or {}
        if abs(got.get("latitude", 0) - 55.751244) > 1e-6 or \
                abs(got.get("longitude", 0) - 37.618423) > 1e-6:
            fail("location %r" % got)
        m2 = message_by_pmid(gw.db, "5100000004:2")["metadata"]
        assert_eq(m2.get("content_type"), "venue")
        assert_eq((m2.get("venue") or {}).get("title"), "Эрмитаж")
        assert_eq((m2.get("venue") or {}).get("address"), venue["address"])
        m3 = message_by_pmid(gw.db, "5100000004:3")["metadata"]
        assert_eq(m3.get("content_type"), "contact")
        c = m3.get("contact") or {}
        assert_eq((c.get("phone_number"), c.get("first_name")), ("+79161234567", "Мария"))
        # 6987654321 > 2^32: it must come back as the same integer.
        assert_eq(str(c.get("user_id")), "6987654321", "contact.user_id")


def test_reply_forward_thread_album():
    user = tg_user(uid=5100000005)
    chat = -1001234567890
    with Gateway() as gw:
        first = tg_message(10, "Какой у вас график?", user=user, chat_id=chat,
                           message_thread_id=77, is_topic_message=True)
        post_ok(gw, first)
        reply = tg_message(11, "И ещё вопрос", user=user, chat_id=chat, message_thread_id=77,
                           reply_to_message=first["message"])
        post_ok(gw, reply)
        meta = message_by_pmid(gw.db, "%d:11" % chat)["metadata"]
        rt = meta.get("reply_to") or {}
        assert_eq(str(rt.get("message_id")), "10", "reply_to.message_id")
        assert_eq(rt.get("platform_message_id"), "%d:10" % chat, "reply_to.platform_message_id")
        assert_eq(str(meta.get("message_thread_id")), "77", "message_thread_id")
        fwd = {"type": "user", "sender_user": tg_user(uid=6000000001, first="Олег", last=None),
               "date": 1700000000}
        post_ok(gw, tg_message(12, "пересланное сообщение", user=user, chat_id=chat,
                                forward_origin=fwd))
        meta = message_by_pmid(gw.db, "%d:12" % chat)["metadata"]
        assert_eq((meta.get("forward_origin") or {}).get("type"), "user", "forward_origin.type")
        hidden = {"type": "hidden_user", "sender_user_name": "Тайный Друг", "date": 1700000001}
        post_ok(gw, tg_message(13, "ещё одно", user=user, chat_id=chat, forward_origin=hidden))
        meta = message_by_pmid(gw.db, "%d:13" % chat)["metadata"]
        assert_eq((meta.get("forward_origin") or {}).get("sender_user_name"), "Тайный Друг")
        # An album: three updates sharing media_group_id, one caption.
        for i, cap in ((14, "Альбом 🖼"), (15, None), (16, None)):
            extra = {"photo": PHOTO, "media_group_id": "13579246801357"}
            if cap:
                extra["caption"] = cap
            post_ok(gw, tg_message(i, None, user=user, chat_id=chat, **extra))
        for i in (14, 15, 16):
            meta = message_by_pmid(gw.db, "%d:%d" % (chat, i))["metadata"]
            assert_eq(meta.get("media_group_id"), "13579246801357", "media_group_id")
        assert_eq(message_by_pmid(gw.db, "%d:14" % chat)["content"], "Альбом 🖼")
        assert_eq(message_by_pmid(gw.db, "%d:15" % chat)["content"], "")


def test_int64_ids_survive():
    # user and update ids above 2^32, a supergroup id -100..., a basic group id
    big_user = tg_user(uid=8123456789012, first="Big", last="Id")  # < 2^53 as Telegram promises
    with Gateway() as gw:
        sg = -1002233445566
        post_ok(gw, tg_message(2147483647, "в супергруппе", user=big_user, chat_id=sg,
                                update_id=9007199254740000))
        post_ok(gw, tg_message(5, "в группе", user=big_user, chat_id=-4012345678))
        post_ok(gw, tg_message(6, "лично", user=big_user))
        message_by_pmid(gw.db, "-1002233445566:2147483647")
        message_by_pmid(gw.db, "-4012345678:5")
        message_by_pmid(gw.db, "8123456789012:6")
        u = _user_row(gw.db, "8123456789012")
        assert_eq(u["name"], "Big Id")
        chats = sorted(c["chat_id"] for c in conversations(gw.db))
        assert_eq(chats, sorted(["-1002233445566", "-4012345678", "8123456789012"]), "chat ids")
        assert_eq(count(gw.db, "users WHERE platform = 'telegram'"), 1, "one user for three chats")


def test_user_reused_one_open_conversation_counts():
    anna = tg_user(uid=5200000001, first="Анна", last="К")
    boris = tg_user(uid=5200000002, first="Борис", last=None, username="boris")
    group = -4055555555
    with Gateway() as gw:
        for mid in range(1, 6):
            post_ok(gw, tg_message(mid, "сообщение %d" % mid, user=anna))
        for mid in range(1, 4):
            post_ok(gw, tg_message(mid, "в группе %d" % mid, user=anna if mid % 2 else boris,
                                    chat_id=group))
        assert_eq(count(gw.db, "users WHERE platform = 'telegram'"), 2, "users")
        convs = {c["chat_id"]: c for c in conversations(gw.db)}
        assert_eq(sorted(convs), sorted([str(group), "5200000001"]), "conversations")
        assert_eq(convs["5200000001"]["messages_count"], 5, "private messages_count")
        assert_eq(convs[str(group)]["messages_count"], 3, "group messages_count")
        for chat, c in convs.items():
            assert_eq(count(gw.db, "messages WHERE conversation_id = %s" % lit(c["id"])),
                      c["messages_count"], "rows vs messages_count of %s" % chat)
        assert_eq(count(gw.db, "conversations WHERE status <> 'closed'"), 2, "open conversations")
        # Messages of a chat are kept in arrival order.
        rows = psql(gw.db, "SELECT platform_message_id FROM messages WHERE conversation_id = %s "
                           "ORDER BY created_at, id" % lit(convs["5200000001"]["id"]))
        times = psql(gw.db, "SELECT split_part(platform_message_id, ':', 2)::int, created_at "
                            "FROM messages WHERE conversation_id = %s ORDER BY 1"
                            % lit(convs["5200000001"]["id"]))
        if [t for _, t in times] != sorted(t for _, t in times):
            fail("created_at does not follow arrival order: %r" % times)
        assert_eq(len(rows), 5)
        before = convs["5200000001"]["updated_at"]
        post_ok(gw, tg_message(6, "ещё", user=anna))
        after = conversations(gw.db, "chat_id = '5200000001'")[0]
        assert_eq(after["messages_count"], 6)
        if psql1(gw.db, "SELECT %s::timestamptz <= %s::timestamptz" %
                 (lit(before), lit(after["updated_at"]))) != "t":
            fail("updated_at went backwards: %s -> %s" % (before, after["updated_at"]))
        # The user's changed name is the one kept.
        renamed = dict(anna, first_name="Анна-Мария")
        post_ok(gw, tg_message(7, "я сменила имя", user=renamed))
        assert_eq(_user_row(gw.db, "5200000001")["name"], "Анна-Мария К", "renamed user")
        assert_eq(count(gw.db, "users WHERE platform = 'telegram'"), 2, "still two users")


def test_business_messages_are_their_own_conversation():
    user = tg_user(uid=5300000001)
    with Gateway() as gw:
        post_ok(gw, tg_message(10, "в чат бота", user=user))
        post_ok(gw, tg_message(10, "в бизнес-чат", user=user, kind="business_message",
                                business_connection_id="BCxyz-777"))
        convs = {c["chat_id"]: c for c in conversations(gw.db)}
        assert_eq(sorted(convs), ["5300000001", "5300000001@BCxyz-777"], "chat ids")
        rows = eftest.message_rows(gw.db)
        assert_eq(len(rows), 2, "two rows: same chat and message id, different conversations")
        by_conv = {r["conversation_id"]: r for r in rows}
        assert_eq(by_conv[convs["5300000001"]["id"]]["content"], "в чат бота")
        b = by_conv[convs["5300000001@BCxyz-777"]["id"]]
        assert_eq(b["content"], "в бизнес-чат")
        assert_eq(b["metadata"].get("update_type"), "business_message")
        if not b["platform_message_id"].endswith(":10"):
            fail("business platform_message_id %r" % b["platform_message_id"])


def test_types_not_stored_still_answer_200():
    user = tg_user(uid=5400000001)
    chat = {"id": -1009876543210, "type": "supergroup", "title": "Клуб"}
    member = {"user": user, "status": "member"}
    updates = [
        {"inline_query": {"id": "4411", "from": user, "query": "пицца", "offset": ""}},
        {"chosen_inline_result": {"result_id": "1", "from": user, "query": "пицца"}},
        {"chat_join_request": {"chat": chat, "from": user, "user_chat_id": 5400000001,
                               "date": 1700000000, "bio": "люблю пиццу"}},
        {"chat_member": {"chat": chat, "from": user, "date": 1700000000,
                         "old_chat_member": {"user": user, "status": "left"},
                         "new_chat_member": member}},
        {"poll": {"id": "5555", "question": "Пицца?", "options": [
            {"text": "Да", "voter_count": 1}, {"text": "Нет", "voter_count": 0}],
            "total_voter_count": 1, "is_closed": False, "is_anonymous": True,
            "type": "regular", "allows_multiple_answers": False}},
        {"poll_answer": {"poll_id": "5555", "user": user, "option_ids": [0]}},
        {"message_reaction_count": {"chat": chat, "message_id": 3, "date": 1700000000,
                                    "reactions": [{"type": {"type": "emoji", "emoji": "👍"},
                                                   "total_count": 3}]}},
        {"shipping_query": {"id": "77", "from": user, "invoice_payload": "x",
                            "shipping_address": {"country_code": "RU", "state": "", "city": "М",
                                                 "street_line1": "у", "street_line2": "",
                                                 "post_code": "101000"}}},
        {"chat_boost": {"chat": chat, "boost": {"boost_id": "b1", "add_date": 1, "expiration_date": 2,
                                                "source": {"source": "premium", "user": user}}}},
        {"business_connection": {"id": "BC1", "user": user, "user_chat_id": 5400000001,
                                 "date": 1700000000, "is_enabled": True}},
        {"brand_new_update_kind": {"anything": [1, 2, {"x": "y"}], "id": 99}},
        {},  # an Update with no payload at all
    ]
    with Gateway() as gw:
        for u in updates:
            u = dict(u, update_id=eftest.next_update_id())
            r = gw.post_update(u)
            assert_status(r, 200, "update %s" % (list(u.keys()),))
        assert_eq(count(gw.db, "messages"), 0, "nothing stored")
        assert_eq(count(gw.db, "conversations"), 0, "no conversation")
        # ... and the gateway still stores the next real message.
        post_ok(gw, tg_message(1, "обычное сообщение", user=user))
        assert_eq(count(gw.db, "messages"), 1)


def test_session_written_to_redis():
    user = tg_user(uid=5500000001)
    with Gateway(env={"EF_SESSION_TTL": "300"}) as gw:
        post_ok(gw, tg_message(1, "привет", user=user))
        c = conversations(gw.db)[0]
        key = "session:" + c["session_id"]
        raw = eftest.wait_until(lambda: eftest.redis(gw.redis_url, "GET", key), timeout=5,
                                what="Redis key " + key)
        s = json.loads(raw)
        for k in ("session_id", "conversation_id", "user_id", "platform", "chat_id", "status",
                  "state", "context", "created_at"):
            if k not in s:
                fail("session JSON lacks %r: %r" % (k, s))
        assert_eq((s["session_id"], s["conversation_id"], s["user_id"], s["platform"],
                   str(s["chat_id"]), s["status"]),
                  (c["session_id"], c["id"], c["user_id"], "telegram", "5500000001", "active"),
                  "session fields")
        assert_eq(s["context"], c["context_data"], "session context vs conversations.context_data")
        ttl = eftest.redis(gw.redis_url, "TTL", key)
        if not 0 < ttl <= 300:
            fail("session TTL %r, expected 0 < ttl <= 300 (EF_SESSION_TTL)" % ttl)
