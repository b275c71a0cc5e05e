/* easyflow operator console: plain JS, no build step.
 *
 * Auth: the access token lives in memory only; the refresh token in
 * sessionStorage (this tab), rotated by /auth/refresh a minute before the
 * access token expires and on any 401. Data: the escalation queue, the
 * list and the open conversation are polled every few seconds (WebSocket
 * push comes later). Every text from the server goes through textContent,
 * never innerHTML. */
"use strict";

const API = "/api/v1";
const POLL_LIST_MS = 4000;
const POLL_CONV_MS = 2500;
const RT_KEY = "easyflow.refresh_token";
const LANG_KEY = "easyflow.lang";

/* ---- texts --------------------------------------------------------------- */

const TEXTS = {
  en: {
    "login.title": "Operator console",
    "login.email": "E-mail",
    "login.password": "Password",
    "login.submit": "Sign in",
    "login.bad": "Wrong e-mail or password.",
    "login.throttled": "Too many attempts. Try again in {s} s.",
    "app.title": "Operator console",
    "app.logout": "Sign out",
    "app.offline": "No connection to the gateway, retrying…",
    "queue.title": "Waiting for an operator",
    "queue.empty": "Nobody is waiting.",
    "list.title": "Conversations",
    "list.search": "Search names, chats, messages  ( / )",
    "list.empty": "No conversations.",
    "status.escalated": "Escalated",
    "status.active": "Bot",
    "status.paused": "Paused",
    "status.closed": "Closed",
    "status.all": "All",
    "view.pick": "Pick a conversation from the queue or the list.",
    "view.keys": "Keys: / search · Alt+↑/↓ previous/next · Enter send · Shift+Enter new line · Esc leave the box",
    "act.claim": "Claim",
    "act.release": "Hand back to bot",
    "act.close": "Close",
    "act.claimed": "You took this conversation.",
    "act.released": "Handed back to the bot.",
    "act.closedok": "Conversation closed.",
    "reply.ph": "Reply to the customer (Enter sends, Shift+Enter new line)",
    "reply.send": "Send",
    "reply.closed": "This conversation is closed.",
    "holder.you": "Held by you",
    "holder.other": "Taken by {name}",
    "holder.none": "Nobody holds it",
    "err.taken": "Taken by {name}: another operator holds this conversation.",
    "err.closed": "The conversation is closed.",
    "err.generic": "Error {status}: {error}",
    "role.user": "Customer",
    "role.assistant": "Bot",
    "role.operator": "Operator",
    "waiting": "waiting {t}",
    "tick.queued": "Queued",
    "tick.sent": "Sent",
    "tick.delivered": "Delivered",
    "tick.read": "Read",
    "tick.failed": "Not delivered: {why}",
    "unknown": "unknown reason",
    "customer": "Customer",
    "today": "Today",
  },
  ru: {
    "login.title": "Консоль оператора",
    "login.email": "Эл. почта",
    "login.password": "Пароль",
    "login.submit": "Войти",
    "login.bad": "Неверная почта или пароль.",
    "login.throttled": "Слишком много попыток. Повторите через {s} с.",
    "app.title": "Консоль оператора",
    "app.logout": "Выйти",
    "app.offline": "Нет связи со шлюзом, повторяем…",
    "queue.title": "Ждут оператора",
    "queue.empty": "Никто не ждёт.",
    "list.title": "Диалоги",
    "list.search": "Поиск по именам, чатам, сообщениям  ( / )",
    "list.empty": "Диалогов нет.",
    "status.escalated": "У оператора",
    "status.active": "Бот",
    "status.paused": "Пауза",
    "status.closed": "Закрытые",
    "status.all": "Все",
    "view.pick": "Выберите диалог в очереди или в списке.",
    "view.keys": "Клавиши: / поиск · Alt+↑/↓ предыдущий/следующий · Enter отправить · Shift+Enter новая строка · Esc выйти из поля",
    "act.claim": "Взять",
    "act.release": "Вернуть боту",
    "act.close": "Закрыть",
    "act.claimed": "Вы взяли диалог.",
    "act.released": "Диалог возвращён боту.",
    "act.closedok": "Диалог закрыт.",
    "reply.ph": "Ответ клиенту (Enter отправить, Shift+Enter новая строка)",
    "reply.send": "Отправить",
    "reply.closed": "Диалог закрыт.",
    "holder.you": "Ведёте вы",
    "holder.other": "Занят: {name}",
    "holder.none": "Никто не ведёт",
    "err.taken": "Занят: {name} — диалог ведёт другой оператор.",
    "err.closed": "Диалог закрыт.",
    "err.generic": "Ошибка {status}: {error}",
    "role.user": "Клиент",
    "role.assistant": "Бот",
    "role.operator": "Оператор",
    "waiting": "ждёт {t}",
    "tick.queued": "В очереди",
    "tick.sent": "Отправлено",
    "tick.delivered": "Доставлено",
    "tick.read": "Прочитано",
    "tick.failed": "Не доставлено: {why}",
    "unknown": "причина неизвестна",
    "customer": "Клиент",
    "today": "Сегодня",
  },
};

