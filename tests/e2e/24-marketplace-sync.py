"""24-marketplace-sync: a shop's Wildberries and Ozon orders reach the orders
table through the order sync (issue 10), against fake seller APIs on
loopback that speak the real wire format.

  easyflow integration add wildberries --name N   {"api_token"} on stdin
  easyflow integration add ozon --name N          {"client_id","api_key"}
  easyflow integration sync ID                    one run now; prints
      `sync <status>: N orders listed, M written, K failed, T ms`
  WILDBERRIES_API_URL / OZON_API_URL              the fakes' base URLs

Several pages are read (Wildberries' `next`, Ozon's cursor and offset), a
second sync changes nothing, a status only moves forward, a 429 mid-sync is
waited out (X-Ratelimit-Retry / Retry-After), refused credentials give a
`failed` sync_log and `error` in `integration list` (never the credential),
and the gateway checks a new shop's credentials and syncs it on its own
schedule."""

import json
import re
import time

from eftest import assert_eq, fail, fresh_db, psql, psql1, wait_until
from integration_helpers import KEY, UUID, cli, integration_status, integrations_gateway
from lib.fake_marketplaces import (OZON_API_KEY, OZON_CLIENT_ID, WB_TOKEN, fake_ozon,
                                   fake_wildberries)

SYNC_LINE = re.compile(r"^sync (\w+): (\d+) orders listed, (\d+) written, (\d+) failed")


def add(db, platform, name, creds, settings=(), env=None):
    args = ["add", platform, "--name", name]
    for s in settings:
        args += ["--setting", s]
    r = cli(db, *args, stdin=json.dumps(creds), env=env)
    if r.code != 0:
        fail("integration add %s exited %d: %s%s" % (platform, r.code, r.out, r.err))
    iid = r.out.splitlines()[0].strip()
    if not UUID.match(iid):
        fail("integration add: the first line is not an id: %r" % r.out)
    return iid.lower()


def add_wb(db, wb, name="wb-shop", token=WB_TOKEN, settings=("page_size=2",)):
    return add(db, "wildberries", name, {"api_token": token}, settings)


def add_ozon(db, oz, name="ozon-shop", key=OZON_API_KEY, settings=("page_size=2",)):
    return add(db, "ozon", name, {"client_id": OZON_CLIENT_ID, "api_key": key}, settings)


def sync(db, iid, wb=None, oz=None, code=0):
    env = {}
    if wb:
        env["WILDBERRIES_API_URL"] = wb.url
    if oz:
        env["OZON_API_URL"] = oz.url
    r = cli(db, "sync", iid, env=env)
    if r.code != code:
        fail("integration sync exited %d, expected %d: %s%s" % (r.code, code, r.out, r.err))
    m = SYNC_LINE.match(r.out.strip())
    if not m:
        fail("integration sync printed no `sync <status>: ...` line: %r %r" % (r.out, r.err))
    return {"status": m.group(1), "listed": int(m.group(2)), "written": int(m.group(3)),
            "failed": int(m.group(4)), "out": r.out, "err": r.err}


def orders(db, iid):
    rows = psql(db, "SELECT order_number, status, status_raw, order_ref, amount::text, "
                    "items::text, updated_at::text FROM orders WHERE integration_id = '%s' "
                    "ORDER BY order_number" % iid)
    return {r[0]: {"status": r[1], "raw": r[2], "ref": r[3], "amount": r[4],
                   "items": json.loads(r[5]), "updated_at": r[6]} for r in rows}


def sync_logs(db, iid):
    rows = psql(db, "SELECT status, sync_type, records_requested, records_synced, "
                    "records_failed, errors::text, duration_seconds, completed_at IS NOT NULL "
                    "FROM sync_logs WHERE integration_id = '%s' ORDER BY started_at" % iid)
    return [{"status": r[0], "type": r[1], "requested": int(r[2] or 0),
             "synced": int(r[3] or 0), "failed": int(r[4] or 0), "errors": json.loads(r[5]),
             "duration": r[6], "completed": r[7] == "t"} for r in rows]


