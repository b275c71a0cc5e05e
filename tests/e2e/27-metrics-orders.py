"""27-metrics-orders: the hourly rollups into platform_metrics, the metrics
API and the orders linked to a conversation (issue 10).

A Wildberries shop (fake seller API on loopback) syncs its orders, then
its buyer chats bring traffic: answered questions, a reply the marketplace
refuses, a chat the bot escalates and an operator answers. The gateway's
rollup thread (EF_METRICS_ROLLUP_S=1) writes per integration and hour
messages received and sent, errors, API calls, escalations, the median
first response (bot and operator) and the sync's duration, equal to what
the stored rows say; an hour from before the start (a dead letter three
hours ago) is filled in at start; computing the same hour again changes
no row (same xmin, same values). GET /api/v1/metrics answers operators and
admins (401 without a token, 403 for another role, 400 with the reason for
a bad date, a reversed or too long range, an unknown platform).
GET /api/v1/conversations/{id} carries "orders": the orders the customer
named in the chat (an order number, the order the chat was opened from),
of this business only -- another shop's order with the same number never.
Then headless Chromium: the dashboard draws its charts and the
conversation view shows the linked order (skipped without chromium/node)."""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from api_helpers import PASSWORD, add_operator, call, expect, login
from eftest import REPO, TEST_SECRET_KEY, assert_eq, fail, fresh_db, psql, psql1, wait_until
from integration_helpers import cli, integrations_gateway
from lib import browser
from lib.fake_marketplaces import WB_TOKEN, fake_wildberries

SHOP_BOT = REPO / "bots" / "shop.yaml"
BROWSER_DIR = browser.BROWSER_DIR
SHOTS = Path(__file__).resolve().parent / ".logs"


# ---- set-up --------------------------------------------------------------------------

def shop(db, wb):
    """The shop's integration with two synced orders: 5001 shipped, 5002
    being packed (its chat names it by rid). Returns the id."""
    created = time.time() - 2 * 86400
    wb.add_order(5001, supplier="confirm", wb="waiting", created=created)
    wb.add_order(5002, supplier="confirm", wb="waiting", created=created, rid="rid-5002.0.0")
    r = cli(db, "add", "wildberries", "--name", "wb-shop", "--bot", str(SHOP_BOT), "--setting",
            "chat_poll_ms=200", stdin=json.dumps({"api_token": WB_TOKEN}))
    if r.code != 0:
        fail("integration add exited %d: %s%s" % (r.code, r.out, r.err))
    iid = r.out.splitlines()[0].strip().lower()
    wb.set_status(5001, "complete", "sorted")
    if cli(db, "sync", iid, env={"WILDBERRIES_API_URL": wb.url}).code != 0:
        fail("the order sync failed")
    return iid


def other_business(db):
    """Another business's shop holding an order 5001 of its own and 777."""
    psql(db, "INSERT INTO users (email, name, role) VALUES ('other@example.com', 'other', "
             "'operator')",
         "INSERT INTO integrations (user_id, platform_id, name, external_id) SELECT id, "
         "'wildberries', 'other-shop', NULL FROM users WHERE email = 'other@example.com'",
         "INSERT INTO orders (integration_id, marketplace, order_number, scheme, status, "
         "status_rank, status_raw, items) SELECT id, 'wildberries', n, 'fbs', 'cancelled', 4, "
         "'cancel/canceled', '[{\"name\": \"чужой товар\"}]' FROM integrations, "
         "(VALUES ('5001'), ('777')) v(n) WHERE name = 'other-shop'")


def gateway(wb, db):
    return integrations_gateway(wb, db=db, env={"WILDBERRIES_API_URL": wb.url,
                                                "TELEGRAM_BOT_TOKEN": None,
                                                "EF_METRICS_ROLLUP_S": "1"}, secret=None)


def wait_sent(wb, chat, n, timeout=30):
    wait_until(lambda: len(wb.sent(chat)) >= n, timeout=timeout,
               what="%d replies in chat %s" % (n, chat))
    return [t for _, t in wb.sent(chat)]