function pickLang() {
  const saved = localStorage.getItem(LANG_KEY);
  if (saved && TEXTS[saved]) return saved;
  const nav = (navigator.language || "en").toLowerCase();
  return nav.startsWith("ru") ? "ru" : "en";
}

let lang = pickLang();

function t(key, vars) {
  let s = (TEXTS[lang] && TEXTS[lang][key]) || TEXTS.en[key] || key;
  for (const k in vars || {}) s = s.split("{" + k + "}").join(String(vars[k]));
  return s;
}

function applyTexts() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-ph]")) el.placeholder = t(el.dataset.i18nPh);
  for (const sel of document.querySelectorAll(".lang-select")) sel.value = lang;
}

/* ---- small helpers ------------------------------------------------------- */

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

let toastTimer = 0;
function toast(msg, kind) {
  const box = $("toast");
  box.textContent = msg;
  box.className = "toast" + (kind === "info" ? " info" : "");
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, kind === "info" ? 3000 : 7000);
}

function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return s + (lang === "ru" ? " с" : "s");
  const m = Math.floor(s / 60);
  if (m < 60) return m + (lang === "ru" ? " мин" : " min");
  const h = Math.floor(m / 60);
  return h + (lang === "ru" ? " ч " : "h ") + (m % 60) + (lang === "ru" ? " мин" : "m");
}

function clock(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const now = new Date();
  const hm = d.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
  if (d.toDateString() === now.toDateString()) return hm;
  return d.toLocaleDateString(lang, { day: "numeric", month: "short" }) + " " + hm;
}

function customerName(c) {
  const u = c.customer || {};
  return u.name || (u.username ? "@" + u.username : "") || c.chat_id || t("customer");
}

/* ---- auth ---------------------------------------------------------------- */

const auth = { access: null, user: null, timer: 0, refreshing: null };

function setTokens(ans) {
  auth.access = ans.access_token;
  if (ans.user) auth.user = ans.user;
  sessionStorage.setItem(RT_KEY, ans.refresh_token);
  clearTimeout(auth.timer);
  const lead = Math.max(10, (ans.expires_in || 900) - 60);
  auth.timer = setTimeout(() => { refresh().catch(() => {}); }, lead * 1000);
}

function dropTokens() {
  auth.access = null;
  auth.user = null;
  clearTimeout(auth.timer);
  sessionStorage.removeItem(RT_KEY);
}

/* One refresh at a time; resolves true when a new pair arrived. */
function refresh() {
  if (auth.refreshing) return auth.refreshing;
  const rt = sessionStorage.getItem(RT_KEY);
  if (!rt) return Promise.resolve(false);
  auth.refreshing = fetch(API + "/auth/refresh", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: rt }),
  }).then(async (r) => {
    if (r.status === 200) {
      setTokens(await r.json());
      return true;
    }
    if (r.status === 401 || r.status === 403) dropTokens();
    return false;
  }).finally(() => { auth.refreshing = null; });
  return auth.refreshing;
}

/* A JSON call with the access token; one refresh and retry on 401.
 * Resolves {status, body}; a network failure rejects. */
async function api(method, path, body) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const headers = { Authorization: "Bearer " + auth.access };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(API + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    setOnline(true);
    if (r.status === 401 && attempt === 0 && await refresh()) continue;
    if (r.status === 401) {
      showLogin();
      return { status: 401, body: {} };
    }
    let data = {};
    try { data = await r.json(); } catch (e) { data = {}; }
    return { status: r.status, body: data };
  }
  return { status: 401, body: {} };
}