def test_wildberries_pages_of_orders_then_a_second_sync_changes_nothing():
    wb = fake_wildberries()
    for oid in range(5001, 5006):
        wb.add_order(oid, supplier="confirm" if oid % 2 else "new")
    db = fresh_db()
    iid = add_wb(db, wb)
    got = sync(db, iid, wb=wb)
    assert_eq((got["status"], got["listed"], got["written"], got["failed"]),
              ("success", 5, 5, 0), "first sync (status, listed, written, failed)")
    pages = wb.calls("/api/v3/orders")
    if len(pages) < 3:
        fail("5 orders at page_size=2 need 3 pages, the fake saw %d: %r" % (len(pages), pages))
    if [p.query["next"] for p in pages[:3]] != ["0", "5002", "5004"]:
        fail("pages did not follow the answers' `next`: %r" % [p.query for p in pages])
    if not wb.calls("/api/v3/orders/status"):
        fail("no POST /api/v3/orders/status: the statuses were never asked")
    first = orders(db, iid)
    assert_eq(sorted(first), [str(i) for i in range(5001, 5006)], "stored order numbers")
    assert_eq(first["5001"]["status"], "assembling", "normalized status of confirm/waiting")
    assert_eq(first["5002"]["status"], "new", "normalized status of new/waiting")
    assert_eq(first["5001"]["ref"], "rid-5001.0.0", "order_ref is the rid")
    assert_eq(first["5001"]["amount"], "1299.00", "amount from convertedPrice (kopecks)")
    assert_eq(first["5001"]["items"][0]["article"], "shirt-blue-42", "item article")
    again = sync(db, iid, wb=wb)
    assert_eq((again["status"], again["written"]), ("success", 0), "second sync writes nothing")
    assert_eq(orders(db, iid), first, "orders after the second sync")
    logs = sync_logs(db, iid)
    assert_eq([(l["status"], l["type"], l["synced"]) for l in logs],
              [("success", "orders", 5), ("success", "orders", 0)], "sync_logs rows")
    if not all(l["completed"] and l["duration"] is not None for l in logs):
        fail("a sync_logs row without completed_at or duration: %r" % logs)
    assert_eq(integration_status(db, iid)["status"], "connected", "status after a success")


def test_wildberries_status_only_moves_forward():
    wb = fake_wildberries()
    wb.add_order(6001, supplier="confirm", wb="waiting")
    wb.add_order(6002, supplier="new", wb="waiting")
    db = fresh_db()
    iid = add_wb(db, wb)
    sync(db, iid, wb=wb)
    wb.set_status(6001, "complete", "sold")
    wb.set_status(6002, "cancel", "canceled")
    got = sync(db, iid, wb=wb)
    assert_eq(got["written"], 2, "orders changed by the second sync")
    o = orders(db, iid)
    assert_eq((o["6001"]["status"], o["6001"]["raw"]), ("delivered", "complete/sold"),
              "6001 after sold")
    assert_eq(o["6002"]["status"], "cancelled", "6002 after cancel")
    # The marketplace reports an older status (a replica behind): kept.
    wb.set_status(6001, "confirm", "waiting")
    got = sync(db, iid, wb=wb)
    assert_eq(got["written"], 0, "a status moving back writes nothing")
    assert_eq(orders(db, iid)["6001"]["status"], "delivered", "6001 stays delivered")


def test_wildberries_429_mid_sync_is_waited_out():
    wb = fake_wildberries()
    for oid in range(7001, 7006):
        wb.add_order(oid)
    wb.refuse("/api/v3/orders", 429, headers={"X-Ratelimit-Retry": "2",
                                              "X-Ratelimit-Limit": "300",
                                              "X-Ratelimit-Reset": "2"},
              body={"title": "too many requests", "detail": "limited by c122a060-a7fb-4665",
                    "status": 429, "statusText": "Too Many Requests"}, after=1)
    db = fresh_db()
    iid = add_wb(db, wb)
    got = sync(db, iid, wb=wb)
    assert_eq((got["status"], got["written"]), ("success", 5), "sync through a 429")
    pages = wb.calls("/api/v3/orders")
    refused = [i for i, p in enumerate(pages) if p.status == 429]
    if len(refused) != 1:
        fail("expected one refused page: %r" % pages)
    k = refused[0]
    gap = pages[k + 1].at - pages[k].at
    if gap < 1.9:
        fail("the refused page was asked again after %.2f s, before X-Ratelimit-Retry: 2" % gap)
    assert_eq(pages[k + 1].query["next"], pages[k].query["next"], "the same page asked again")