def traffic(wb, gw, db, iid):
    """Buyer chats: a refused reply, two order questions, a chat escalated
    and answered by an operator. Returns {name: conversation id}."""
    wb.refuse("/api/v1/seller/message", 400,
              body={"result": {}, "errors": ["Чат закрыт"]}, times=1)
    wb.buyer_says("1:chat-refused", "привет")
    wait_until(lambda: psql1(db, "SELECT count(*) FROM messages WHERE integration_id = '%s' AND "
                                 "delivery_status = 'failed'" % iid) == "1",
               timeout=30, what="the refused reply failed")
    wb.buyer_says("1:chat-number", "Где мой заказ 5001?")
    wb.buyer_says("1:chat-rid", "где мой заказ?", rid="rid-5002.0.0")
    wb.buyer_says("1:chat-other", "Где мой заказ 777?")
    wait_sent(wb, "1:chat-number", 1)
    wait_sent(wb, "1:chat-rid", 1)
    wait_sent(wb, "1:chat-other", 1)
    esc = "1:chat-escalated"
    wb.buyer_says(esc, "абырвалг")
    wait_sent(wb, esc, 1)
    wb.buyer_says(esc, "главрыба")
    wait_sent(wb, esc, 2)
    wait_until(lambda: psql1(db, "SELECT count(*) FROM conversations WHERE integration_id = "
                                 "'%s' AND status = 'escalated'" % iid) == "1",
               timeout=30, what="the chat escalated")
    cids = {name: psql1(db, "SELECT conversation_id FROM messages WHERE integration_id = '%s' "
                            "AND direction = 'inbound' AND metadata::text LIKE '%%%s%%' "
                            "LIMIT 1" % (iid, chat))
            for name, chat in (("number", "chat-number"), ("rid", "chat-rid"),
                               ("other", "chat-other"), ("escalated", "chat-escalated"))}
    wb.buyer_says(esc, "алло, есть кто?")
    wait_until(lambda: psql1(db, "SELECT count(*) FROM messages WHERE conversation_id = '%s' "
                                 "AND direction = 'inbound'" % cids["escalated"]) == "3",
               timeout=30, what="the third message of the escalated chat stored")
    add_operator(db, "olga@shop.example", name="Ольга")
    token = login(gw, "olga@shop.example")["access_token"]
    expect(call(gw, "POST", "/conversations/%s/messages" % cids["escalated"],
                {"text": "Здравствуйте, я Ольга. Чем помочь?"}, token=token), 201,
           "the operator's reply")
    wait_until(lambda: len(wb.sent(esc)) >= 3 and psql1(
        db, "SELECT count(*) FROM messages WHERE integration_id = '%s' AND direction = "
            "'outbound' AND delivery_status = 'queued'" % iid) == "0",
        timeout=30, what="every reply sent")
    return cids


# ---- what the rollup wrote -------------------------------------------------------------

def totals(db, iid):
    """metric -> (sum of values, merged attributes summed) over every hour."""
    rows = psql(db, "SELECT metric_type::text, metric_value::text, attributes::text FROM "
                    "platform_metrics WHERE integration_id = '%s' AND aggregation_period = "
                    "'hour'" % iid)
    out = {}
    for metric, value, attrs in rows:
        v, a = out.get(metric, (0.0, {}))
        for k, x in json.loads(attrs).items():
            if isinstance(x, (int, float)) and k.endswith(("samples", "runs", "replies",
                                                              "letters", "requests")):
                a[k] = a.get(k, 0) + x
        out[metric] = (v + float(value), a)
    return out


def stored(db, iid):
    """What the stored rows say the totals should be."""
    q = lambda sql: int(psql1(db, sql % iid))  # noqa: E731
    return {
        "messages_received": q("SELECT count(*) FROM messages WHERE integration_id = '%s' AND "
                               "direction = 'inbound'"),
        "messages_sent": q("SELECT count(*) FROM messages WHERE integration_id = '%s' AND "
                           "direction = 'outbound' AND delivery_status IN ('sent', "
                           "'delivered', 'read')"),
        "failed": q("SELECT count(*) FROM messages WHERE integration_id = '%s' AND "
                    "delivery_status = 'failed'"),
    }


