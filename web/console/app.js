/* easyflow operator console: plain JS, no build step.
 *
 * Auth: the access token lives in memory only; the refresh token in
 * sessionStorage (this tab), rotated by /auth/refresh a minute before the
 * access token expires and on any 401. Data: live updates over
 * /ws/console (docs/websocket.md: ids only, the details fetched from the
 * API); while the socket is closed, the queue, the list and the open
 * conversation are polled every few seconds instead (and once in a while
 * even when live, as a safety net). What changes is updated in place,
 * row by row, at most once per animation frame (see reconcile), so a live
 * event never swaps the element under the operator's pointer. Every text
 * from the server goes through textContent, never innerHTML. */
"use strict";

const API = "/api/v1";
const POLL_LIST_MS = 4000;
const POLL_CONV_MS = 2500;
const LIVE_SAFETY_MS = 30000; /* a reload even while live updates flow */
const QUICK_POLL_MS = 60000;
const WS_PROTO = "ef.console.v1";
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
    "unread": "New message from the customer",
    "live.on": "Live",
    "live.on.title": "Live updates: new messages appear at once",
    "live.off": "Polling",
    "live.off.title": "Live updates unavailable: refreshing every few seconds",
    "mode.reply": "Reply",
    "mode.note": "Internal note",
    "note.ph": "Internal note: only operators see it (Enter saves)",
    "note.save": "Save note",
    "note.saved": "Note saved.",
    "note.label": "Internal note",
    "note.hint": "Not sent to the customer",
    "quick.button": "Quick replies",
    "quick.empty": "No quick replies yet: an admin adds them.",
    "quick.nomatch": "No quick reply matches.",
    "quick.hint": "Type / to pick a quick reply",
    "window.closed": "The customer wrote more than {h} hours ago: this platform accepts only an approved template until they write again. You can still add notes.",
    "window.notemplate": "No approved template is configured for this channel.",
    "window.send": "Send template “{name}”",
    "window.sent": "Template queued.",
    "window.soon": "Reply window closes in {t}",
    "window.ph": "Reply window closed: send a template, or switch to an internal note",
    "admin.operators": "Operators",
    "admin.integrations": "Integrations",
    "admin.quick": "Quick replies",
    "admin.close": "Back to conversations",
    "admin.add": "Add",
    "admin.save": "Save",
    "admin.cancel": "Cancel",
    "admin.edit": "Edit",
    "admin.delete": "Delete",
    "admin.disable": "Disable",
    "admin.enable": "Enable",
    "admin.saved": "Saved.",
    "admin.active": "Active",
    "admin.disabled": "Disabled",
    "col.name": "Name",
    "col.email": "E-mail",
    "col.role": "Role",
    "col.status": "Status",
    "col.last_login": "Last sign-in",
    "col.platform": "Platform",
    "col.webhook": "Webhook",
    "col.title": "Title",
    "col.body": "Text",
    "col.lang": "Language",
    "col.position": "Order",
    "f.password": "Password (8+ characters)",
    "f.credentials": "Credentials (JSON)",
    "f.settings": "Settings (JSON, optional)",
    "f.lang": "Language (empty: any)",
    "f.creds_note": "Credentials are write-only: they are encrypted and never shown again.",
    "f.badjson": "{what} is not a JSON object.",
    "f.body_hint": "{name} becomes the customer's name.",
    "role.admin": "Admin",
    "op.released": "Disabled; {n} conversation(s) went back to the queue.",
    "empty.rows": "Nothing here yet.",
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
    "unread": "Новое сообщение клиента",
    "live.on": "Онлайн",
    "live.on.title": "Обновления в реальном времени: новые сообщения появляются сразу",
    "live.off": "Опрос",
    "live.off.title": "Обновления в реальном времени недоступны: обновляем каждые несколько секунд",
    "mode.reply": "Ответ",
    "mode.note": "Заметка",
    "note.ph": "Внутренняя заметка: её видят только операторы (Enter сохраняет)",
    "note.save": "Сохранить",
    "note.saved": "Заметка сохранена.",
    "note.label": "Внутренняя заметка",
    "note.hint": "Клиенту не отправляется",
    "quick.button": "Шаблоны ответов",
    "quick.empty": "Шаблонов пока нет: их добавляет администратор.",
    "quick.nomatch": "Подходящих шаблонов нет.",
    "quick.hint": "Наберите / чтобы выбрать шаблон",
    "window.closed": "Клиент писал больше {h} ч назад: до его нового сообщения платформа принимает только одобренный шаблон. Заметки добавлять можно.",
    "window.notemplate": "Для этого канала не настроен одобренный шаблон.",
    "window.send": "Отправить шаблон «{name}»",
    "window.sent": "Шаблон поставлен в очередь.",
    "window.soon": "Окно ответа закроется через {t}",
    "window.ph": "Окно ответа закрыто: отправьте шаблон или напишите заметку",
    "admin.operators": "Операторы",
    "admin.integrations": "Интеграции",
    "admin.quick": "Шаблоны ответов",
    "admin.close": "К диалогам",
    "admin.add": "Добавить",
    "admin.save": "Сохранить",
    "admin.cancel": "Отмена",
    "admin.edit": "Изменить",
    "admin.delete": "Удалить",
    "admin.disable": "Отключить",
    "admin.enable": "Включить",
    "admin.saved": "Сохранено.",
    "admin.active": "Активен",
    "admin.disabled": "Отключён",
    "col.name": "Имя",
    "col.email": "Эл. почта",
    "col.role": "Роль",
    "col.status": "Статус",
    "col.last_login": "Последний вход",
    "col.platform": "Платформа",
    "col.webhook": "Вебхук",
    "col.title": "Название",
    "col.body": "Текст",
    "col.lang": "Язык",
    "col.position": "Порядок",
    "f.password": "Пароль (от 8 символов)",
    "f.credentials": "Учётные данные (JSON)",
    "f.settings": "Настройки (JSON, необязательно)",
    "f.lang": "Язык (пусто: любой)",
    "f.creds_note": "Учётные данные только записываются: они шифруются и больше не показываются.",
    "f.badjson": "{what}: это не JSON-объект.",
    "f.body_hint": "{name} заменяется именем клиента.",
    "role.admin": "Администратор",
    "op.released": "Отключён; диалогов возвращено в очередь: {n}.",
    "empty.rows": "Пока пусто.",
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