def test_wildberries_refused_token_fails_the_sync_and_shows_error():
    wb = fake_wildberries()
    wb.add_order(8001)
    db = fresh_db()
    bad = "eyJhbGciOiJFUzI1NiJ9.revoked-token-of-a-shop-0123456789abcdef"
    iid = add_wb(db, wb, token=bad)
    got = sync(db, iid, wb=wb, code=1)
    assert_eq(got["status"], "failed", "sync with a refused token")
    logs = sync_logs(db, iid)
    assert_eq([l["status"] for l in logs], ["failed"], "sync_logs after a 401")
    text = json.dumps(logs[0]["errors"], ensure_ascii=False)
    if "401" not in text or "token is malformed" not in text:
        fail("the errors JSON does not carry the platform's reason: %s" % text)
    row = integration_status(db, iid)
    assert_eq(row["status"], "error", "integration status after a 401")
    if "token is malformed" not in row["status_message"]:
        fail("integration list does not show the platform's reason: %r" % row)
    dump = psql1(db, "SELECT string_agg(errors::text || coalesce(error_message, ''), ' ') "
                     "FROM sync_logs")
    for name, text in (("sync_logs", dump or ""), ("the CLI", got["out"] + got["err"]),
                       ("integration list", row["status_message"])):
        if bad in text or bad[20:] in text:
            fail("%s shows the token" % name)
    backoff = psql1(db, "SELECT extract(epoch FROM next_sync_at - now())::int FROM integrations "
                        "WHERE id = '%s'" % iid)
    if backoff is None or not 0 < int(backoff) <= 60:
        fail("after a failure the next sync should come after a short backoff, not %r s" %
             backoff)


def test_ozon_fbs_cursor_and_fbo_offset_then_no_change():
    oz = fake_ozon()
    for i in range(1, 6):
        oz.add_posting("0123456789-000%d-1" % i, status="awaiting_packaging")
    for i in range(1, 4):
        oz.add_posting("9876543210-000%d-1" % i, scheme="fbo", status="delivering",
                       price="499.5", qty=2)
    db = fresh_db()
    iid = add_ozon(db, oz)
    got = sync(db, iid, oz=oz)
    assert_eq((got["status"], got["listed"], got["written"]), ("success", 8, 8),
              "first Ozon sync (status, listed, written)")
    fbs = oz.calls("/v4/posting/fbs/list")
    assert_eq([c.body.get("cursor") for c in fbs], ["", "2", "4"], "FBS cursors followed")
    if any(c.headers.get("client-id") != OZON_CLIENT_ID for c in fbs):
        fail("a request without the Client-Id header")
    fbo = oz.calls("/v3/posting/fbo/list")
    assert_eq([c.body.get("offset") for c in fbo][:2], [0, 2], "FBO offsets")
    o = orders(db, iid)
    assert_eq(o["0123456789-0001-1"]["status"], "assembling", "awaiting_packaging")
    assert_eq(o["0123456789-0001-1"]["ref"], "0123456789-0001", "order_ref is order_number")
    assert_eq(o["9876543210-0001-1"]["status"], "shipped", "delivering")
    assert_eq(o["9876543210-0001-1"]["amount"], "999.00", "2 x 499.5")
    again = sync(db, iid, oz=oz)
    assert_eq((again["status"], again["written"]), ("success", 0), "second Ozon sync")
    assert_eq(orders(db, iid), o, "orders after the second Ozon sync")
    # Incremental: the second FBS read asks only for status changes since
    # the first run (minus the overlap).
    last = oz.calls("/v4/posting/fbs/list")[-1].body["filter"]["last_changed_status_date"]
    if not last.get("from") or last["from"] < fbs[0].body["filter"]["last_changed_status_date"][
            "from"]:
        fail("the second run did not read from the last success: %r" % last)


