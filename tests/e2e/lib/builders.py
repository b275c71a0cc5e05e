"""lib/builders.py -- Telegram updates as the Bot API sends them, and the
gateway configurations the tests use again and again.

  tg_user / tg_chat / tg_message   a User, a Chat, an Update with a Message
  next_update_id()                 an update_id no other update of this
                                   process has
  entity(text, sub, type)          a MessageEntity (offsets in UTF-16 units)
  poll_env(tg)                     the environment of a long-polling gateway
                                   against a fake Bot API
"""

import os
import time

_uid = [int(time.time()) % 100000 * 1000 + os.getpid() % 1000 * 100000000]


def next_update_id():
    _uid[0] += 1
    return _uid[0]


def tg_user(uid=7712345678, first="Анна", last="Иванова", username="anna_iv", lang="ru"):
    u = {"id": uid, "is_bot": False, "first_name": first}
    if last is not None:
        u["last_name"] = last
    if username is not None:
        u["username"] = username
    if lang is not None:
        u["language_code"] = lang
    return u


def tg_chat(chat_id, ctype=None, title=None, user=None):
    if ctype is None:
        ctype = "private" if chat_id > 0 else ("supergroup" if str(chat_id).startswith("-100")
                                               else "group")
    c = {"id": chat_id, "type": ctype}
    if ctype == "private" and user:
        c["first_name"] = user.get("first_name")
        if user.get("last_name"):
            c["last_name"] = user["last_name"]
        if user.get("username"):
            c["username"] = user["username"]
    elif title or ctype != "private":
        c["title"] = title or "Группа %d" % abs(chat_id)
    return c


def tg_message(message_id, text=None, user=None, chat_id=None, date=None, update_id=None,
               kind="message", **fields):
    """An Update with a Message (kind: message, edited_message, business_message...)."""
    user = user if user is not None else tg_user()
    chat_id = chat_id if chat_id is not None else user["id"]
    msg = {"message_id": message_id, "from": user, "chat": tg_chat(chat_id, user=user),
           "date": date or int(time.time())}
    if text is not None:
        msg["text"] = text
    msg.update(fields)
    return {"update_id": update_id or next_update_id(), kind: msg}


def utf16_len(s):
    return len(s.encode("utf-16-le")) // 2


def entity(text, sub, etype, nth=0, **extra):
    """A MessageEntity for the nth occurrence of sub in text (UTF-16 units)."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(sub, start + 1)
    e = {"type": etype, "offset": utf16_len(text[:start]), "length": utf16_len(sub)}
    e.update(extra)
    return e


def poll_env(tg, token=None, **extra):
    """Environment for a gateway long-polling the fake Bot API `tg` (with
    `token`, default the fake's own); extra variables are added."""
    e = {"TELEGRAM_MODE": "poll", "TELEGRAM_BOT_TOKEN": token or tg.token,
         "TELEGRAM_API_URL": tg.url}
    e.update(extra)
    return e