/* ---- in-place updates ------------------------------------------------------
 * Live events come in bursts, and the lists they change are updated in
 * place, never redrawn: every row is keyed (data-key), a row whose data
 * did not change is not touched, one that changed keeps its element and
 * only what differs in it is rewritten. So the element under the
 * operator's pointer, the focus, the selected row and the scroll position
 * survive an update, and a click is never lost on a row being replaced.
 * Repaints are coalesced: at most one per animation frame. */

/* Makes `cur` look like `next` (a node freshly built for the same data),
 * touching only what differs; returns the node that stays in the page. */
function morph(cur, next) {
  if (cur.nodeType !== next.nodeType || cur.nodeName !== next.nodeName) {
    cur.replaceWith(next);
    return next;
  }
  if (cur.nodeType !== Node.ELEMENT_NODE) {
    if (cur.nodeValue !== next.nodeValue) cur.nodeValue = next.nodeValue;
    return cur;
  }
  for (const a of [...cur.attributes]) if (!next.hasAttribute(a.name)) cur.removeAttribute(a.name);
  for (const a of next.attributes) if (cur.getAttribute(a.name) !== a.value) cur.setAttribute(a.name, a.value);
  const want = [...next.childNodes];
  want.forEach((n, i) => {
    const have = cur.childNodes[i];
    if (have) morph(have, n);
    else cur.appendChild(n);
  });
  while (cur.childNodes.length > want.length) cur.lastChild.remove();
  return cur;
}

/* The indexes i of the longest run of idx[i] >= 0 increasing with i: the
 * rows that keep their place when a list is reordered. */
function steadyRun(idx) {
  const tails = [];
  const prev = new Array(idx.length).fill(-1);
  for (let i = 0; i < idx.length; i++) {
    if (idx[i] < 0) continue;
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (idx[tails[mid]] < idx[i]) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) prev[i] = tails[lo - 1];
    tails[lo] = i;
  }
  const keep = new Set();
  for (let i = tails.length ? tails[tails.length - 1] : -1; i >= 0; i = prev[i]) keep.add(i);
  return keep;
}

/* Makes the children of `parent` the rows [{key, node: () => Element,
 * sig}], in this order: a row already there (same key) is morphed into
 * node() (not even built when its sig, a string of all it shows, did not
 * change), a new one inserted, a gone one removed, and the fewest rows
 * moved. The focus stays on the element that had it. */
function reconcile(parent, rows) {
  const focused = parent.contains(document.activeElement) ? document.activeElement : null;
  const wanted = new Map();
  for (const r of rows) if (!wanted.has(String(r.key))) wanted.set(String(r.key), r);
  const old = new Map();
  for (const ch of [...parent.children]) {
    const k = ch.dataset.key;
    if (k === undefined || !wanted.has(k) || old.has(k)) ch.remove();
    else old.set(k, ch);
  }
  const nodes = [...wanted].map(([k, r]) => {
    const have = old.get(k);
    if (have && r.sig !== undefined && have.efSig === r.sig) return have;
    const fresh = r.node();
    fresh.dataset.key = k;
    const node = have ? morph(have, fresh) : fresh;
    node.efSig = r.sig;
    return node;
  });
  const pos = new Map([...parent.children].map((ch, i) => [ch, i]));
  const stay = steadyRun(nodes.map((n) => (pos.has(n) ? pos.get(n) : -1)));
  let next = null;
  for (let i = nodes.length - 1; i >= 0; i--) {
    if (!stay.has(i)) parent.insertBefore(nodes[i], next);
    next = nodes[i];
  }
  if (focused && focused.isConnected && document.activeElement !== focused)
    focused.focus({ preventScroll: true });
}

/* Repaints wanted ("queue", "list", "conv"), done together at the next
 * animation frame (a burst of events repaints once), or at once by
 * paintNow(). A hidden tab has no frames: a timer then, so that the
 * title's count stays current. */
const paint = { parts: new Set(), scrollDown: false, pending: false };

function paintSoon(part, scrollDown) {
  paint.parts.add(part);
  if (scrollDown) paint.scrollDown = true;
  if (paint.pending) return;
  paint.pending = true;
  if (document.hidden) setTimeout(paintNow, 100);
  else requestAnimationFrame(paintNow);
}

