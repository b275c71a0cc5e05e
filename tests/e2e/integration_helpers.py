"""integration_helpers.py -- what the integration tests (11-*) share: the
`easyflow integration` CLI, two small bots that answer differently, two
Telegram bots (tokens and secrets) served by one fake Bot API, and a gateway
that serves integrations from the database.

The contract (issue 7, DESIGN.md "External contract"):
  easyflow integration add telegram --name NAME [--bot FILE] [--setting K=V]
      credentials JSON on stdin {"bot_token","secret_token"}; EF_DATABASE_URL
      and EF_SECRET_KEY (64 hex digits) in the environment; prints the id
      alone on the first line and `webhook: POST <base>/webhook/telegram/<id>`
  easyflow integration list      header, then id TAB platform TAB name TAB
                                 status TAB status_message
  easyflow integration disable|enable ID, rotate-key (EF_SECRET_KEY_OLD)
  POST /webhook/telegram/{id}    that integration's secret token, else 401
"""

import json
import re

import eftest
from eftest import Gateway, fail, run_cli

KEY = eftest.TEST_SECRET_KEY
KEY_2 = "9a8b7c6d5e4f30211203f4e5d6c7b8a99a8b7c6d5e4f30211203f4e5d6c7b8a9"

TOKEN_A = "5101000001:AAHbotA-token_for_easyflow_integrations_01"
TOKEN_B = "5202000002:BBHbotB-token_for_easyflow_integrations_02"
SECRET_A = "integration-A-Secret-0123456789"
SECRET_B = "integration-B-Secret-9876543210"

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
STATUSES = ("pending", "connected", "error", "disconnected")

_BOT = """bot:
  name: %(name)s
  languages: [ru, en]
  timezone: Europe/Moscow
  fallback_threshold: 0.5

intents:
  greeting:
    description: The customer says hello
    patterns:
      ru: ['\\bпривет\\b']
      en: ['\\bhello\\b']
    examples:
      ru: [привет]
      en: [hello]

fsm:
  initial: initial
  fallback:
    reply:
      ru: "%(who)s: не понял"
      en: "%(who)s: did not understand"
  repeated_fallback:
    after: 2
    reply:
      ru: "%(who)s: снова не понял"
      en: "%(who)s: still did not understand"
  global:
    - intent: greeting
      reply:
        ru: "Здравствуйте, это %(who)s"
        en: "Hello, this is %(who)s"
  states:
    initial: {}
"""


def bot_file(who):
    """A bot definition whose every reply names `who` (e.g. "бот А");
    returns its path."""
    path = eftest.log_dir() / ("bot-%s.yaml" % re.sub(r"\W+", "_", who))
    path.write_text(_BOT % {"name": "bot-" + re.sub(r"\W+", "-", who), "who": who})
    return str(path)


# ---- the CLI -----------------------------------------------------------------------


def cli(db, *args, stdin=None, key=KEY, env=None):
    """`easyflow integration ARGS` against db; returns a Run (code, out, err)."""
    e = {"EF_DATABASE_URL": db, "EF_SECRET_KEY": key, "EF_SQL_DIR": str(eftest.SQL_DIR)}
    e.update(env or {})
    return run_cli(["integration"] + list(args), env=e, stdin=stdin, timeout=60)


def creds(token, secret):
    return json.dumps({"bot_token": token, "secret_token": secret})


def add_telegram(db, name, token, secret, bot=None, settings=(), key=KEY):
    """Adds a Telegram integration; returns its id (checked: the first
    stdout line is the id alone, exit 0)."""
    args = ["add", "telegram", "--name", name]
    if bot:
        args += ["--bot", bot]
    for s in settings:
        args += ["--setting", s]
    r = cli(db, *args, stdin=creds(token, secret), key=key)
    if r.code != 0:
        fail("integration add %s exited %d: %s%s" % (name, r.code, r.out, r.err))
    lines = r.out.splitlines()
    iid = lines[0].strip() if lines else ""
    if not UUID.match(iid):
        fail("integration add: first stdout line is not an id: %r" % r.out)
    return iid.lower()


def integrations(db, key=KEY):
    """`integration list` parsed: {id: {platform, name, status, status_message}}
    (fails the test unless it exits 0 with a header line)."""
    r = cli(db, "list", key=key)
    if r.code != 0:
        fail("integration list exited %d: %s%s" % (r.code, r.out, r.err))
    lines = r.out.splitlines()
    if not lines:
        fail("integration list printed nothing (a header line at least)")
    out = {}
    for line in lines[1:]:
        if not line.strip():
            continue
        f = line.split("\t")
        if len(f) < 4:
            fail("integration list: not tab-separated id, platform, name, status, "
                 "status_message: %r" % line)
        out[f[0].lower()] = {"platform": f[1], "name": f[2], "status": f[3],
                     "status_message": f[4] if len(f) > 4 else ""}
    return out


def integration_status(db, iid):
    got = integrations(db).get(iid)
    if got is None:
        fail("integration %s not in `integration list`" % iid)
    return got


# ---- the gateway and the fake Bot API ----------------------------------------------------


def two_bot_fake():
    """A fake Bot API serving TOKEN_A and TOKEN_B (per-chat limits off: the
    tests count replies, not pacing)."""
    tg = eftest.fake_telegram(token=TOKEN_A, enforce_limits=False)
    tg.add_bot(TOKEN_B)
    return tg


def integrations_gateway(tg, db=None, env=None, **kw):
    """A gateway serving the integrations of db, sending through the fake;
    no TELEGRAM_* variables (so no default integration) unless env adds them."""
    e = {"TELEGRAM_API_URL": tg.url, "EF_SECRET_KEY": KEY}
    e.update(env or {})
    return Gateway(env=e, db=db, secret=kw.pop("secret", None), **kw)


def hook(iid):
    return "/webhook/telegram/%s" % iid


def post_to(gw, iid, update, secret):
    """POST an update to one integration's webhook (secret None: no header)."""
    h = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
    return gw.post(hook(iid), update, h)


def texts_of(tg, token, chat_id):
    """Texts the bot `token` sent to chat_id (accepted sends), in order."""
    return [r.params.get("text") for r in tg.calls("sendMessage", token=token)
            if r.status == 200 and str(r.params.get("chat_id")) == str(chat_id)]


def wait_reply(tg, token, chat_id, n=1, timeout=20.0):
    """Until the bot `token` sent n messages to chat_id; returns their texts."""
    tg.wait_for(lambda: len(texts_of(tg, token, chat_id)) >= n, timeout=timeout,
                what="%d replies of bot %s to chat %s" % (n, token.split(":")[0], chat_id))
    return texts_of(tg, token, chat_id)
