"""28-secrets-in-logs: a full scenario at the most verbose log level
(EF_LOG_LEVEL=trace, every component) with every kind of secret configured,
then every log and every command output is searched for each secret value:
zero hits.

Secrets: EF_SECRET_KEY, TELEGRAM_BOT_TOKEN, TELEGRAM_SECRET_TOKEN,
WHATSAPP_ACCESS_TOKEN, WHATSAPP_APP_SECRET, WHATSAPP_VERIFY_TOKEN, a
Wildberries token and an Ozon API key added with `integration add` (sealed),
an operator's password, the access and refresh tokens the API hands out,
and the Redis password inside EF_REDIS_URL (a Redis of the test's own with
requirepass).

Traffic: a Telegram customer talks to the demo bot and asks for a human
(webhook, replies sent through the fake Bot API with the token in the URL
path), a WhatsApp customer writes (signed webhook, the bot's reply sent
with the Bearer token) after the verify handshake, a webhook with a wrong
secret, the operator logs in, refreshes and replies, both shops are synced
by the gateway and by `integration sync`, and `serve --print-config` shows
the configuration."""

import json
import secrets
import shutil
import subprocess
import tempfile
import urllib.parse
from pathlib import Path

import eftest
from api_helpers import call, conversation_id, expect
from eftest import (Gateway, assert_eq, fail, fresh_db, post_ok, psql1, tg_message, tg_user,
                    wait_until)
from integration_helpers import cli
from lib import stack
from lib.fake_marketplaces import FakeOzon, FakeWildberries
from reply_helpers import DEMO_BOT, wait_texts
from wa_helpers import PNID_A, inbound, post_wa, text

TAG = secrets.token_hex(4)
EF_KEY = secrets.token_hex(32)
TG_TOKEN = "6%08d:AAG%s-tgtoken-%s" % (secrets.randbelow(10 ** 8), TAG, secrets.token_hex(8))
TG_SECRET = "tg-webhook-secret-%s" % secrets.token_hex(10)
WA_ACCESS = "EAAG%sWaAccess%s" % (TAG, secrets.token_hex(12))
WA_APP_SECRET = "wa-app-secret-%s" % secrets.token_hex(10)
WA_VERIFY = "wa-verify-%s" % secrets.token_hex(10)
WB_TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJ%s.wb-sig-%s" % (TAG, secrets.token_hex(12))
OZ_KEY = "%s-%s-4a1b-9c2d-%s" % (secrets.token_hex(4), secrets.token_hex(2),
                                  secrets.token_hex(6))
OZ_CLIENT = "83%04d" % secrets.randbelow(10 ** 4)
OP_PASSWORD = "op-pass-%s" % secrets.token_hex(8)
REDIS_PASSWORD = "redis-pass-%s" % secrets.token_hex(10)
PG_PASSWORD = "pg-pass-%s" % secrets.token_hex(10)  # the test server trusts: unused, logged?
ANNA = "7916%07d" % secrets.randbelow(10 ** 7)
TRACE = {"EF_LOG_LEVEL": "trace",
         "EF_LOG_DEBUG": "http,tg,wa,nlp,fsm,pg,redis,curl,pipe,poll,cfg,main"}