function paintNow() {
  if (!paint.pending) return;
  const parts = paint.parts;
  const down = paint.scrollDown;
  paint.pending = false;
  paint.parts = new Set();
  paint.scrollDown = false;
  if (parts.has("queue")) renderQueue();
  if (parts.has("list")) renderList();
  if (parts.has("conv") && view.conv) renderConv(down);
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
  liveAuth();
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
  status: "", q: "", list: [], queue: [], openId: null, conv: null, timers: [],
  listBusy: false, listAgain: false,
  /* Answers can come back out of order: an older one never replaces what a
   * newer one showed. */
  convSeq: 0, convShown: 0,
};

function showLogin() {
  /* Shown already (a late 401 of a call that started before signing out):
   * the focus stays where the user is typing. */
  const shown = !$("login").hidden;
  liveStop();
  for (const id of view.timers) clearInterval(id);
  view.timers = [];
  view.openId = null;
  view.conv = null;
  auth.access = null;
  $("app").hidden = true;
  $("login").hidden = false;
  if (!shown) $("login-email").focus();
}

function showApp() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("me").textContent = auth.user ? (auth.user.name || auth.user.email || "") : "";
  $("admin-nav").hidden = !isAdmin();
  selectTab(view.status);
  loadLists();
  loadQuick();
  liveStart();
  for (const id of view.timers) clearInterval(id);
  /* Polling: the fallback while the socket is closed, a slow safety net
   * while it is live. */
  const stale = (at) => !live.ready || Date.now() - at > LIVE_SAFETY_MS;
  view.timers = [
    setInterval(() => { if (stale(live.lastList)) loadLists(); }, POLL_LIST_MS),
    setInterval(() => { if (view.openId && stale(live.lastConv)) loadConv(false); }, POLL_CONV_MS),
    setInterval(updateWaits, 1000),
    setInterval(loadQuick, QUICK_POLL_MS),
  ];
}

function isAdmin() {
  return !!(auth.user && auth.user.role === "admin");
}

function setOnline(ok) {
  $("conn").textContent = ok ? "" : t("app.offline");
}

/* ---- lists --------------------------------------------------------------- */

/* One load at a time: asked again meanwhile (a burst of events, a tab
 * change), it runs once more when the first one ends. */
async function loadLists() {
  if (!auth.access) return;
  if (view.listBusy) {
    view.listAgain = true;
    return;
  }
  view.listBusy = true;
  view.listAgain = false;
  try {
    await fetchLists();
  } finally {
    view.listBusy = false;
  }
  if (view.listAgain) loadLists();
}

async function fetchLists() {
  live.lastList = Date.now();
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
      paintSoon("queue");
    }
    if (list.status === 200) {
      view.list = list.body.conversations;
      paintSoon("list");
    }
  } catch (e) {
    setOnline(false);
  }
}

/* A new customer message in a conversation this operator opened before
 * (and is not looking at now): the list marks it. */
const seen = {};

function markSeen(c) {
  const last = c.messages && c.messages.length ? c.messages[c.messages.length - 1] : null;
  seen[c.id] = last ? Date.parse(last.created_at) : 0;
}

function unread(c) {
  const m = c.last_message;
  return c.id !== view.openId && seen[c.id] !== undefined && m && m.role === "user" &&
    Date.parse(m.created_at) > seen[c.id];
}

/* One row of the queue or the list (a click on it: listClick). */
function item(c, inQueue) {
  const li = el("li");
  const b = el("button");
  b.type = "button";
  b.dataset.id = c.id;
  b.setAttribute("aria-current", c.id === view.openId ? "true" : "false");
  if (unread(c)) {
    b.classList.add("unread");
    b.title = t("unread");
  }
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
  li.appendChild(b);
  return li;
}

/* Rows are updated in place, keyed by conversation id (reconcile); the
 * waiting times tick in updateWaits. */
function renderInto(ul, rows, inQueue) {
  const day = new Date().toDateString();
  const me = auth.user ? auth.user.id : "";
  reconcile(ul, rows.map((c) => ({ key: c.id, node: () => item(c, inQueue),
    sig: JSON.stringify([c, lang, day, me, c.id === view.openId, unread(c)]) })));
}

/* One listener per list: a row keeps its element across updates, but the
 * listener does not depend on it at all. */
function listClick(ev) {
  const b = ev.target.closest("button[data-id]");
  if (b && ev.currentTarget.contains(b)) openConv(b.dataset.id);
}

function renderQueue() {
  renderInto($("queue"), view.queue, true);
  setText($("queue-count"), String(view.queue.length));
  $("queue-empty").hidden = view.queue.length > 0;
  const title = (view.queue.length ? "(" + view.queue.length + ") " : "") + "easyflow console";
  if (document.title !== title) document.title = title;
}

