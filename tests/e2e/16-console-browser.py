"""16-console-browser: the operator console at /console. The gateway serves
its files from memory with the right types, ETags (304 on a match) and no
way out of web/console; then headless Chromium (Debian's chromium, driven
by playwright-core from tests/browser) logs in as an operator, finds the
escalated conversation in the queue, claims it, replies (the reply shows
with a delivery tick and reaches the customer's Telegram chat), sees a
conversation another operator holds refused with the holder's name, and
hands the first one back to the bot.

All that while a stream of live events runs: customers keep writing to
other escalated conversations (through the Telegram webhook, a few updates
a second), so the console's queue keeps changing under the operator's
pointer. The browser checks that the queue is updated in place (no row
element replaced, the selected row kept), that one click opens a
conversation, and that messages arriving in the open conversation are
appended without redrawing the others, the scroll position kept unless the
operator was at the bottom.

Without chromium, node or npm on this machine the browser part is skipped
with a message on stderr (scripts/deps.sh installs them)."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from lib import browser
from api_helpers import PASSWORD, add_operator, call, escalated_chat, expect, login
from eftest import assert_eq, fail, next_update_id, psql1, tg_message
from reply_helpers import demo_gateway, limited_telegram, wait_texts

HERE = Path(__file__).resolve().parent
BROWSER_DIR = browser.BROWSER_DIR
SHOTS = HERE / ".logs"


def test_static_files_types_etags_and_no_traversal():
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        r = gw.get("/console")
        assert_eq(r.status, 200, "GET /console")
        assert_eq(r.headers.get("content-type"), "text/html; charset=utf-8", "html type")
        if b"/console/app.js" not in r.body:
            fail("index.html does not load app.js: %r" % r.body[:200])
        etag = r.headers.get("etag", "")
        if not (etag.startswith('"') and len(etag) == 18):
            fail("no strong ETag: %r" % r.headers)
        assert_eq(r.headers.get("cache-control"), "no-cache", "cache-control")
        assert_eq(r.headers.get("x-content-type-options"), "nosniff", "nosniff")
        assert_eq(gw.get("/console/").status, 200, "GET /console/")
        again = gw.get("/console", headers={"If-None-Match": etag})
        assert_eq((again.status, again.body), (304, b""), "If-None-Match: the same ETag")
        assert_eq(gw.get("/console", headers={"If-None-Match": 'W/"x", ' + etag}).status, 304,
                  "a list holding the ETag")
        assert_eq(gw.get("/console", headers={"If-None-Match": '"other"'}).status, 200,
                  "another ETag")
        for name, ctype in (("app.js", "text/javascript; charset=utf-8"),
                            ("style.css", "text/css; charset=utf-8")):
            r = gw.get("/console/" + name)
            assert_eq((r.status, r.headers.get("content-type")), (200, ctype), name)
            on_disk = (HERE.parents[1] / "web" / "console" / name).read_bytes()
            assert_eq(r.body == on_disk, True, "%s served as on disk" % name)
        for bad in ("/console/../sql/001_init.sql", "/console/..%2fREADME.md",
                    "/console/%2e%2e/README.md", "/console/.hidden.js", "/console/nope.js",
                    "/console/app.js/x", "/console/README", "/consoles", "/console//etc/passwd"):
            r = gw.get(bad)
            if r.status != 404:
                fail("%s: expected 404, got %d %r" % (bad, r.status, r.body[:100]))
        assert_eq(gw.post("/console", {}).status, 405, "POST /console")


def _tools():
    """(chromium, node), or None when skipped knowingly (lib/browser.py)."""
    return browser.tools("16-console-browser")


class Stream:
    """Customers writing to escalated conversations, round robin, one
    update every `every` seconds until stopped: the live events the console
    receives while the operator works (the bot stays silent in them)."""

    def __init__(self, gw, users, every=0.12):
        self.gw, self.users, self.every = gw, users, every
        self.sent, self.errors = 0, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            u = self.users[self.sent % len(self.users)]
            self.sent += 1
            try:
                r = self.gw.post_update(tg_message(1000 + self.sent, "ещё вопрос %d" % self.sent,
                                                   user=u))
                if r.status != 200:
                    self.errors.append("update %d: HTTP %d" % (self.sent, r.status))
            except OSError as e:
                self.errors.append("update %d: %s" % (self.sent, e))
            self.stop.wait(self.every)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=35)


def test_console_in_headless_chromium():
    tools = _tools()
    if not tools:
        return
    chromium, node = tools
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        add_operator(gw.db, "olga@shop.example", "Ольга")
        add_operator(gw.db, "ivan@shop.example", "Иван")
        u, cid = escalated_chat(gw, fake, 8160000001, first="Анна")
        boris, taken = escalated_chat(gw, fake, 8160000002, first="Борис")
        vera, cid_v = escalated_chat(gw, fake, 8160000003, first="Вера")
        gleb, cid_g = escalated_chat(gw, fake, 8160000004, first="Глеб")
        ivan = login(gw, "ivan@shop.example")["access_token"]
        expect(call(gw, "POST", "/conversations/%s/claim" % taken, token=ivan), 200, "ivan claims")
        SHOTS.mkdir(exist_ok=True)
        text = "Здравствуйте, я Ольга. Чем помочь?"
        env = dict(os.environ, EF_URL=gw.base, EF_EMAIL="olga@shop.example",
                   EF_PASSWORD=PASSWORD, EF_CID=cid, EF_CID_TAKEN=taken, EF_REPLY=text,
                   EF_SHOT_DIR=str(SHOTS), CHROMIUM=chromium,
                   # the stream's conversations, and what the browser needs to
                   # write to the open one itself (Анна's chat)
                   EF_STREAM_CIDS=",".join((cid_v, cid_g, taken)),
                   EF_TG_WEBHOOK=gw.base + "/webhook/telegram", EF_TG_SECRET=gw.secret,
                   EF_TG_USER=json.dumps(u), EF_UPDATE_BASE=str(next_update_id() + 50000000))
        with Stream(gw, [vera, gleb, boris]) as stream:
            started = time.monotonic()
            r = subprocess.run([node, str(BROWSER_DIR / "console.test.mjs")], env=env,
                               capture_output=True, text=True, timeout=180)
        sys.stderr.write(r.stderr)
        sys.stderr.write("stream: %d updates in %.1f s\n" % (stream.sent, time.monotonic() - started))
        if r.returncode != 0:
            fail("console.test.mjs failed (screenshot in tests/e2e/.logs/):\n%s" %
                 r.stderr.strip()[-2000:])
        if stream.errors:
            fail("the stream of updates failed: %s" % "; ".join(stream.errors[:5]))
        # What the browser did reached the store and the customer.
        got = wait_texts(fake, u["id"], 3)
        assert_eq(got[2], text, "the operator's reply delivered to Telegram")
        assert_eq(psql1(gw.db, "SELECT status FROM conversations WHERE id = '%s'" % cid),
                  "active", "handed back to the bot")
        assert_eq(psql1(gw.db, "SELECT assigned_operator_id FROM conversations WHERE id = '%s'"
                        % taken) is not None, True, "ivan still holds the other one")