def test_ozon_status_forward_429_and_refused_key():
    oz = fake_ozon()
    oz.add_posting("1111111111-0001-1", status="awaiting_deliver")
    db = fresh_db()
    iid = add_ozon(db, oz)
    sync(db, iid, oz=oz)
    oz.set_status("1111111111-0001-1", "delivered")
    oz.refuse("/v4/posting/fbs/list", 429, headers={"Retry-After": "1"},
              body={"code": 8, "message": "You have reached request rate limit per second",
                    "details": []})
    got = sync(db, iid, oz=oz)
    assert_eq((got["status"], got["written"]), ("success", 1), "sync through Ozon's 429")
    assert_eq(orders(db, iid)["1111111111-0001-1"]["status"], "delivered", "delivered")
    oz.set_status("1111111111-0001-1", "delivering")
    assert_eq(sync(db, iid, oz=oz)["written"], 0, "delivering after delivered writes nothing")
    assert_eq(orders(db, iid)["1111111111-0001-1"]["status"], "delivered", "stays delivered")
    # One shop per Client-Id: the refused key is another database's shop.
    db2 = fresh_db()
    bad = add_ozon(db2, oz, name="ozon-bad", key="00000000-dead-beef-0000-000000000000")
    got = sync(db2, bad, oz=oz, code=1)
    assert_eq(got["status"], "failed", "sync with a refused Api-Key")
    row = integration_status(db2, bad)
    assert_eq(row["status"], "error", "integration status after a 403")
    if "Invalid Api-Key" not in row["status_message"]:
        fail("integration list does not show Ozon's reason: %r" % row)


def test_the_gateway_checks_credentials_and_syncs_on_schedule():
    wb = fake_wildberries()
    wb.add_order(9001, supplier="complete", wb="sorted")
    db = fresh_db()
    good = add_wb(db, wb, name="wb-good", settings=("sync_interval_minutes=1",))
    bad = add_wb(db, wb, name="wb-bad", token="eyJhbGciOiJFUzI1NiJ9.not-this-shop-0123456789")
    env = {"WILDBERRIES_API_URL": wb.url, "TELEGRAM_BOT_TOKEN": None}
    with integrations_gateway(wb, db=db, env=env, secret=None) as gw:
        wait_until(lambda: psql1(db, "SELECT count(*) FROM sync_logs WHERE integration_id = "
                                     "'%s' AND status = 'success'" % good) == "1",
                   timeout=30, what="the scheduled sync of the good shop")
        wait_until(lambda: integration_status(db, bad)["status"] == "error", timeout=30,
                   what="the bad shop marked error")
        assert_eq(integration_status(db, good)["status"], "connected", "good shop status")
        if not wb.calls("/ping"):
            fail("the gateway made no credentials check (GET /ping)")
        assert_eq(orders(db, good)["9001"]["status"], "shipped", "synced by the gateway")
        due = psql1(db, "SELECT extract(epoch FROM next_sync_at - now())::int FROM "
                        "integrations WHERE id = '%s'" % good)
        if due is None or not 30 <= int(due) <= 60:
            fail("next sync of the good shop not in ~1 minute: %r s" % due)
        log = gw.log_text()
    if WB_TOKEN in log or WB_TOKEN[20:] in log:
        fail("the gateway log shows the token")


def test_a_run_left_running_by_a_killed_process_is_closed_as_failed():
    wb = fake_wildberries()
    wb.add_order(9101)
    db = fresh_db()
    iid = add_wb(db, wb)
    psql(db, "INSERT INTO sync_logs (integration_id, sync_type, status, started_at) VALUES "
             "('%s', 'orders', 'running', now() - interval '1 hour')" % iid)
    assert_eq(sync(db, iid, wb=wb)["status"], "success", "the next run")
    logs = sync_logs(db, iid)
    assert_eq([l["status"] for l in logs], ["failed", "success"], "the stale row closed")
    msg = psql1(db, "SELECT error_message FROM sync_logs WHERE integration_id = '%s' AND "
                    "status = 'failed'" % iid)
    if "interrupted" not in (msg or ""):
        fail("the stale run's row does not say it was interrupted: %r" % msg)