function renderList() {
  renderInto($("list"), view.list, false);
  $("list-empty").hidden = view.list.length > 0;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function updateWaits() {
  for (const w of document.querySelectorAll(".wait[data-since]"))
    setText(w, duration(Date.now() - Date.parse(w.dataset.since)));
}

function selectTab(status) {
  view.status = status;
  for (const b of document.querySelectorAll(".tabs button"))
    b.setAttribute("aria-selected", b.dataset.status === status ? "true" : "false");
}

/* ---- one conversation ---------------------------------------------------- */

async function openConv(id) {
  closeAdmin();
  closeDash();
  if (view.openId !== id) setMode("reply");
  view.openId = id;
  for (const b of document.querySelectorAll(".items button"))
    b.setAttribute("aria-current", b.dataset.id === id ? "true" : "false");
  await loadConv(true);
  if (view.conv && !$("reply").disabled) $("reply").focus();
}

/* Loads the open conversation and repaints it: at once when scrollDown
 * (the operator's own action: opening it, sending), else at the next
 * frame with whatever else changed meanwhile. */
async function loadConv(scrollDown) {
  const id = view.openId;
  if (!id) return; /* closed (or signed out) while this was scheduled */
  live.lastConv = Date.now();
  const seq = ++view.convSeq;
  let r;
  try { r = await api("GET", "/conversations/" + encodeURIComponent(id)); } catch (e) {
    setOnline(false);
    return;
  }
  if (id !== view.openId || seq < view.convShown) return;
  view.convShown = seq;
  if (r.status !== 200) {
    if (r.status !== 401) toast(t("err.generic", { status: r.status, error: r.body.error || "" }));
    return;
  }
  view.conv = r.body;
  markSeen(r.body);
  paintSoon("conv", scrollDown);
  if (scrollDown) paintNow();
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
  /* A live update while an admin page or the dashboard covers it: drawn,
   * but left hidden under them. */
  $("conv").hidden = !!(admin.page || dash.open);
  $("conv-name").textContent = customerName(c);
  const meta = $("conv-meta");
  const fresh = meta.cloneNode(false);
  fresh.append(el("span", "status " + c.status, t("status." + c.status)),
    " · " + c.platform + " · " + c.chat_id + (c.state ? " · " + c.state : ""));
  morph(meta, fresh);
  const h = holderOf(c);
  $("conv-holder").className = "holder " + h.cls;
  setText($("conv-holder"), h.text);
  const mine = auth.user && c.assigned_operator && c.assigned_operator.id === auth.user.id;
  const closed = c.status === "closed";
  $("btn-claim").disabled = closed || !!mine;
  const other = c.assigned_operator && !mine;
  $("btn-release").disabled = closed || c.status !== "escalated" || (other && !isAdmin());
  $("btn-close").disabled = closed;
  renderWindow(c);
  renderReplyBox();
  renderOrders(c); /* dashboard.js: the orders linked to it, beside the history */

  /* The history: messages and internal notes by time, updated in place
   * (a new message appended, a changed tick rewritten, nothing else
   * touched), keeping the scroll position unless the operator was
   * already at the bottom. */
  const notes = c.notes || [];
  const who = JSON.stringify([customerName(c), lang, new Date().toDateString()]);
  const rows = c.messages.map((m) => ({ at: Date.parse(m.created_at), key: "m-" + m.id,
    node: () => message(c, m), sig: who + JSON.stringify(m) }))
    .concat(notes.map((n) => ({ at: Date.parse(n.created_at), key: "n-" + n.id,
      node: () => noteItem(n), sig: who + JSON.stringify(n) })))
    .sort((a, b) => a.at - b.at);
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  reconcile(box, rows);
  if (scrollDown || atBottom) box.scrollTop = box.scrollHeight;
}

function noteItem(n) {
  const li = el("li", "msg note");
  li.dataset.id = "note-" + n.id;
  const b = el("div", "bubble");
  const who = el("div", "who");
  who.appendChild(el("b", null, t("note.label")));
  who.appendChild(el("span", null, (n.author && n.author.name) || ""));
  b.appendChild(who);
  b.appendChild(el("div", "text", n.body));
  const foot = el("div", "foot");
  foot.appendChild(el("span", null, t("note.hint") + " · " + clock(n.created_at)));
  b.appendChild(foot);
  li.appendChild(b);
  return li;
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
  if (m.delivery_status === "failed")
    b.appendChild(el("div", "failed-reason", t("tick.failed", { why: m.failed_reason || t("unknown") })));
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
  const note = view.mode === "note";
  $("reply-send").disabled = true;
  try {
    const path = "/conversations/" + encodeURIComponent(view.openId) + (note ? "/notes" : "/messages");
    const r = await api("POST", path, note ? { body: text } : { text });
    if (r.status === 201) {
      box.value = "";
      if (note) toast(t("note.saved"), "info");
      await loadConv(true);
      loadLists();
    } else if (r.status === 422 && r.body.error === "outside_reply_window") {
      if (view.conv) view.conv.reply_window = r.body.reply_window;
      toast(r.body.reason || r.body.error);
      await loadConv(false);
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

/* ---- reply box: reply or internal note, the reply window -------------------- */

view.mode = "reply";

function setMode(mode) {
  view.mode = mode;
  $("reply-form").dataset.mode = mode;
  $("mode-reply").setAttribute("aria-selected", mode === "reply" ? "true" : "false");
  $("mode-note").setAttribute("aria-selected", mode === "note" ? "true" : "false");
  renderReplyBox();
}

function windowClosed(c) {
  return !!(c && c.reply_window && c.reply_window.open === false && c.status !== "closed");
}

function renderReplyBox() {
  const c = view.conv;
  const closed = !c || c.status === "closed";
  const note = view.mode === "note";
  const blocked = !note && windowClosed(c);
  const box = $("reply");
  box.disabled = closed || blocked;
  $("reply-send").disabled = box.disabled;
  $("reply-send").textContent = note ? t("note.save") : t("reply.send");
  box.placeholder = closed ? t("reply.closed") : note ? t("note.ph") : blocked ? t("window.ph") : t("reply.ph");
  $("quick-btn").disabled = box.disabled || note;
  $("reply-hint").textContent = note ? t("note.hint") : box.disabled ? "" : t("quick.hint");
  if (box.disabled || note) quickClose();
}

/* The banner over the reply box: the window closed (templates offered)
 * or closing soon. */
function renderWindow(c) {
  const w = c.reply_window;
  const banner = $("window-banner");
  const tpl = $("window-templates");
  banner.className = "banner";
  if (windowClosed(c)) {
    setText($("window-text"), t("window.closed", { h: Math.round((w.limit_s || 86400) / 3600) }));
    /* In place too: a live event must not swap the button being clicked. */
    const rows = (w.templates || []).map((one) => ({ key: "t-" + one.name, node: () => {
      const b = el("button", "primary", t("window.send", { name: one.name }));
      b.type = "button";
      b.dataset.template = one.name;
      b.addEventListener("click", () => sendTemplate(one.name, b));
      return b;
    } }));
    if (!rows.length) rows.push({ key: "none", node: () => el("span", "muted", t("window.notemplate")) });
    reconcile(tpl, rows);
    banner.hidden = false;
    return;
  }
  reconcile(tpl, []);
  const left = w && w.closes_at ? w.closes_at * 1000 - Date.now() : Infinity;
  if (c.status !== "closed" && left < 3600 * 1000) {
    banner.className = "banner soft";
    setText($("window-text"), t("window.soon", { t: duration(left) }));
    banner.hidden = false;
    return;
  }
  banner.hidden = true;
}

async function sendTemplate(name, btn) {
  if (!view.openId) return;
  btn.disabled = true;
  try {
    const r = await api("POST", "/conversations/" + encodeURIComponent(view.openId) + "/messages",
      { template: name });
    if (r.status === 201) {
      toast(t("window.sent"), "info");
      await loadConv(true);
      loadLists();
    } else {
      showError(r);
    }
  } catch (e) {
    setOnline(false);
  } finally {
    btn.disabled = false;
  }
}

/* ---- quick replies -------------------------------------------------------------- */

const quick = { rows: [], open: false, filter: "", sel: 0, slash: false };

async function loadQuick() {
  if (!auth.access) return;
  try {
    const r = await api("GET", "/quick-replies");
    if (r.status === 200) {
      quick.rows = r.body.quick_replies || [];
      if (quick.open) renderQuick();
    }
  } catch (e) { /* the next poll */ }
}

function quickMatches() {
  const f = quick.filter.toLowerCase();
  const convLang = view.conv && view.conv.customer ? view.conv.customer.language : null;
  return quick.rows
    .filter((q) => !f || q.title.toLowerCase().includes(f) || q.body.toLowerCase().includes(f))
    .sort((a, b) => (!!b.lang && b.lang === convLang) - (!!a.lang && a.lang === convLang));
}

function renderQuick() {
  const rows = quickMatches();
  if (quick.sel >= rows.length) quick.sel = Math.max(0, rows.length - 1);
  /* In place (the arrows and a reload while open change one row or none);
   * clicks: quickClick. */
  reconcile($("quick-list"), rows.map((q, i) => ({ key: q.id, node: () => {
    const li = el("li");
    const b = el("button", "quick-item");
    b.type = "button";
    b.setAttribute("role", "option");
    b.setAttribute("aria-selected", i === quick.sel ? "true" : "false");
    b.dataset.id = q.id;
    b.appendChild(el("b", null, q.title));
    if (q.lang) b.appendChild(el("span", "tag", q.lang));
    b.appendChild(el("span", "quick-body", q.body));
    li.appendChild(b);
    return li;
  } })));
  const empty = $("quick-empty");
  empty.textContent = quick.rows.length ? t("quick.nomatch") : t("quick.empty");
  empty.hidden = rows.length > 0;
}

function quickClick(ev) {
  const b = ev.target.closest(".quick-item");
  const q = b && quick.rows.find((x) => String(x.id) === b.dataset.id);
  if (q) quickInsert(q);
}

function quickOpen(filter, slash) {
  quick.open = true;
  quick.filter = filter;
  quick.slash = !!slash;
  quick.sel = 0;
  $("quick-pop").hidden = false;
  $("quick-btn").setAttribute("aria-expanded", "true");
  renderQuick();
  loadQuick();
}

function quickClose() {
  quick.open = false;
  $("quick-pop").hidden = true;
  $("quick-btn").setAttribute("aria-expanded", "false");
}

/* "{name}" in a quick reply becomes the customer's first name. */
function fillQuick(body) {
  const name = view.conv ? customerName(view.conv) : "";
  return body.split("{name}").join(name);
}

function quickInsert(q) {
  const box = $("reply");
  const text = fillQuick(q.body);
  if (quick.slash) {
    box.value = text;
  } else {
    const at = box.selectionStart || box.value.length;
    box.value = box.value.slice(0, at) + text + box.value.slice(box.selectionEnd || at);
  }
  quickClose();
  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);
}

/* Typing "/word" into an empty box filters the quick replies. */
function quickFromBox() {
  if (view.mode !== "reply") return;
  const v = $("reply").value;
  if (/^\/[^\n]*$/.test(v)) quickOpen(v.slice(1), true);
  else if (quick.open && quick.slash) quickClose();
}

/* Arrows, Enter and Esc while the list is open; true when handled. */
function quickKey(ev) {
  if (!quick.open) return false;
  const rows = quickMatches();
  if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
    quick.sel = Math.min(rows.length - 1, Math.max(0, quick.sel + (ev.key === "ArrowDown" ? 1 : -1)));
    renderQuick();
  } else if (ev.key === "Enter" && !ev.shiftKey && rows.length) {
    quickInsert(rows[quick.sel]);
  } else if (ev.key === "Escape") {
    quickClose();
  } else {
    return false;
  }
  ev.preventDefault();
  ev.stopPropagation();
  return true;
}

/* ---- live updates: /ws/console (docs/websocket.md) ---------------------------- */

const live = { ws: null, ready: false, wanted: false, backoff: 1000, timer: 0,
  lastList: 0, lastConv: 0, listTimer: 0, convTimer: 0 };

function renderLive() {
  const b = $("live");
  b.dataset.state = live.ready ? "live" : "poll";
  b.textContent = live.ready ? t("live.on") : t("live.off");
  b.title = live.ready ? t("live.on.title") : t("live.off.title");
}

function liveStart() {
  live.wanted = true;
  live.backoff = 1000;
  liveConnect();
}

function liveStop() {
  live.wanted = false;
  clearTimeout(live.timer);
  if (live.ws) {
    const ws = live.ws;
    live.ws = null;
    try { ws.close(1000); } catch (e) { /* closed */ }
  }
  live.ready = false;
  renderLive();
}

function liveAuth() {
  if (live.ws && live.ws.readyState === WebSocket.OPEN && auth.access)
    live.ws.send(JSON.stringify({ type: "auth", token: auth.access }));
}

function liveConnect() {
  if (!live.wanted || live.ws || typeof WebSocket === "undefined") return;
  let ws;
  try {
    ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host +
      "/ws/console", WS_PROTO);
  } catch (e) {
    liveRetry();
    return;
  }
  live.ws = ws;
  ws.onopen = liveAuth;
  ws.onmessage = (ev) => {
    let f;
    try { f = JSON.parse(ev.data); } catch (e) { return; }
    liveFrame(f);
  };
  ws.onclose = (ev) => {
    if (live.ws !== ws) return;
    live.ws = null;
    const was = live.ready;
    live.ready = false;
    renderLive();
    if (was) { loadLists(); if (view.openId) loadConv(false); } /* catch up by polling */
    if (ev.code === 4401) refresh().finally(liveRetry);
    else liveRetry();
  };
  ws.onerror = () => { /* onclose follows */ };
}

function liveRetry() {
  if (!live.wanted) return;
  clearTimeout(live.timer);
  live.timer = setTimeout(liveConnect, live.backoff);
  live.backoff = Math.min(30000, live.backoff * 2);
}

function liveFrame(f) {
  if (f.type === "ready") {
    const first = !live.ready;
    live.ready = true;
    live.backoff = 1000;
    renderLive();
    if (first) { loadLists(); if (view.openId) loadConv(false); } /* what happened meanwhile */
  } else if (f.type === "conversation" || f.type === "message" || f.type === "delivery") {
    soon("listTimer", loadLists);
    if (f.conversation_id && f.conversation_id === view.openId) soon("convTimer", () => loadConv(false));
    if (f.type === "conversation" && f.status === "escalated" && !f.assigned) flashTitle();
  }
}

/* Coalesces a burst of events into one reload. */
function soon(slot, fn) {
  if (live[slot]) return;
  live[slot] = setTimeout(() => { live[slot] = 0; fn(); }, 150);
}

let flashTimer = 0;
function flashTitle() {
  if (!document.hidden) return;
  clearInterval(flashTimer);
  let n = 0;
  const base = document.title;
  flashTimer = setInterval(() => {
    document.title = n++ % 2 ? base : "● " + base;
    if (!document.hidden || n > 20) { clearInterval(flashTimer); document.title = base; }
  }, 1000);
}

/* ---- admin pages: operators, integrations, quick replies ------------------------ */

const admin = { page: null };

function openAdmin(page) {
  closeDash();
  admin.page = page;
  $("placeholder").hidden = true;
  $("conv").hidden = true;
  $("admin").hidden = false;
  for (const b of document.querySelectorAll("#admin-nav button"))
    b.setAttribute("aria-current", b.dataset.page === page ? "true" : "false");
  $("admin-title").textContent = t("admin." + page);
  $("admin-body").replaceChildren();
  ({ operators: adminOperators, integrations: adminIntegrations, quick: adminQuick })[page]();
}

function closeAdmin() {
  if (!admin.page) return;
  admin.page = null;
  $("admin").hidden = true;
  for (const b of document.querySelectorAll("#admin-nav button")) b.setAttribute("aria-current", "false");
  if (view.conv) $("conv").hidden = false;
  else $("placeholder").hidden = false;
}

function table(cols, rows) {
  const tb = el("table", "grid");
  const head = el("tr");
  for (const c of cols) head.appendChild(el("th", null, c));
  const thead = el("thead");
  thead.appendChild(head);
  tb.appendChild(thead);
  const body = el("tbody");
  for (const r of rows) body.appendChild(r);
  tb.appendChild(body);
  return rows.length ? tb : el("p", "empty", t("empty.rows"));
}

function cell(tr, content, cls) {
  const td = el("td", cls);
  if (content instanceof Node) td.appendChild(content);
  else td.textContent = content === null || content === undefined ? "" : String(content);
  tr.appendChild(td);
  return td;
}

function button(label, cls, fn) {
  const b = el("button", cls, label);
  b.type = "button";
  b.addEventListener("click", async () => {
    b.disabled = true;
    try { await fn(); } finally { b.disabled = false; }
  });
  return b;
}

function field(label, input) {
  const l = el("label", "field");
  l.appendChild(el("span", null, label));
  l.appendChild(input);
  return l;
}

function input(name, type, value) {
  const i = el(type === "textarea" ? "textarea" : "input");
  i.name = name;
  if (type !== "textarea") i.type = type || "text";
  if (value !== undefined && value !== null) i.value = value;
  return i;
}

function formBox(fields, submitLabel, onSubmit) {
  const f = el("form", "admin-form");
  for (const x of fields) f.appendChild(x);
  const err = el("p", "error");
  err.setAttribute("role", "alert");
  const row = el("div", "form-row");
  const sub = el("button", "primary", submitLabel);
  sub.type = "submit";
  row.appendChild(sub);
  f.appendChild(err);
  f.appendChild(row);
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.textContent = "";
    sub.disabled = true;
    try {
      const msg = await onSubmit(f);
      if (msg) err.textContent = msg;
    } catch (e) {
      err.textContent = t("app.offline");
    } finally {
      sub.disabled = false;
    }
  });
  return f;
}

