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
// quick reply steps). Exit 0 on success; on a
// failure one line "FAIL: ..." on stderr and a screenshot *-failure.png.
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

  step("open it: history with roles and intents");
  // The queue is drawn again when a live event arrives (a reply sent, a
  // claim): a click that lands on the item being replaced opens nothing, so
  // click again (the user would) until the conversation opens.
  for (let tries = 0; ; tries++) {
    await inQueue.click();
    try {
      await page.locator("#conv").waitFor({ state: "visible", timeout: 5000 });
      break;
    } catch (e) {
      if (tries >= 2) throw e;
    }
  }
  await page.locator("#messages .msg.user .intent", { hasText: "operator" }).first()
    .waitFor({ timeout: T });
  await page.locator("#messages .msg.assistant").first().waitFor({ timeout: T });

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
