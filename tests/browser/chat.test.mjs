// chat.test.mjs -- the web chat (/chat) in headless Chromium at a phone's
// width (Debian's chromium, driven by playwright-core): a visitor greets the
// demo bot and gets an answer, asks for a human (the conversation
// escalates, the bot goes quiet); an operator, through the API (login,
// claim, reply), joins: the page says so and the reply arrives on the page;
// a reload keeps the conversation; the operator hands it back and the bot
// answers again. Run by tests/e2e/21-webchat-browser.py.
//
// Environment: EF_URL (the gateway), EF_EMAIL, EF_PASSWORD (an operator),
// EF_REPLY (the operator's text), EF_SHOT_DIR (screenshots), CHROMIUM (the
// browser binary). Exit 0 on success; on a failure one line "FAIL: ..." on
// stderr and a screenshot 21-chat-failure.png.
import { chromium } from "playwright-core";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const url = env("EF_URL");
const reply = env("EF_REPLY");
const shots = env("EF_SHOT_DIR");
const T = 15000;

function step(what) {
  process.stderr.write(`step: ${what}\n`);
}

async function api(method, path, token, body) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await fetch(`${url}/api/v1${path}`, {
    method,
    headers,
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: HTTP ${r.status} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

async function until(what, fn, ms = T) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const browser = await chromium.launch({
  executablePath: env("CHROMIUM"),
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
const ctx = await browser.newContext({
  viewport: { width: 390, height: 780 },
  locale: "ru-RU",
  isMobile: true,
  hasTouch: true,
});
const page = await ctx.newPage();
const problems = [];
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("console", (m) => {
  if (m.type() === "error") problems.push(`console: ${m.text()}`);
});

const bots = page.locator(".msg.bot");
const say = async (text) => {
  await page.locator("#text").fill(text);
  await page.keyboard.press("Enter");
};

let ok = false;
try {
  step("open /chat");
  await page.goto(url + "/chat", { waitUntil: "load" });
  await page.locator("#state.online").waitFor({ timeout: T });

  step("greet the bot");
  await say("Привет");
  await bots.first().waitFor({ timeout: T });
  await page.locator(".msg.visitor .meta", { hasText: "✓" }).first().waitFor({ timeout: T });

  step("ask for a human");
  const before = await bots.count();
  await say("Позовите оператора, пожалуйста");
  await until("the bot's handover message", async () => (await bots.count()) > before);
  await page.locator(".note", { hasText: "оператор" }).first().waitFor({ timeout: T });
  await page.screenshot({ path: `${shots}/21-chat-escalated.png` });

  step("the operator logs in and finds the conversation");
  const tok = (await api("POST", "/auth/login", null, {
    email: env("EF_EMAIL"),
    password: env("EF_PASSWORD"),
  })).access_token;
  const conv = await until("the escalated web chat in the queue", async () => {
    const list = await api("GET", "/conversations?status=escalated", tok);
    return (list.conversations || []).find((c) => c.platform === "webchat");
  });

  step("escalated: the bot stays quiet");
  const quiet = await bots.count();
  await say("Алло, есть кто-нибудь?");
  await page.waitForTimeout(1500);
  if ((await bots.count()) !== quiet) throw new Error("the bot answered an escalated conversation");

  step("claim: the page says the operator joined");
  await api("POST", `/conversations/${conv.id}/claim`, tok);
  await page.locator(".note.joined").first().waitFor({ timeout: T });

  step("the operator's reply arrives on the page");
  await api("POST", `/conversations/${conv.id}/messages`, tok, { text: reply });
  await page.locator(".msg.operator .bubble", { hasText: reply }).waitFor({ timeout: T });
  await page.screenshot({ path: `${shots}/21-chat-operator.png` });

  step("a reload keeps the conversation");
  await page.reload({ waitUntil: "load" });
  await page.locator("#state.online").waitFor({ timeout: T });
  await page.locator(".msg.operator .bubble", { hasText: reply }).waitFor({ timeout: T });

  step("hand back: the bot answers again");
  await api("POST", `/conversations/${conv.id}/release`, tok);
  await page.locator(".note", { hasText: "снова отвечает бот" }).waitFor({ timeout: T });
  const after = await bots.count();
  await say("Привет");
  await until("the bot's answer after the hand-back", async () => (await bots.count()) > after);
  await page.screenshot({ path: `${shots}/21-chat-back-to-bot.png` });

  if (problems.length) throw new Error(problems.join("; "));
  ok = true;
} catch (e) {
  process.stderr.write(`FAIL: ${e.message}\n`);
  await page.screenshot({ path: `${shots}/21-chat-failure.png` }).catch(() => {});
} finally {
  await browser.close();
}
process.exit(ok ? 0 : 1);