function fld(f, name) {
  return f.elements.namedItem(name);
}

function errText(r) {
  return t("err.generic", { status: r.status, error: r.body.error || "" });
}

async function adminOperators() {
  const r = await api("GET", "/operators");
  if (admin.page !== "operators") return;
  if (r.status !== 200) { toast(errText(r)); return; }
  const rows = r.body.operators.map((o) => {
    const tr = el("tr");
    tr.dataset.id = o.id;
    cell(tr, o.name);
    cell(tr, o.email);
    cell(tr, t("role." + o.role));
    cell(tr, o.active ? t("admin.active") : t("admin.disabled"), o.active ? "ok" : "off");
    cell(tr, o.last_login_at ? clock(o.last_login_at) : "—");
    const self = auth.user && o.id === auth.user.id;
    cell(tr, self ? "" : button(o.active ? t("admin.disable") : t("admin.enable"), null, async () => {
      const a = await api("POST", "/operators/" + o.id + (o.active ? "/disable" : "/enable"));
      if (a.status !== 200) { toast(errText(a)); return; }
      if (o.active && a.body.released) toast(t("op.released", { n: a.body.released }), "info");
      openAdmin("operators");
    }));
    return tr;
  });
  const role = el("select");
  role.name = "role";
  for (const v of ["operator", "admin"]) {
    const o = el("option", null, t("role." + v));
    o.value = v;
    role.appendChild(o);
  }
  const form = formBox([
    field(t("col.email"), input("email", "email")),
    field(t("col.name"), input("name")),
    field(t("col.role"), role),
    field(t("f.password"), input("password", "password")),
  ], t("admin.add"), async (f) => {
    const body = { email: fld(f, "email").value.trim(), name: fld(f, "name").value.trim(), role: fld(f, "role").value,
      password: fld(f, "password").value };
    const a = await api("POST", "/operators", body);
    if (a.status !== 201) return errText(a);
    toast(t("admin.saved"), "info");
    openAdmin("operators");
    return "";
  });
  fld(form, "password").autocomplete = "new-password";
  $("admin-body").replaceChildren(
    table([t("col.name"), t("col.email"), t("col.role"), t("col.status"), t("col.last_login"), ""], rows),
    el("h3", null, t("admin.add")), form);
}