def caught_up(db, iid):
    t, s = totals(db, iid), stored(db, iid)
    rt = t.get("response_time", (0, {}))[1]
    return (t.get("messages_received", (0,))[0] == s["messages_received"] and
            t.get("messages_sent", (0,))[0] == s["messages_sent"] and
            t.get("escalations", (0,))[0] == 1 and rt.get("operator_samples") == 1)


def snapshot(db, iid):
    return psql(db, "SELECT id, xmin::text, metric_type::text, period_start::text, "
                    "metric_value::text, attributes::text, recorded_at::text FROM "
                    "platform_metrics WHERE integration_id = '%s' ORDER BY period_start, "
                    "metric_type::text" % iid)


def check_rollups(db, iid):
    wait_until(lambda: caught_up(db, iid), timeout=30,
               what="the rollup caught up with the stored rows")
    t, s = totals(db, iid), stored(db, iid)
    assert_eq(t["errors"][0], s["failed"] + 1, "errors: the failed reply and the dead letter")
    assert_eq(t["errors"][1].get("failed_replies"), 1, "errors: one failed reply")
    assert_eq(t["errors"][1].get("dead_letters"), 1, "errors: one dead letter")
    rt = t["response_time"][1]
    if rt.get("bot_samples", 0) < 4:
        fail("bot first responses not counted: %r" % t["response_time"])
    sync = t.get("sync_duration")
    if not sync or sync[1].get("runs") != 1:
        fail("the order sync's duration not rolled up: %r" % sync)
    calls = t["api_calls"][1]
    if calls.get("replies", 0) < s["messages_sent"] + s["failed"] or \
            calls.get("sync_requests", 0) < 2:
        fail("api_calls miss replies or sync requests: %r (stored %r)" % (calls, s))
    # The dead letter of three hours ago: an hour before the gateway started.
    hour = psql1(db, "SELECT count(*) FROM platform_metrics WHERE integration_id = '%s' AND "
                     "metric_type = 'errors' AND period_start = date_trunc('hour', now() - "
                     "interval '3 hours') AND attributes->>'dead_letters' = '1'" % iid)
    assert_eq(hour, "1", "the hour three hours ago filled in at start")
    units = dict(psql(db, "SELECT DISTINCT metric_type::text, metric_unit FROM platform_metrics "
                          "WHERE integration_id = '%s'" % iid))
    assert_eq((units["messages_received"], units["response_time"]), ("count", "seconds"),
              "units")
    plat = psql1(db, "SELECT string_agg(DISTINCT platform_id, ',') FROM platform_metrics "
                     "WHERE integration_id = '%s'" % iid)
    assert_eq(plat, "wildberries", "platform_id of the rows")
    # Idempotent: the thread keeps recomputing (every second) and changes nothing.
    before = snapshot(db, iid)
    time.sleep(3)
    assert_eq(snapshot(db, iid), before, "rows after three more runs of the rollup")
    assert_eq(psql1(db, "SELECT ef_metrics_rollup(now())"), "0", "this hour again")
    assert_eq(psql1(db, "SELECT ef_metrics_rollup(now() - interval '3 hours')"), "0",
              "three hours ago again")
    assert_eq(snapshot(db, iid), before, "rows after running the rollup by hand")


# ---- the API -----------------------------------------------------------------------------

def _b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _token(claims):
    """A token signed as the gateway signs them (see 14-api-auth)."""
    prk = hmac.new(b"easyflow", bytes.fromhex(TEST_SECRET_KEY), hashlib.sha256).digest()
    key = hmac.new(prk, b"easyflow api access token v1\x01", hashlib.sha256).digest()
    signing = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode()) \
        + "." + _b64(json.dumps(claims, separators=(",", ":")).encode())
    return signing + "." + _b64(hmac.new(key, signing.encode(), hashlib.sha256).digest())


