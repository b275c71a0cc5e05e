// console.test.mjs -- the operator console in headless Chromium (Debian's
// chromium, driven by playwright-core): log in, see the escalated
// conversation in the queue, open it, claim, reply (the reply appears with
// a delivery tick), write an internal note (shown in the history, never
// sent), pick a quick reply, hand it back; then, as an admin, the
// operators, integrations and quick replies pages. Run by
// tests/e2e/16-console-browser.py and 23-api-notes-quick.py.
//
// Environment: EF_URL (the gateway), EF_EMAIL, EF_PASSWORD, EF_CID (the
// escalated conversation), EF_REPLY (the text to send), EF_SHOT_DIR (where
// screenshots go), CHROMIUM (the browser binary). Optional: EF_NOTE (the
// note to write), EF_QUICK_TITLE/EF_QUICK_BODY (a quick reply that exists;
// without it the picker must say there is none), EF_ADMIN_EMAIL (an admin
// with EF_PASSWORD: the admin pages are walked through), EF_LIVE_CID (with
// EF_ADMIN_EMAIL: an escalated conversation the admin claims through the
// API while the console is live; the queue must show it within 3 s, which
// only a push can do since polling pauses while live), EF_PREFIX (the
// screenshots' name prefix, default "16"), EF_WINDOW_TEMPLATE (EF_CID is a
// WhatsApp conversation whose reply window closed: the banner, the closed
// box and the template button are checked instead of the reply, note and
// quick reply steps), EF_STREAM_CIDS (conversations in the queue that
// customers keep writing to while this runs: the queue must be updated in
// place, never redrawn), EF_TG_WEBHOOK/EF_TG_SECRET/EF_TG_USER/
// EF_UPDATE_BASE (the Telegram webhook, its secret token, EF_CID's customer
// as a Telegram User and the first update_id to use: messages are written
// to the open conversation, appended in place, the scroll position kept).
// Every run checks that one click opens a conversation. Exit 0 on success;
// on a failure one line "FAIL: ..." on stderr and a screenshot
// *-failure.png.
import { chromium } from "playwright-core";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const url = env("EF_URL");
const cid = env("EF_CID");
const reply = env("EF_REPLY");
const shots = env("EF_SHOT_DIR");
const T = 15000;
const prefix = process.env.EF_PREFIX || "16";
const note = process.env.EF_NOTE || "Проверить склад перед ответом";
const quickTitle = process.env.EF_QUICK_TITLE;
const adminEmail = process.env.EF_ADMIN_EMAIL;

function step(what) {
  process.stderr.write(`step: ${what}\n`);
}

const streamCids = (process.env.EF_STREAM_CIDS || "").split(",").filter(Boolean);
const tgUser = process.env.EF_TG_USER ? JSON.parse(process.env.EF_TG_USER) : null;
let updateId = Number(process.env.EF_UPDATE_BASE || "0");

/* The customer of EF_CID writes `text` (through the Telegram webhook). */
async function customerWrites(text) {
  updateId += 1;
  const r = await fetch(env("EF_TG_WEBHOOK"), {
    method: "POST",
    headers: { "Content-Type": "application/json",
      "X-Telegram-Bot-Api-Secret-Token": env("EF_TG_SECRET") },
    body: JSON.stringify({ update_id: updateId, message: {
      message_id: 100000 + (updateId % 100000), from: tgUser, date: Math.floor(Date.now() / 1000),
      chat: { id: tgUser.id, type: "private", first_name: tgUser.first_name }, text } }),
  });
  if (r.status !== 200) throw new Error(`webhook answered ${r.status} to ${text}`);
}

/* Waits until the stream changed the queue row of streamCids[0] `times`
 * more times (each a live event, a reload and a repaint). */