class PasswordRedis:
    """A redis-server of the test's own that requires a password."""

    def __init__(self):
        self.port = eftest.free_port()
        self.dir = tempfile.mkdtemp(prefix="redis-pw-", dir=str(eftest.log_dir()))
        conf = Path(self.dir, "redis.conf")  # the password not on a command line
        conf.write_text("port %d\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir %s\n"
                        "requirepass %s\n" % (self.port, self.dir, REDIS_PASSWORD))
        self.log = open(Path(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(["redis-server", str(conf)], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.url = "redis://:%s@127.0.0.1:%d/0" % (REDIS_PASSWORD, self.port)
        stack._resources.append(self)
        wait_until(self._ping, timeout=10, what="the password-protected Redis")

    def _ping(self):
        try:
            return eftest.redis(self.url, "PING", timeout=1) == "PONG"
        except (OSError, eftest.RedisError):
            return False

    def cleanup(self, ok):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Outputs:
    """Every command's stdout and stderr, kept to be searched at the end."""

    def __init__(self):
        self.texts = []

    def keep(self, what, r):
        self.texts.append(("%s (stdout)" % what, r.out))
        self.texts.append(("%s (stderr)" % what, r.err))
        return r

    def cli(self, what, args, env, stdin=None, code=0):
        r = self.keep(what, eftest.run_cli(args, env=env, stdin=stdin, timeout=120))
        if r.code != code:
            fail("%s exited %d (expected %d): %s%s" % (what, r.code, code, r.out, r.err))
        return r


def _forms(value):
    """The value and the forms a log could carry it in."""
    forms = {value, urllib.parse.quote(value, safe=""), json.dumps(value)[1:-1]}
    if len(value) >= 24:
        forms.add(value[-16:])  # a tail: a token cut or masked too little
    return {f for f in forms if f}


def _with_password(url):
    """url with PG_PASSWORD after its user (the test server trusts local
    connections, so it is sent only if asked: what matters is the logs)."""
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return "%s://%s:%s@%s" % (scheme, user.split(":")[0], PG_PASSWORD, host)


def _unreachable(out):
    """The commands that name their database in errors, against one that
    does not answer (a URL with a password); each fails with a message."""
    dead = "postgresql://easyflow:%s@127.0.0.1:%d/easyflow" % (PG_PASSWORD, eftest.free_port())
    env = dict(TRACE, EF_DATABASE_URL=dead, EF_SECRET_KEY=EF_KEY,
               EF_REDIS_URL="redis://:%s@127.0.0.1:%d/0" % (REDIS_PASSWORD, eftest.free_port()))
    for args in (["migrate"], ["operator", "list"], ["integration", "list"],
                 ["customer", "forget", "telegram", "42"]):
        r = out.keep(" ".join(args) + " (database down)",
                     eftest.run_cli(args, env=env, timeout=120))
        if r.code == 0 or not (r.out + r.err).strip():
            fail("%s against a database that does not answer: exit %d, %r" %
                 (args, r.code, r.out + r.err))


def _wrong_redis_password(db, rd, gw_env, out):
    """A gateway whose Redis password is wrong: it runs degraded and says
    so, without the password it tried."""
    bad = rd.url.replace(REDIS_PASSWORD, REDIS_PASSWORD[::-1])
    with Gateway(env=dict(gw_env, EF_DATABASE_URL=db), db=db, redis_url=bad, secret=TG_SECRET,
                 name="gw-bad-redis") as gw:
        gw.wait_log(r"redis", timeout=20)
    out.texts.append(("gateway log (wrong Redis password)", gw.log_text()))
    return bad


def _setup(db, rd, wb, oz, out):
    env = dict(TRACE, EF_DATABASE_URL=db, EF_SECRET_KEY=EF_KEY, EF_REDIS_URL=rd.url,
               WILDBERRIES_API_URL=wb.url, OZON_API_URL=oz.url)
    out.cli("operator add", ["operator", "add", "olga@shop.example", "--name", "Ольга"], env,
            stdin=OP_PASSWORD + "\n")
    ids = {}
    for platform, creds in (("wildberries", {"api_token": WB_TOKEN}),
                            ("ozon", {"client_id": OZ_CLIENT, "api_key": OZ_KEY})):
        r = out.cli("integration add " + platform,
                    ["integration", "add", platform, "--name", platform + "-shop",
                     "--setting", "sync_interval_minutes=1"], env, stdin=json.dumps(creds))
        ids[platform] = r.out.splitlines()[0].strip().lower()
    return env, ids


def _gateway_env(tg, graph, wb, oz):
    return dict(TRACE, EF_BOT_FILE=DEMO_BOT, EF_SECRET_KEY=EF_KEY,
                TELEGRAM_BOT_TOKEN=TG_TOKEN, TELEGRAM_API_URL=tg.url,
                WHATSAPP_ACCESS_TOKEN=WA_ACCESS, WHATSAPP_APP_SECRET=WA_APP_SECRET,
                WHATSAPP_VERIFY_TOKEN=WA_VERIFY, WHATSAPP_PHONE_NUMBER_ID=PNID_A,
                WHATSAPP_API_URL=graph.url, WILDBERRIES_API_URL=wb.url, OZON_API_URL=oz.url)


def _telegram_and_whatsapp(gw, tg, graph):
    u = tg_user(uid=4242001, first="Анна", last=None, username="anna_t", lang="ru")
    post_ok(gw, tg_message(1, "Привет", user=u))
    post_ok(gw, tg_message(2, "позовите оператора", user=u))
    wait_texts(tg, u["id"], 2)
    r = gw.post_update(tg_message(3, "ещё раз", user=u), secret=TG_SECRET[::-1])
    assert_eq(r.status, 401, "a webhook with a wrong secret")
    r = gw.get("/webhook/whatsapp?hub.mode=subscribe&hub.challenge=31337&hub.verify_token=" +
               WA_VERIFY)
    assert_eq((r.status, r.body), (200, b"31337"), "the WhatsApp verify handshake")
    r = post_wa(gw, inbound([text(ANNA, "Здравствуйте")], [{"profile": {"name": "Анна"},
                                                           "wa_id": ANNA}]),
                secret=WA_APP_SECRET)
    assert_eq(r.status, 200, "a signed WhatsApp webhook")
    graph.wait_for(lambda: graph.messages(to=ANNA), timeout=20, what="the bot's WhatsApp reply")
    return u


def _operator(gw, tg, u):
    r = call(gw, "POST", "/auth/login", {"email": "olga@shop.example", "password": OP_PASSWORD})
    t = expect(r, 200, "login")
    t2 = expect(call(gw, "POST", "/auth/refresh", {"refresh_token": t["refresh_token"]}), 200,
                "refresh")
    cid = conversation_id(gw.db, u["id"])
    expect(call(gw, "POST", "/conversations/%s/messages" % cid, {"text": "Это оператор"},
                token=t2["access_token"]), 201, "the operator's reply")
    wait_texts(tg, u["id"], 3)
    expect(call(gw, "POST", "/auth/refresh", {"refresh_token": t["refresh_token"]}), 401,
           "the rotated refresh token again (reuse)")
    return [t["access_token"], t["refresh_token"], t2["access_token"], t2["refresh_token"]]


def test_no_secret_in_any_log_at_trace_level():
    out = Outputs()
    rd = PasswordRedis()
    tg = eftest.closed_at_end(eftest.FakeTelegram(token=TG_TOKEN, enforce_limits=False))
    graph = eftest.closed_at_end(eftest.FakeGraph(token=WA_ACCESS))
    wb = eftest.closed_at_end(FakeWildberries(token=WB_TOKEN))
    oz = eftest.closed_at_end(FakeOzon(client_id=OZ_CLIENT, api_key=OZ_KEY))
    wb.add_order(9301, supplier="confirm")
    oz.add_posting("0123456789-0001-1", status="awaiting_packaging")
    # Failures on the way, whose messages carry URLs and answers.
    tg.fail_next(1, 502, method="sendMessage")
    graph.fail_next(131000, http_status=500)
    wb.refuse("/api/v3/orders", 500, body={"title": "internal error"})
    db = _with_password(fresh_db())
    cli_env, ids = _setup(db, rd, wb, oz, out)
    gw_env = _gateway_env(tg, graph, wb, oz)
    with Gateway(env=gw_env, db=db, redis_url=rd.url, secret=TG_SECRET, name="gw-trace") as gw:
        u = _telegram_and_whatsapp(gw, tg, graph)
        tokens = _operator(gw, tg, u)
        for iid in ids.values():
            wait_until(lambda: psql1(db, "SELECT count(*) FROM sync_logs WHERE integration_id "
                                         "= '%s' AND status = 'success'" % iid) != "0",
                       timeout=40, what="the gateway's sync of %s" % iid)
        for platform, iid in ids.items():
            out.cli("integration sync " + platform, ["integration", "sync", iid], cli_env)
        out.cli("integration list", ["integration", "list"], cli_env)
        if eftest.redis(rd.url, "DBSIZE") == 0:
            fail("nothing written to the password-protected Redis")
    pc_env = dict(gw_env, EF_DATABASE_URL=db, EF_REDIS_URL=rd.url,
                  TELEGRAM_SECRET_TOKEN=TG_SECRET)
    r = out.cli("serve --print-config", ["serve", "--print-config"], pc_env)
    if "TELEGRAM_BOT_TOKEN" not in r.out:
        fail("--print-config printed no configuration: %r" % r.out[:500])
    bad_redis = _wrong_redis_password(db, rd, gw_env, out)
    _unreachable(out)

    logs = [("gateway log", gw.log_text())] + out.texts
    if " DEBUG " not in gw.log_text() and " TRACE " not in gw.log_text():
        fail("the gateway did not log at the most verbose level")
    named = {"EF_SECRET_KEY": EF_KEY, "TELEGRAM_BOT_TOKEN": TG_TOKEN,
             "TELEGRAM_SECRET_TOKEN": TG_SECRET, "WHATSAPP_ACCESS_TOKEN": WA_ACCESS,
             "WHATSAPP_APP_SECRET": WA_APP_SECRET, "WHATSAPP_VERIFY_TOKEN": WA_VERIFY,
             "the Wildberries token": WB_TOKEN, "the Ozon API key": OZ_KEY,
             "the operator password": OP_PASSWORD, "the Redis password": REDIS_PASSWORD,
             "a wrong Redis password": bad_redis.split(":")[2].split("@")[0],
             "the PostgreSQL password": PG_PASSWORD}
    for i, t in enumerate(tokens):
        named["API token %d" % i] = t
    hits = []
    for name, value in named.items():
        for form in _forms(value):
            for where, textv in logs:
                if form in textv or form.upper() in textv:
                    at = textv.find(form) if form in textv else textv.find(form.upper())
                    hits.append("%s in %s: ...%s..." % (name, where,
                                                        textv[max(0, at - 120):at + 40]))
    if hits:
        fail("secrets found in the logs:\n" + "\n".join(hits[:20]))
    total = sum(len(t) for _, t in logs)
    if total < 5000:
        fail("suspiciously little logged (%d bytes): the scenario did not run" % total)
