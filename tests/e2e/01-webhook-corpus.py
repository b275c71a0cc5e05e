"""01-webhook-corpus: a realistic day of Telegram traffic (tests/e2e/data/
telegram_corpus.jsonl: eight chats -- private, group, forum supergroup,
business, a group that becomes a supergroup -- every update type, Telegram's
redeliveries) posted with concurrency 8, each chat's updates in order as
Telegram delivers them. Every customer message is stored exactly once with
its text byte-exact, edits applied, and nothing is answered 5xx."""

import json
import threading
from pathlib import Path

import eftest
from eftest import Gateway, assert_eq, content_bytes, count, fail, lit, psql

CORPUS = Path(__file__).resolve().parent / "data" / "telegram_corpus.jsonl"
MESSAGE_KEYS = ("message", "business_message")
EDIT_KEYS = ("edited_message", "edited_business_message")
CONTENT_FIELDS = ("text", "caption", "photo", "voice", "document", "video", "audio", "sticker",
                  "animation", "video_note", "location", "venue", "contact")


def load():
    with open(CORPUS, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def chat_key(m):
    c = str(m["chat"]["id"])
    if m.get("business_connection_id"):
        c += "@" + m["business_connection_id"]
    return c


def payload(u):
    keys = [k for k in u if k != "update_id"]
    return (keys[0], u[keys[0]]) if keys else (None, None)


def order_group(u, parent):
    """The chat whose order this update belongs to (groups that migrated are
    one chat)."""
    key, p = payload(u)
    chat = None
    if isinstance(p, dict):
        if "chat" in p:
            chat = str(p["chat"]["id"])
        elif key == "callback_query" and isinstance(p.get("message"), dict):
            chat = str(p["message"]["chat"]["id"])
    if chat is None:
        return "misc"
    while parent.get(chat, chat) != chat:
        chat = parent[chat]
    return chat


def expectations(updates):
    """What a business must find after the corpus: {pmid: content},
    {pmid: [previous texts]}, service messages allowed to be stored, the
    migrated chats and the final blocked state per chat."""
    content, history, seen_updates = {}, {}, set()
    service, migrated, blocked, reactions = 0, {}, {}, {}
    for u in updates:
        if u["update_id"] in seen_updates:
            continue  # a redelivery
        seen_updates.add(u["update_id"])
        key, p = payload(u)
        if key in MESSAGE_KEYS:
            if p.get("migrate_to_chat_id"):
                migrated[str(p["chat"]["id"])] = str(p["migrate_to_chat_id"])
            if p.get("migrate_from_chat_id"):
                migrated[str(p["migrate_from_chat_id"])] = str(p["chat"]["id"])
            if any(f in p for f in CONTENT_FIELDS):
                pmid = "%s:%d" % (chat_key(p), p["message_id"])
                content.setdefault(pmid, p.get("text", p.get("caption", "")))
            else:
                service += 1
        elif key in EDIT_KEYS:
            pmid = "%s:%d" % (chat_key(p), p["message_id"])
            new = p.get("text", p.get("caption", ""))
            if pmid in content and content[pmid] != new:
                history.setdefault(pmid, []).append(content[pmid])
                content[pmid] = new
        elif key == "callback_query":
            content["callback:" + p["id"]] = p.get("data", "")
        elif key == "my_chat_member" and p["chat"]["type"] == "private":
            blocked[str(p["chat"]["id"])] = p["new_chat_member"]["status"] == "kicked"
        elif key == "message_reaction":
            pmid = "%s:%d" % (p["chat"]["id"], p["message_id"])
            reactions[pmid] = [r.get("emoji") for r in p["new_reaction"]]
    return content, history, service, migrated, blocked, reactions


def post_corpus(gw, updates, workers=8):
    parent = {}
    for u in updates:
        key, p = payload(u)
        if key in MESSAGE_KEYS:
            if p.get("migrate_to_chat_id"):
                parent[str(p["migrate_to_chat_id"])] = str(p["chat"]["id"])
            if p.get("migrate_from_chat_id"):
                parent[str(p["chat"]["id"])] = str(p["migrate_from_chat_id"])
    groups = {}
    for u in updates:
        groups.setdefault(order_group(u, parent), []).append(u)
    statuses = []
    lock = threading.Lock()

    def run(group):
        for u in groups[group]:
            st = gw.post_update(u).status
            with lock:
                statuses.append((st, u["update_id"], group))
    eftest.parallel(run, sorted(groups), workers=workers)
    return statuses, groups


def check_store(gw, updates):
    content, history, service, migrated, blocked, reactions = expectations(updates)
    db = gw.db
    # every customer message exactly once, byte-exact
    rows = psql(db, "SELECT platform_message_id, count(*) FROM messages WHERE platform = "
                    "'telegram' AND direction = 'inbound' GROUP BY 1")
    counts = {pmid: int(n) for pmid, n in rows}
    missing = sorted(set(content) - set(counts))
    if missing:
        fail("customer messages not stored: %r" % missing)
    dups = {k: v for k, v in counts.items() if v != 1}
    if dups:
        fail("stored more than once: %r" % dups)
    extra = set(counts) - set(content)
    if len(extra) > service:
        fail("rows for no customer message: %r" % sorted(extra))
    for pmid, text in content.items():
        got = content_bytes(db, pmid)
        if got != text.encode("utf-8"):
            fail("content of %s: expected %r, got %r" % (pmid, text, got.decode("utf-8",
                                                                                  "replace")))
    for pmid, prev in history.items():
        meta = eftest.message_by_pmid(db, pmid)["metadata"]
        texts = [h.get("text") for h in (meta.get("edit_history") or [])]
        assert_eq(texts, prev, "edit_history of %s" % pmid)
    for pmid, emojis in reactions.items():
        meta = json.dumps(eftest.message_by_pmid(db, pmid)["metadata"].get("reactions"),
                          ensure_ascii=False)
        for e in emojis:
            if e not in meta:
                fail("reaction %s missing on %s: %s" % (e, pmid, meta))
    # conversations: one open per chat, migrated chats under their new id
    convs = eftest.conversations(db)
    open_by_chat = {}
    for c in convs:
        if c["status"] != "closed":
            open_by_chat.setdefault(c["chat_id"], []).append(c)
    for chat, cs in open_by_chat.items():
        if len(cs) != 1:
            fail("%d open conversations for chat %s" % (len(cs), chat))
    chats = {pmid.rsplit(":", 1)[0] for pmid in content if not pmid.startswith("callback:")}
    for chat in chats:
        final = migrated.get(chat, chat)
        if final not in open_by_chat:
            fail("no open conversation for chat %s (expected under %s)" % (chat, final))
    for old in migrated:
        if old in open_by_chat:
            fail("chat %s migrated but still has its own conversation" % old)
    for chat, is_blocked in blocked.items():
        assert_eq(open_by_chat[chat][0]["undeliverable"], is_blocked, "undeliverable of %s" % chat)
    for c in convs:
        assert_eq(c["messages_count"], count(db, "messages WHERE conversation_id = %s AND "
                                                 "direction = 'inbound'" % lit(c["id"])),
                  "messages_count of conversation %s" % c["chat_id"])
    # one customer per Telegram user
    users = {}
    for u in updates:
        key, p = payload(u)
        frm = p.get("from") if isinstance(p, dict) else None
        if key in MESSAGE_KEYS + EDIT_KEYS + ("callback_query",) and frm and not frm["is_bot"]:
            users[str(frm["id"])] = frm
    for uid, frm in users.items():
        n = count(db, "users WHERE platform = 'telegram' AND platform_user_id = %s" % lit(uid))
        assert_eq(n, 1, "users rows for %s" % uid)
    return len(content)


def test_corpus_stored_exactly_once():
    updates = load()
    if not 50 <= len(updates) <= 100:
        fail("corpus has %d updates" % len(updates))
    with Gateway() as gw:
        statuses, groups = post_corpus(gw, updates)
        bad = [s for s in statuses if s[0] != 200]
        if bad:
            fail("updates not answered 200: %r" % bad[:10])
        if len(groups) < 8:
            fail("corpus covers %d chats, expected at least 8" % len(groups))
        n = check_store(gw, updates)
        if n < 35:
            fail("only %d customer messages in the corpus" % n)
        distinct = len({u["update_id"] for u in updates})
        m = gw.metrics()
        plat = (("platform", "telegram"),)
        received = m.get(("ef_updates_received_total", plat), 0)
        if received < len(updates):
            fail("ef_updates_received_total %s < %d posted" % (received, len(updates)))
        stored = m.get(("ef_updates_stored_total", plat), 0)
        if stored > distinct:
            fail("ef_updates_stored_total %s > %d distinct updates" % (stored, distinct))
        if m.get(("ef_updates_duplicate_total", plat), 0) < len(updates) - distinct:
            fail("redeliveries not counted as duplicates: %r" %
                 m.get(("ef_updates_duplicate_total", plat)))


def test_corpus_redelivered_in_full_changes_nothing():
    updates = load()
    with Gateway() as gw:
        post_corpus(gw, updates)
        before = psql(gw.db, "SELECT platform_message_id, content, metadata::text FROM messages "
                             "ORDER BY platform_message_id, metadata::text",
                      "SELECT chat_id, messages_count, undeliverable FROM conversations "
                      "ORDER BY chat_id")
        gw.restart()  # Telegram redelivers what it thinks is unacknowledged, even after a restart
        statuses, _ = post_corpus(gw, updates, workers=4)
        bad = [s for s in statuses if s[0] != 200]
        if bad:
            fail("redeliveries not answered 200: %r" % bad[:10])
        after = psql(gw.db, "SELECT platform_message_id, content, metadata::text FROM messages "
                            "ORDER BY platform_message_id, metadata::text",
                     "SELECT chat_id, messages_count, undeliverable FROM conversations "
                     "ORDER BY chat_id")
        if before != after:
            diff = [(a, b) for a, b in zip(before, after) if a != b][:5]
            fail("redelivering the corpus changed the store: %r" % diff)
        check_store(gw, updates)