function parseObject(text, what) {
  if (!text.trim()) return {};
  try {
    const v = JSON.parse(text);
    if (v && typeof v === "object" && !Array.isArray(v)) return v;
  } catch (e) { /* below */ }
  throw new Error(t("f.badjson", { what }));
}

async function adminIntegrations() {
  const r = await api("GET", "/integrations");
  if (admin.page !== "integrations") return;
  if (r.status !== 200) { toast(errText(r)); return; }
  const rows = r.body.integrations.map((it) => {
    const tr = el("tr");
    tr.dataset.id = it.id;
    cell(tr, it.name);
    cell(tr, it.platform);
    const st = el("span", "istatus " + it.status, it.status);
    const box = el("div");
    box.appendChild(st);
    if (it.status_message) box.appendChild(el("div", "muted small", it.status_message));
    cell(tr, box);
    cell(tr, it.webhook_path || "—", "mono small");
    cell(tr, button(it.enabled ? t("admin.disable") : t("admin.enable"), null, async () => {
      const a = await api("POST", "/integrations/" + it.id + (it.enabled ? "/disable" : "/enable"));
      if (a.status !== 200) { toast(errText(a)); return; }
      openAdmin("integrations");
    }));
    return tr;
  });
  const plat = input("platform");
  plat.setAttribute("list", "platforms");
  const dl = el("datalist");
  dl.id = "platforms";
  for (const p of ["telegram", "whatsapp", "webchat"]) {
    const o = el("option");
    o.value = p;
    dl.appendChild(o);
  }
  const creds = input("credentials", "textarea");
  creds.placeholder = '{"bot_token": "…", "secret_token": "…"}';
  creds.autocomplete = "off";
  creds.spellcheck = false;
  const settings = input("settings", "textarea");
  settings.placeholder = '{"bot_file": "bots/demo.yaml"}';
  const form = formBox([
    field(t("col.platform"), plat), dl,
    field(t("col.name"), input("name")),
    field(t("f.credentials"), creds),
    el("p", "muted small", t("f.creds_note")),
    field(t("f.settings"), settings),
  ], t("admin.add"), async (f) => {
    let body;
    try {
      body = { platform: fld(f, "platform").value.trim(), name: fld(f, "name").value.trim(),
        credentials: parseObject(fld(f, "credentials").value, t("f.credentials")),
        settings: parseObject(fld(f, "settings").value, t("f.settings")) };
    } catch (e) {
      return e.message;
    }
    const a = await api("POST", "/integrations", body);
    fld(f, "credentials").value = ""; /* never kept in the page */
    if (a.status !== 201) return errText(a);
    toast(t("admin.saved"), "info");
    openAdmin("integrations");
    return "";
  });
  $("admin-body").replaceChildren(
    table([t("col.name"), t("col.platform"), t("col.status"), t("col.webhook"), ""], rows),
    el("h3", null, t("admin.add")), form);
}