def check_metrics_api(gw, db, iid):
    add_operator(db, "boss@shop.example", name="Босс", role="admin")
    op = login(gw, "olga@shop.example")["access_token"]
    boss = login(gw, "boss@shop.example")["access_token"]
    expect(call(gw, "GET", "/metrics"), 401, "no token")
    expect(call(gw, "GET", "/metrics", token="garbage"), 401, "a bad token")
    now = int(time.time())
    viewer = _token({"sub": "00000000-0000-4000-8000-000000000001", "role": "viewer",
                     "iat": now, "exp": now + 600})
    assert_eq(expect(call(gw, "GET", "/metrics", token=viewer), 403, "another role")["error"],
              "operators only", "403 reason")
    for query, says in (("from=yesterday", "from"), ("from=2026-13-01", "from"),
                        ("to=2026-02-30", "to"), ("from=2026-12-07T25:00:00Z", "from"),
                        ("from=2026-12-07T10:00:00%2B3", "from"),
                        ("from=2026-12-07&to=2026-12-06", "before"),
                        ("from=2026-01-01&to=2026-03-01", "31 days"),
                        ("platform=myspace", "platform")):
        got = expect(call(gw, "GET", "/metrics?" + query, token=op), 400, query)
        if says not in got.get("error", ""):
            fail("400 for %s does not say %r: %r" % (query, says, got))
    body = expect(call(gw, "GET", "/metrics", token=op), 200, "operator, last 24 hours")
    mine = [m for m in body["metrics"] if m["integration_id"] == iid]
    names = {m["metric"] for m in mine}
    for want in ("messages_received", "messages_sent", "errors", "api_calls", "escalations",
                 "response_time", "sync_duration"):
        if want not in names:
            fail("GET /metrics lacks %s: %r" % (want, sorted(names)))
    m = next(m for m in mine if m["metric"] == "messages_received")
    assert_eq((m["platform"], m["integration"], m["unit"]), ("wildberries", "wb-shop", "count"),
              "a row's platform, integration and unit")
    total = sum(float(x["value"]) for x in mine if x["metric"] == "messages_received")
    assert_eq(total, float(stored(db, iid)["messages_received"]), "received via the API")
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(now + 86400))
    got = expect(call(gw, "GET", "/metrics?from=%s&to=%s&platform=wildberries" % (day, tomorrow),
                      token=boss), 200, "admin, a day of one platform")
    if not got["metrics"] or any(x["platform"] != "wildberries" for x in got["metrics"]):
        fail("platform=wildberries: %r" % got["metrics"][:3])
    got = expect(call(gw, "GET", "/metrics?platform=telegram&from=%d" % (now - 7200), token=op),
                 200, "another platform")
    assert_eq(got["metrics"], [], "no telegram rows")
    got = expect(call(gw, "GET", "/metrics?from=%d&to=%d" % (now + 7200, now + 10800),
                      token=op), 200, "a range without data")
    assert_eq(got["metrics"], [], "the future has no rows")


def check_orders_api(gw, cids):
    op = login(gw, "olga@shop.example")["access_token"]
    view = expect(call(gw, "GET", "/conversations/" + cids["number"], token=op), 200,
                  "the conversation that named 5001")
    orders = view.get("orders")
    if not isinstance(orders, list) or len(orders) != 1:
        fail("orders of the chat that named 5001: %r" % orders)
    o = orders[0]
    assert_eq((o["number"], o["status"], o["marketplace"]), ("5001", "shipped", "wildberries"),
              "our order 5001, not the other shop's")
    if "sorted" not in (o.get("status_raw") or "") or not o.get("items") or \
            not o.get("amount") or not o.get("ordered_at"):
        fail("the order lacks what the console shows: %r" % o)
    view = expect(call(gw, "GET", "/conversations/" + cids["rid"], token=op), 200, "rid chat")
    assert_eq([x["number"] for x in view["orders"]], ["5002"], "the chat's own order (rid)")
    assert_eq(view["orders"][0]["ref"], "rid-5002.0.0", "its reference")
    view = expect(call(gw, "GET", "/conversations/" + cids["other"], token=op), 200, "777")
    assert_eq(view["orders"], [], "another business's order 777 is never shown")
    view = expect(call(gw, "GET", "/conversations/" + cids["escalated"], token=op), 200, "esc")
    assert_eq(view["orders"], [], "a chat that named no order")


# ---- the console in Chromium ---------------------------------------------------------------