async function streamMoves(times) {
  const sel = `#queue button[data-id="${streamCids[0]}"] .last`;
  for (let i = 0; i < times; i++) {
    const before = await page.locator(sel).textContent();
    await page.waitForFunction(([s, b]) => {
      const n = document.querySelector(s);
      return n && n.textContent !== b;
    }, [sel, before], { timeout: T });
  }
}

/* Marks every row of `list` (a property on the element itself) and counts
 * the rows taken out of it from now on (a move counts too). */
async function watchRows(list) {
  await page.evaluate((id) => {
    const box = document.getElementById(id);
    window.__efRemoved = window.__efRemoved || {};
    window.__efRemoved[id] = 0;
    for (const li of box.children) li.__efMark = id;
    if (!box.__efObserved) {
      box.__efObserved = true;
      new MutationObserver((recs) => {
        for (const r of recs) window.__efRemoved[id] += r.removedNodes.length;
      }).observe(box, { childList: true });
    }
  }, list);
}

/* The rows of `list` marked by watchRows that are still its children, the
 * rows of it that are not marked, and the rows taken out since. */
function rowsKept(list) {
  return page.evaluate((id) => {
    const box = document.getElementById(id);
    const kids = [...box.children];
    return { kept: kids.filter((li) => li.__efMark === id).length,
      unmarked: kids.filter((li) => li.__efMark !== id).length, removed: window.__efRemoved[id] };
  }, list);
}