async function adminQuick(editing) {
  const r = await api("GET", "/quick-replies");
  if (admin.page !== "quick") return;
  if (r.status !== 200) { toast(errText(r)); return; }
  quick.rows = r.body.quick_replies || [];
  const rows = quick.rows.map((q) => {
    const tr = el("tr");
    tr.dataset.id = q.id;
    cell(tr, q.title);
    cell(tr, q.lang || "—");
    cell(tr, q.body, "wrap");
    cell(tr, q.position);
    const acts = el("div", "row-actions");
    acts.appendChild(button(t("admin.edit"), null, async () => adminQuick(q)));
    acts.appendChild(button(t("admin.delete"), "danger", async () => {
      const a = await api("DELETE", "/quick-replies/" + q.id);
      if (a.status !== 200) { toast(errText(a)); return; }
      adminQuick();
    }));
    cell(tr, acts);
    return tr;
  });
  const q = editing || {};
  const body = input("body", "textarea", q.body);
  const form = formBox([
    field(t("col.title"), input("title", "text", q.title)),
    field(t("col.body"), body),
    el("p", "muted small", t("f.body_hint")),
    field(t("f.lang"), input("lang", "text", q.lang || "")),
    field(t("col.position"), input("position", "number", q.position === undefined ? 0 : q.position)),
  ], editing ? t("admin.save") : t("admin.add"), async (f) => {
    const data = { title: fld(f, "title").value.trim(), body: fld(f, "body").value, lang: fld(f, "lang").value.trim(),
      position: parseInt(fld(f, "position").value || "0", 10) || 0 };
    const a = editing ? await api("PUT", "/quick-replies/" + editing.id, data)
      : await api("POST", "/quick-replies", data);
    if (a.status !== 200 && a.status !== 201) return errText(a);
    toast(t("admin.saved"), "info");
    adminQuick();
    return "";
  });
  if (editing) {
    const row = form.querySelector(".form-row");
    row.appendChild(button(t("admin.cancel"), null, async () => adminQuick()));
  }
  $("admin-body").replaceChildren(
    table([t("col.title"), t("col.lang"), t("col.body"), t("col.position"), ""], rows),
    el("h3", null, editing ? t("admin.edit") + ": " + editing.title : t("admin.add")), form);
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
      if (view.conv) renderConv(false);
      renderLive();
      if (admin.page) openAdmin(admin.page);
      if (dash.open) openDash();
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
    if (quickKey(ev)) return;
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) sendReply(ev);
  });
  $("reply").addEventListener("input", quickFromBox);
  $("mode-reply").addEventListener("click", () => setMode("reply"));
  $("mode-note").addEventListener("click", () => setMode("note"));
  $("quick-btn").addEventListener("click", () => (quick.open ? quickClose() : quickOpen("")));
  /* keep the reply box focused when a quick reply is clicked */
  $("quick-list").addEventListener("mousedown", (ev) => ev.preventDefault());
  $("quick-list").addEventListener("click", quickClick);
  $("queue").addEventListener("click", listClick);
  $("list").addEventListener("click", listClick);
  document.addEventListener("visibilitychange", paintNow);
  for (const b of document.querySelectorAll("#admin-nav button"))
    b.addEventListener("click", () => openAdmin(b.dataset.page));
  $("admin-close").addEventListener("click", closeAdmin);
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