async function login(ev) {
  ev.preventDefault();
  const btn = $("login-submit");
  btn.disabled = true;
  $("login-error").textContent = "";
  try {
    const r = await fetch(API + "/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: $("login-email").value.trim(), password: $("login-password").value }),
    });
    if (r.status === 200) {
      setTokens(await r.json());
      $("login-password").value = "";
      showApp();
    } else if (r.status === 429) {
      $("login-error").textContent = t("login.throttled", { s: r.headers.get("Retry-After") || "60" });
    } else {
      $("login-error").textContent = t("login.bad");
    }
  } catch (e) {
    $("login-error").textContent = t("app.offline");
  } finally {
    btn.disabled = false;
  }
}

async function logout() {
  const rt = sessionStorage.getItem(RT_KEY);
  if (auth.access && rt) {
    try { await api("POST", "/auth/logout", { refresh_token: rt }); } catch (e) { /* gone anyway */ }
  }
  dropTokens();
  showLogin();
}

/* ---- screens ------------------------------------------------------------- */

const view = {
  status: "", q: "", list: [], queue: [], openId: null, conv: null,
  convKey: "", timers: [],
};

function showLogin() {
  for (const id of view.timers) clearInterval(id);
  view.timers = [];
  view.openId = null;
  view.conv = null;
  auth.access = null;
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-email").focus();
}

function showApp() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("me").textContent = auth.user ? (auth.user.name || auth.user.email || "") : "";
  selectTab(view.status);
  loadLists();
  for (const id of view.timers) clearInterval(id);
  view.timers = [
    setInterval(loadLists, POLL_LIST_MS),
    setInterval(() => { if (view.openId) loadConv(false); }, POLL_CONV_MS),
    setInterval(updateWaits, 1000),
  ];
}

function setOnline(ok) {
  $("conn").textContent = ok ? "" : t("app.offline");
}

/* ---- lists --------------------------------------------------------------- */

async function loadLists() {
  if (!auth.access) return;
  try {
    const qs = new URLSearchParams();
    if (view.status) qs.set("status", view.status);
    if (view.q) qs.set("q", view.q);
    const [queue, list] = await Promise.all([
      api("GET", "/conversations?status=escalated&limit=100"),
      api("GET", "/conversations?" + qs.toString()),
    ]);
    if (queue.status === 200) {
      /* Unclaimed first, the longest waiting on top. */
      view.queue = queue.body.conversations.slice().sort((a, b) =>
        (!!a.assigned_operator - !!b.assigned_operator) ||
        (Date.parse(a.escalated_at || a.updated_at) - Date.parse(b.escalated_at || b.updated_at)));
      renderQueue();
    }
    if (list.status === 200) {
      view.list = list.body.conversations;
      renderList();
    }
  } catch (e) {
    setOnline(false);
  }
}

function item(c, inQueue) {
  const li = el("li");
  const b = el("button");
  b.type = "button";
  b.dataset.id = c.id;
  if (c.id === view.openId) b.setAttribute("aria-current", "true");
  const name = el("span", "name", customerName(c));
  name.appendChild(el("span", "tag", c.platform));
  b.appendChild(name);
  if (inQueue) {
    const w = el("span", "when wait");
    w.dataset.since = c.escalated_at || c.updated_at || "";
    w.textContent = duration(Date.now() - Date.parse(w.dataset.since));
    b.appendChild(w);
  } else {
    b.appendChild(el("span", "when", clock(c.last_message ? c.last_message.created_at : c.updated_at)));
  }
  let last = c.last_message ? c.last_message.content || "" : "";
  if (inQueue && c.assigned_operator) {
    last = (auth.user && c.assigned_operator.id === auth.user.id)
      ? t("holder.you") + " · " + last
      : t("holder.other", { name: c.assigned_operator.name || c.assigned_operator.email }) + " · " + last;
  }
  b.appendChild(el("span", "last", last));
  b.addEventListener("click", () => openConv(c.id));
  li.appendChild(b);
  return li;
}

function renderInto(ul, rows, inQueue) {
  const keep = document.activeElement && ul.contains(document.activeElement)
    ? document.activeElement.dataset.id : null;
  ul.replaceChildren(...rows.map((c) => item(c, inQueue)));
  if (keep) {
    const b = ul.querySelector('button[data-id="' + CSS.escape(keep) + '"]');
    if (b) b.focus();
  }
}