BROWSER_SCRIPT = r"""
import { chromium } from "playwright-core";
const env = (k) => process.env[k];
const T = 15000;
const browser = await chromium.launch({ executablePath: env("CHROMIUM"),
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"] });
const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 },
  locale: "ru-RU" })).newPage();
const problems = [];
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("console", (m) => {
  if (m.type() === "error" && !/WebSocket connection/.test(m.text())) problems.push(m.text());
});
let ok = false;
try {
  process.stderr.write("step: log in\n");
  await page.goto(env("EF_URL") + "/console", { waitUntil: "load" });
  await page.fill("#login-email", env("EF_EMAIL"));
  await page.fill("#login-password", env("EF_PASSWORD"));
  await page.press("#login-password", "Enter");
  await page.locator("#app").waitFor({ state: "visible", timeout: T });
  process.stderr.write("step: the dashboard draws its charts\n");
  await page.click("#dash-btn");
  await page.locator("#dash").waitFor({ state: "visible", timeout: T });
  await page.locator("#dash svg.chart").nth(2).waitFor({ timeout: T });
  const bars = await page.locator("#dash-messages svg.chart rect.bar").count();
  if (bars < 1) throw new Error("no bars in the messages chart");
  const esc = await page.locator("#dash-escalations svg.chart rect.bar").count();
  if (esc < 1) throw new Error("no bars in the escalations chart");
  const lines = await page.locator("#dash-response svg.chart .point").count();
  if (lines < 1) throw new Error("no points in the first-response chart");
  const legend = await page.locator("#dash-messages .legend").textContent();
  if (!/wildberries/.test(legend)) throw new Error(`legend without the platform: ${legend}`);
  const title = await page.locator("#dash h2").first().textContent();
  if (!/Панель|Дашборд|Метрики/.test(title)) throw new Error(`not Russian: ${title}`);
  await page.screenshot({ path: env("EF_SHOT_DIR") + "/27-dashboard.png" });
  process.stderr.write("step: the conversation shows its order\n");
  await page.click("#dash-close");
  await page.locator(`#list button[data-id="${env("EF_CID")}"]`).click({ timeout: T });
  const card = page.locator("#orders .order", { hasText: "5001" });
  await card.waitFor({ timeout: T });
  const text = await card.textContent();
  if (!/в доставку|shipped/i.test(text) || !/sorted/.test(text))
    throw new Error(`the order card lacks its statuses: ${text}`);
  await page.screenshot({ path: env("EF_SHOT_DIR") + "/27-orders.png" });
  if (problems.length) throw new Error(problems.join("; "));
  ok = true;
} catch (e) {
  process.stderr.write(`FAIL: ${e.message}\n`);
  await page.screenshot({ path: env("EF_SHOT_DIR") + "/27-failure.png" }).catch(() => {});
} finally {
  await browser.close();
}
process.exit(ok ? 0 : 1);
"""


def check_console(gw, cid):
    tools = browser.tools("27-metrics-orders")
    if not tools:
        return
    chromium, node = tools
    SHOTS.mkdir(exist_ok=True)
    env = dict(os.environ, EF_URL=gw.base, EF_EMAIL="olga@shop.example", EF_PASSWORD=PASSWORD,
               EF_CID=cid, EF_SHOT_DIR=str(SHOTS), CHROMIUM=chromium)
    r = subprocess.run([node, "--input-type=module", "-e", BROWSER_SCRIPT], env=env,
                       cwd=str(BROWSER_DIR), capture_output=True, text=True, timeout=180)
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        fail("the console in Chromium failed (screenshot tests/e2e/.logs/27-failure.png):\n%s"
             % r.stderr.strip()[-2000:])


# ---- the test --------------------------------------------------------------------------------

def test_rollups_metrics_api_and_linked_orders():
    wb = fake_wildberries()
    db = fresh_db()
    iid = shop(db, wb)
    other_business(db)
    psql(db, "INSERT INTO dead_letters (integration_id, platform, payload, error, created_at) "
             "VALUES ('%s', 'wildberries', '{}', 'unreadable event', now() - interval "
             "'3 hours')" % iid)
    with gateway(wb, db) as gw:
        cids = traffic(wb, gw, db, iid)
        check_rollups(db, iid)
        check_metrics_api(gw, db, iid)
        check_orders_api(gw, cids)
        check_console(gw, cids["number"])