const browser = await chromium.launch({
  executablePath: env("CHROMIUM"),
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-US" });
const page = await ctx.newPage();
const problems = [];
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
// The refused login (401) and claim (409) are expected answers, not errors;
// so is a gateway without /ws/console (the console then polls).
const expected = /Failed to load resource: .* (401|409) |WebSocket connection to .*\/ws\/console' failed/;
page.on("console", (m) => {
  if (m.type() === "error" && !expected.test(m.text())) problems.push(`console: ${m.text()}`);
});

/* Messages arriving in the open conversation: appended, the others left
 * alone; followed at the bottom, the scroll position kept elsewhere. */
async function messagesInPlace() {
  step("the customer writes: messages appended in place, followed at the bottom");
  const box = page.locator("#messages");
  const geometry = () => box.evaluate((b) => ({ top: b.scrollTop,
    gap: b.scrollHeight - b.scrollTop - b.clientHeight }));
  await watchRows("messages");
  const before = (await rowsKept("messages")).kept;
  const n = 20;
  for (let i = 1; i <= n; i++) await customerWrites(`вопрос ${i} из ${n}`);
  await page.locator("#messages .msg.user", { hasText: `вопрос ${n} из ${n}` }).waitFor({ timeout: T });
  let m = await rowsKept("messages");
  let g = await geometry();
  if (m.kept !== before || m.removed || m.unmarked !== n)
    throw new Error(`the history was redrawn: ${JSON.stringify(m)} (had ${before}, ${n} new)`);
  if (g.gap > 40) throw new Error(`not following the bottom: ${JSON.stringify(g)}`);

  step("scrolled up: new messages keep the scroll position");
  await box.evaluate((b) => { b.scrollTop = 0; });
  await watchRows("messages");
  const all = (await rowsKept("messages")).kept;
  for (let i = 1; i <= 3; i++) await customerWrites(`ещё ${i}`);
  await page.locator("#messages .msg.user", { hasText: "ещё 3" }).waitFor({ timeout: T });
  m = await rowsKept("messages");
  g = await geometry();
  if (m.kept !== all || m.removed || m.unmarked !== 3 || g.top !== 0)
    throw new Error(`scrolled up: ${JSON.stringify(m)} of ${all}, ${JSON.stringify(g)}`);

  step("back at the bottom: followed again");
  await box.evaluate((b) => { b.scrollTop = b.scrollHeight; });
  await customerWrites("последний");
  await page.locator("#messages .msg.user", { hasText: "последний" }).waitFor({ timeout: T });
  g = await geometry();
  if (g.gap > 40) throw new Error(`not following the bottom again: ${JSON.stringify(g)}`);
  if ((await rowsKept("messages")).removed) throw new Error("the history was redrawn at the bottom");

  step("the dashboard over the open conversation: a live message does not uncover it");
  await page.click("#dash-btn");
  await page.locator("#dash").waitFor({ state: "visible", timeout: T });
  await customerWrites("под дашбордом");
  await page.locator("#messages .msg.user", { hasText: "под дашбордом" }).waitFor({ state: "attached", timeout: T });
  if (!(await page.locator("#conv").isHidden())) throw new Error("the conversation shows over the dashboard");
  await page.click("#dash-btn");
  await page.locator("#conv").waitFor({ state: "visible", timeout: T });
}

let ok = false;
try {
  step("open /console");
  await page.goto(url + "/console", { waitUntil: "load" });
  await page.locator("#login-form").waitFor({ state: "visible", timeout: T });

  step("log in");
  await page.fill("#login-email", env("EF_EMAIL"));
  await page.fill("#login-password", "wrong password");
  await page.press("#login-password", "Enter");
  await page.locator("#login-error", { hasText: "Wrong" }).waitFor({ timeout: T });
  await page.fill("#login-password", env("EF_PASSWORD"));
  await page.press("#login-password", "Enter");
  await page.locator("#app").waitFor({ state: "visible", timeout: T });

  step("the queue shows the escalated conversation with its waiting time");
  const inQueue = page.locator(`#queue button[data-id="${cid}"]`);
  await inQueue.waitFor({ timeout: T });
  const wait = await inQueue.locator(".wait").textContent();
  if (!/\d/.test(wait || "")) throw new Error(`no waiting time in the queue item: ${wait}`);

  let queueRows = 0;
  if (streamCids.length) {
    step("customers keep writing: the queue is updated in place, no row replaced");
    await page.locator('#live[data-state="live"]').waitFor({ timeout: T });
    for (const id of streamCids) await page.locator(`#queue button[data-id="${id}"]`).waitFor({ timeout: T });
    await watchRows("queue");
    await watchRows("list");
    queueRows = (await rowsKept("queue")).kept;
    const listRows = (await rowsKept("list")).kept;
    // The keyboard on a row that keeps changing: the focus stays on it.
    await page.focus(`#queue button[data-id="${streamCids[0]}"]`);
    await streamMoves(3);
    const q = await rowsKept("queue");
    if (q.kept !== queueRows || q.unmarked || q.removed)
      throw new Error(`the queue was redrawn under live events: ${JSON.stringify(q)} of ${queueRows} rows`);
    // The list is sorted by the last activity: rows move, none is replaced.
    const l = await rowsKept("list");
    if (l.kept !== listRows || l.unmarked)
      throw new Error(`the list was redrawn under live events: ${JSON.stringify(l)} of ${listRows} rows`);
    const focus = await page.evaluate(() => document.activeElement && document.activeElement.dataset.id);
    if (focus !== streamCids[0]) throw new Error(`the focus left the queue row: ${focus}`);
  }

  step("open it with one click: history with roles and intents");
  // One click, even while live events update the queue: a row is updated in
  // place, never replaced under the pointer.
  await inQueue.click();
  await page.locator("#conv").waitFor({ state: "visible", timeout: T });
  await page.locator("#messages .msg.user .intent", { hasText: "operator" }).first()
    .waitFor({ timeout: T });
  await page.locator("#messages .msg.assistant").first().waitFor({ timeout: T });
  if (streamCids.length) {
    step("more live events: the opened row stays selected, the same element, the focus kept");
    await streamMoves(3);
    const sel = await page.evaluate((id) => {
      const b = document.querySelector(`#queue button[data-id="${id}"]`);
      return { current: b.getAttribute("aria-current"), marked: b.parentNode.__efMark === "queue",
        focus: document.activeElement && document.activeElement.id };
    }, cid);
    const q = await rowsKept("queue");
    if (sel.current !== "true" || !sel.marked || sel.focus !== "reply" || q.kept !== queueRows || q.removed)
      throw new Error(`after live events: ${JSON.stringify(sel)}, ${JSON.stringify(q)} of ${queueRows} rows`);
  }

  step("claim");
  await page.click("#btn-claim");
  await page.locator("#conv-holder", { hasText: "Held by you" }).waitFor({ timeout: T });
  if (!(await page.locator("#btn-claim").isDisabled())) throw new Error("claim still enabled");

  const tmpl = process.env.EF_WINDOW_TEMPLATE;
  if (tmpl) {
    step("reply window closed: free text refused up front, the template offered");
    await page.locator("#window-banner", { hasText: "24 hours" }).waitFor({ timeout: T });
    if (!(await page.locator("#reply").isDisabled())) throw new Error("the reply box is open");
    await page.screenshot({ path: `${shots}/${prefix}-console-window.png` });
    await page.click(`#window-templates button[data-template="${tmpl}"]`);
    await page.locator("#messages .msg.operator", { hasText: `[template ${tmpl}]` })
      .waitFor({ timeout: T });
    await page.click("#mode-note");
    if (await page.locator("#reply").isDisabled()) throw new Error("notes refused too");
    await page.click("#mode-reply");
  } else {
    step("reply with Enter: it appears with a tick");
    await page.fill("#reply", reply);
    await page.press("#reply", "Enter");
    const mine = page.locator("#messages .msg.operator", { hasText: reply });
    await mine.waitFor({ timeout: T });
    if ((await page.inputValue("#reply")) !== "") throw new Error("the reply box was not cleared");
    // The fake Bot API accepts it: the tick turns from queued to sent.
    await mine.locator('.tick[data-status="sent"], .tick[data-status="delivered"], .tick[data-status="read"]')
      .waitFor({ timeout: T });
    await page.screenshot({ path: `${shots}/${prefix}-console-claimed.png` });

    if (tgUser) await messagesInPlace();

    const liveCid = process.env.EF_LIVE_CID;
    if (liveCid && adminEmail) {
      step("live: another operator's claim shows at once (/ws/console, polling paused)");
      await page.locator('#live[data-state="live"]').waitFor({ timeout: T });
      await page.locator(`#queue button[data-id="${liveCid}"]`).waitFor({ timeout: T });
      const status = await page.evaluate(async ([u, email, pw, id]) => {
        const l = await fetch(u + "/api/v1/auth/login", { method: "POST",
          headers: { "Content-Type": "application/json" }, body: JSON.stringify({ email, password: pw }) });
        const tok = (await l.json()).access_token;
        const r = await fetch(u + `/api/v1/conversations/${id}/claim`, { method: "POST",
          headers: { Authorization: "Bearer " + tok } });
        return r.status;
      }, [url, adminEmail, env("EF_PASSWORD"), liveCid]);
      if (status !== 200) throw new Error(`the admin's claim answered ${status}`);
      await page.locator(`#queue button[data-id="${liveCid}"]`, { hasText: "Taken by" })
        .waitFor({ timeout: 3000 });
    }

    step("an internal note: in the history, marked, not sent");
    await page.click("#mode-note");
    await page.locator('#reply-form[data-mode="note"]').waitFor({ timeout: T });
    await page.fill("#reply", note);
    await page.press("#reply", "Enter");
    await page.locator("#messages .msg.note", { hasText: note }).waitFor({ timeout: T });
    await page.click("#mode-reply");

    step("quick replies in the reply box");
    if (quickTitle) {
      await page.fill("#reply", "");
      await page.type("#reply", "/" + quickTitle.slice(0, 4));
      await page.locator("#quick-pop .quick-item", { hasText: quickTitle }).waitFor({ timeout: T });
      await page.screenshot({ path: `${shots}/${prefix}-console-quick.png` });
      await page.press("#reply", "Enter");
      const got = await page.inputValue("#reply");
      const want = (process.env.EF_QUICK_BODY || "").split("{name}")[0];
      if (!got.startsWith(want) || got.includes("{name}"))
        throw new Error(`quick reply not inserted (${JSON.stringify(got)})`);
      await page.fill("#reply", "");
    } else {
      await page.click("#quick-btn");
      await page.locator("#quick-empty").waitFor({ state: "visible", timeout: T });
      await page.press("#reply", "Escape");
      await page.locator("#quick-pop").waitFor({ state: "hidden", timeout: T });
    }

    step("switch to Russian and back");
    await page.selectOption("#app .lang-select", "ru");
    await page.locator("#btn-release", { hasText: "Вернуть боту" }).waitFor({ timeout: T });
    // the history is updated in place, its labels too
    await page.locator("#messages .msg.operator .who b", { hasText: "Оператор" }).first()
      .waitFor({ timeout: T });
    await page.screenshot({ path: `${shots}/${prefix}-console-ru.png` });
    await page.selectOption("#app .lang-select", "en");

    step("hand back to the bot");
    await page.click("#btn-release");
    await page.locator("#conv-meta .status.active").waitFor({ timeout: T });
    await inQueue.waitFor({ state: "detached", timeout: T });

    const taken = process.env.EF_CID_TAKEN;
    if (taken) {
      step("a conversation another operator holds: claim says who has it");
      await page.locator(`#queue button[data-id="${taken}"]`).click();
      await page.locator("#conv-holder", { hasText: "Taken by" }).waitFor({ timeout: T });
      await page.click("#btn-claim");
      await page.locator("#toast", { hasText: "Taken by" }).waitFor({ timeout: T });
      await page.screenshot({ path: `${shots}/${prefix}-console-taken.png` });
    }
  }

  step("log out");
  await page.click("#logout");
  await page.locator("#login-form").waitFor({ state: "visible", timeout: T });

  if (adminEmail) {
    step("an admin signs in: operators, integrations, quick replies");
    await page.fill("#login-email", adminEmail);
    await page.fill("#login-password", env("EF_PASSWORD"));
    await page.press("#login-password", "Enter");
    await page.locator("#admin-nav").waitFor({ state: "visible", timeout: T });
    await page.click('#admin-nav button[data-page="operators"]');
    await page.locator("#admin-body table.grid td", { hasText: env("EF_EMAIL") }).waitFor({ timeout: T });
    await page.screenshot({ path: `${shots}/${prefix}-console-operators.png` });
    await page.click('#admin-nav button[data-page="integrations"]');
    await page.locator("#admin-body table.grid .istatus").first().waitFor({ timeout: T });
    const secret = process.env.EF_SECRET;
    if (secret && ((await page.content()) || "").includes(secret)) throw new Error("credentials shown");
    await page.screenshot({ path: `${shots}/${prefix}-console-integrations.png` });
    await page.click('#admin-nav button[data-page="quick"]');
    await page.locator("#admin-body form").waitFor({ timeout: T });
    await page.fill('#admin-body input[name="title"]', "Спасибо");
    await page.fill('#admin-body textarea[name="body"]', "Спасибо, {name}! Хорошего дня.");
    await page.click('#admin-body button[type="submit"]');
    await page.locator("#admin-body table.grid td", { hasText: "Спасибо, {name}!" }).waitFor({ timeout: T });
    await page.screenshot({ path: `${shots}/${prefix}-console-quick-admin.png` });
    await page.click("#admin-close");
    await page.click("#logout");
    await page.locator("#login-form").waitFor({ state: "visible", timeout: T });
  }
  if (problems.length) throw new Error(problems.join("; "));
  ok = true;
} catch (e) {
  process.stderr.write(`FAIL: ${e.message.split("\n")[0]}\n`);
  await page.screenshot({ path: `${shots}/${prefix}-console-failure.png` }).catch(() => {});
} finally {
  await browser.close();
}
process.exit(ok ? 0 : 1);