function renderQueue() {
  renderInto($("queue"), view.queue, true);
  $("queue-count").textContent = String(view.queue.length);
  $("queue-empty").hidden = view.queue.length > 0;
  document.title = (view.queue.length ? "(" + view.queue.length + ") " : "") + "easyflow console";
}

function renderList() {
  renderInto($("list"), view.list, false);
  $("list-empty").hidden = view.list.length > 0;
}

function updateWaits() {
  for (const w of document.querySelectorAll(".wait[data-since]"))
    w.textContent = duration(Date.now() - Date.parse(w.dataset.since));
}

function selectTab(status) {
  view.status = status;
  for (const b of document.querySelectorAll(".tabs button"))
    b.setAttribute("aria-selected", b.dataset.status === status ? "true" : "false");
}

/* ---- one conversation ---------------------------------------------------- */

async function openConv(id) {
  view.openId = id;
  view.convKey = "";
  for (const b of document.querySelectorAll(".items button"))
    b.setAttribute("aria-current", b.dataset.id === id ? "true" : "false");
  await loadConv(true);
  if (view.conv && !$("reply").disabled) $("reply").focus();
}

async function loadConv(scrollDown) {
  const id = view.openId;
  let r;
  try { r = await api("GET", "/conversations/" + encodeURIComponent(id)); } catch (e) {
    setOnline(false);
    return;
  }
  if (id !== view.openId) return;
  if (r.status !== 200) {
    if (r.status !== 401) toast(t("err.generic", { status: r.status, error: r.body.error || "" }));
    return;
  }
  view.conv = r.body;
  renderConv(scrollDown);
}

function holderOf(c) {
  const op = c.assigned_operator;
  if (!op) return { cls: "", text: c.status === "escalated" ? t("holder.none") : "" };
  if (auth.user && op.id === auth.user.id) return { cls: "mine", text: t("holder.you") };
  return { cls: "other", text: t("holder.other", { name: op.name || op.email }) };
}

function renderConv(scrollDown) {
  const c = view.conv;
  $("placeholder").hidden = true;
  $("conv").hidden = false;
  $("conv-name").textContent = customerName(c);
  const meta = $("conv-meta");
  meta.replaceChildren(
    el("span", "status " + c.status, t("status." + c.status)),
    document.createTextNode(" · " + c.platform + " · " + c.chat_id + (c.state ? " · " + c.state : "")));
  const h = holderOf(c);
  $("conv-holder").className = "holder " + h.cls;
  $("conv-holder").textContent = h.text;
  const mine = auth.user && c.assigned_operator && c.assigned_operator.id === auth.user.id;
  const closed = c.status === "closed";
  $("btn-claim").disabled = closed || !!mine;
  const admin = auth.user && auth.user.role === "admin";
  const other = c.assigned_operator && !mine;
  $("btn-release").disabled = closed || c.status !== "escalated" || (other && !admin);
  $("btn-close").disabled = closed;
  $("reply").disabled = closed;
  $("reply-send").disabled = closed;
  $("reply").placeholder = closed ? t("reply.closed") : t("reply.ph");

  /* Messages: re-rendered only when something changed, keeping the
   * scroll position unless the operator was already at the bottom. */
  const key = JSON.stringify(c.messages.map((m) => [m.id, m.delivery_status, m.failed_reason]));
  if (key === view.convKey && !scrollDown) return;
  view.convKey = key;
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.replaceChildren(...c.messages.map((m) => message(c, m)));
  if (scrollDown || atBottom) box.scrollTop = box.scrollHeight;
}

const TICKS = { queued: "⏱", sending: "⏱", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "⚠" };

function tick(m) {
  const s = m.delivery_status || "queued";
  const span = el("span", "tick " + s, TICKS[s] || "⏱");
  span.dataset.status = s;
  span.title = s === "failed" ? t("tick.failed", { why: m.failed_reason || t("unknown") })
    : t("tick." + (TICKS[s] ? (s === "sending" ? "queued" : s) : "queued"));
  span.setAttribute("aria-label", span.title);
  return span;
}

function message(c, m) {
  const li = el("li", "msg " + m.role + " " + m.direction);
  li.dataset.id = m.id;
  const b = el("div", "bubble");
  const who = el("div", "who");
  const label = m.role === "user" ? customerName(c) : t("role." + m.role);
  who.appendChild(el("b", null, label));
  if (m.intent) {
    const conf = typeof m.confidence === "number" ? " · " + m.confidence.toFixed(2) : "";
    const chip = el("span", "intent" + (m.confidence !== null && m.confidence < 0.5 ? " low" : ""),
      m.intent + conf);
    chip.title = "intent" + conf;
    who.appendChild(chip);
  }
  b.appendChild(who);
  b.appendChild(el("div", "text", m.content || ""));
  const foot = el("div", "foot");
  foot.appendChild(el("span", null, clock(m.created_at)));
  if (m.direction === "outbound") foot.appendChild(tick(m));
  b.appendChild(foot);
  li.appendChild(b);
  return li;
}

/* claim | release | close, with 409 said plainly. */
async function act(action) {
  const id = view.openId;
  if (!id) return;
  let r;
  try { r = await api("POST", "/conversations/" + encodeURIComponent(id) + "/" + action); } catch (e) {
    setOnline(false);
    return;
  }
  if (r.status === 200) {
    toast(t(action === "claim" ? "act.claimed" : action === "release" ? "act.released" : "act.closedok"), "info");
  } else {
    showError(r);
  }
  await loadConv(false);
  loadLists();
}

function showError(r) {
  if (r.status === 409 && r.body.holder) {
    toast(t("err.taken", { name: r.body.holder.name || "?" }));
  } else if (r.status === 409) {
    toast(t("err.closed"));
  } else if (r.status !== 401) {
    toast(t("err.generic", { status: r.status, error: r.body.error || "" }));
  }
}

async function sendReply(ev) {
  if (ev) ev.preventDefault();
  const box = $("reply");
  const text = box.value.trim();
  if (!text || !view.openId || box.disabled) return;
  $("reply-send").disabled = true;
  try {
    const r = await api("POST", "/conversations/" + encodeURIComponent(view.openId) + "/messages", { text });
    if (r.status === 201) {
      box.value = "";
      await loadConv(true);
      loadLists();
    } else {
      showError(r);
    }
  } catch (e) {
    setOnline(false);
  } finally {
    $("reply-send").disabled = box.disabled;
    box.focus();
  }
}

/* ---- keyboard ------------------------------------------------------------ */

function moveSelection(step) {
  const ids = [...view.queue, ...view.list].map((c) => c.id)
    .filter((id, i, a) => a.indexOf(id) === i);
  if (!ids.length) return;
  const at = ids.indexOf(view.openId);
  const next = at < 0 ? 0 : Math.min(ids.length - 1, Math.max(0, at + step));
  openConv(ids[next]);
}

function onKey(ev) {
  if ($("app").hidden) return;
  const typing = ev.target.matches("input, textarea, select");
  if (ev.key === "/" && !typing) {
    ev.preventDefault();
    $("search").focus();
  } else if (ev.altKey && (ev.key === "ArrowDown" || ev.key === "ArrowUp")) {
    ev.preventDefault();
    moveSelection(ev.key === "ArrowDown" ? 1 : -1);
  } else if (ev.key === "Escape" && typing) {
    ev.target.blur();
  }
}

/* ---- start --------------------------------------------------------------- */

function init() {
  for (const sel of document.querySelectorAll(".lang-select")) {
    for (const [code, name] of [["en", "English"], ["ru", "Русский"]]) {
      const o = el("option", null, name);
      o.value = code;
      sel.appendChild(o);
    }
    sel.addEventListener("change", () => {
      lang = sel.value;
      localStorage.setItem(LANG_KEY, lang);
      applyTexts();
      renderQueue();
      renderList();
      view.convKey = ""; /* the messages' labels and times are re-rendered too */
      if (view.conv) renderConv(false);
    });
  }
  applyTexts();
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("btn-claim").addEventListener("click", () => act("claim"));
  $("btn-release").addEventListener("click", () => act("release"));
  $("btn-close").addEventListener("click", () => act("close"));
  $("reply-form").addEventListener("submit", sendReply);
  $("reply").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) sendReply(ev);
  });
  for (const b of document.querySelectorAll(".tabs button"))
    b.addEventListener("click", () => { selectTab(b.dataset.status); loadLists(); });
  let searchTimer = 0;
  $("search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { view.q = $("search").value.trim(); loadLists(); }, 300);
  });
  document.addEventListener("keydown", onKey);
  /* A reload keeps the session through the refresh token of this tab. */
  refresh().then((ok) => (ok ? showApp() : showLogin())).catch(() => showLogin());
}

document.addEventListener("DOMContentLoaded", init);
