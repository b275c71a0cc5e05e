/* easyflow operator console: the dashboard (the hourly figures of
 * GET /api/v1/metrics drawn as SVG charts: messages per platform, escalations,
 * median first-response time) and the orders linked to the open
 * conversation (its "orders"). Plain JS, no build step; loaded after app.js,
 * whose helpers (t, api, el, $, toast, errText, closeAdmin) it uses. SVG
 * colours are presentation attributes (the CSP allows no inline styles);
 * every text from the server goes through textContent. */
"use strict";

Object.assign(TEXTS.en, {
  "dash.button": "Dashboard",
  "dash.title": "Dashboard",
  "dash.24h": "Last 24 hours",
  "dash.7d": "Last 7 days",
  "dash.all": "All platforms",
  "dash.empty": "No figures for this range yet: the gateway rolls them up every few minutes.",
  "dash.messages": "Messages per platform per hour (received + sent)",
  "dash.escalations": "Escalations to operators per hour",
  "dash.response": "Median first-response time per hour",
  "dash.received": "Messages received",
  "dash.sent": "Messages sent",
  "dash.esc": "Escalations",
  "dash.errors": "Errors",
  "dash.calls": "Platform API calls",
  "dash.median": "Median first response",
  "dash.bot": "Bot",
  "dash.operator": "Operators",
  "dash.count": "{n} escalations",
  "orders.title": "Orders",
  "order.ref": "Buyer's number {ref}",
  "order.raw": "As the marketplace says",
  "order.amount": "Amount",
  "order.ordered": "Ordered",
  "order.changed": "Status since",
  "order.st.new": "New",
  "order.st.assembling": "Being packed",
  "order.st.shipped": "Shipped",
  "order.st.delivered": "Delivered",
  "order.st.cancelled": "Cancelled",
  "order.st.returned": "Returned",
});
Object.assign(TEXTS.ru, {
  "dash.button": "Панель",
  "dash.title": "Панель показателей",
  "dash.24h": "Последние 24 часа",
  "dash.7d": "Последние 7 дней",
  "dash.all": "Все платформы",
  "dash.empty": "За этот период показателей пока нет: шлюз подводит их каждые несколько минут.",
  "dash.messages": "Сообщения по платформам за час (получено + отправлено)",
  "dash.escalations": "Передано операторам за час",
  "dash.response": "Медиана времени первого ответа по часам",
  "dash.received": "Получено сообщений",
  "dash.sent": "Отправлено сообщений",
  "dash.esc": "Передано операторам",
  "dash.errors": "Ошибки",
  "dash.calls": "Запросы к API платформ",
  "dash.median": "Медиана первого ответа",
  "dash.bot": "Бот",
  "dash.operator": "Операторы",
  "dash.count": "передано: {n}",
  "orders.title": "Заказы",
  "order.ref": "Номер у покупателя {ref}",
  "order.raw": "Как пишет маркетплейс",
  "order.amount": "Сумма",
  "order.ordered": "Оформлен",
  "order.changed": "Статус с",
  "order.st.new": "Новый",
  "order.st.assembling": "Собирается",
  "order.st.shipped": "Передан в доставку",
  "order.st.delivered": "Доставлен",
  "order.st.cancelled": "Отменён",
  "order.st.returned": "Возвращён",
});

const dash = { open: false, seq: 0, platforms: new Set(), ordersKey: "" };
const HOUR_MS = 3600000;
const SVGNS = "http://www.w3.org/2000/svg";
const PLATFORM_COLORS = {
  telegram: "#229ed9", whatsapp: "#1f9d55", wildberries: "#a21caf", ozon: "#005bff",
  webchat: "#d97706",
};
const SPARE_COLORS = ["#0891b2", "#65a30d", "#db2777", "#7c3aed", "#b45309"];
const W = 900, H = 210, L = 48, R = 12, TOP = 10, B = 26; /* chart frame, viewBox units */

function colorOf(name, i) {
  return PLATFORM_COLORS[name] || SPARE_COLORS[i % SPARE_COLORS.length];
}

/* ---- screen -------------------------------------------------------------- */

function openDash() {
  closeAdmin();
  dash.open = true;
  $("placeholder").hidden = true;
  $("conv").hidden = true;
  $("dash").hidden = false;
  $("dash-btn").setAttribute("aria-current", "true");
  loadDash();
}

/* Hides the dashboard (opening a conversation or an admin page). */
function closeDash() {
  if (!dash.open) return;
  dash.open = false;
  $("dash").hidden = true;
  $("dash-btn").setAttribute("aria-current", "false");
  if (view.conv) $("conv").hidden = false;
  else $("placeholder").hidden = false;
}

async function loadDash() {
  const seq = ++dash.seq;
  const hours = Number($("dash-range").value) || 24;
  const to = Math.floor(Date.now() / HOUR_MS) * HOUR_MS + HOUR_MS; /* the end of this hour */
  const from = to - hours * HOUR_MS;
  const qs = new URLSearchParams({ from: new Date(from).toISOString(), to: new Date(to).toISOString() });
  const platform = $("dash-platform").value;
  if (platform) qs.set("platform", platform);
  let r;
  try { r = await api("GET", "/metrics?" + qs.toString()); } catch (e) {
    setOnline(false);
    return;
  }
  if (seq !== dash.seq || !dash.open) return;
  if (r.status !== 200) {
    if (r.status !== 401) toast(errText(r));
    return;
  }
  renderDash(r.body.metrics || [], from, hours);
}

function platformOptions() {
  const sel = $("dash-platform");
  const keep = sel.value;
  const opts = [["", t("dash.all")]].concat([...dash.platforms].sort().map((p) => [p, p]));
  sel.replaceChildren(...opts.map(([v, label]) => {
    const o = el("option", null, label);
    o.value = v;
    return o;
  }));
  sel.value = keep;
}

/* ---- figures ------------------------------------------------------------- */

/* rows -> per-hour series: messages per platform, escalations, first
 * responses (medians weighted by their samples across integrations). */
function aggregate(rows, from, hours) {
  const slot = (iso) => Math.floor((Date.parse(iso) - from) / HOUR_MS);
  const zeros = () => new Array(hours).fill(0);
  const msgs = {}, esc = zeros();
  const resp = { bot: [zeros(), zeros()], operator: [zeros(), zeros()] };
  const sum = { received: 0, sent: 0, esc: 0, errors: 0, calls: 0, rt: 0, rtn: 0 };
  for (const m of rows) {
    const i = slot(m.period_start);
    if (i < 0 || i >= hours) continue;
    const v = Number(m.value) || 0;
    const a = m.attributes || {};
    dash.platforms.add(m.platform);
    if (m.metric === "messages_received" || m.metric === "messages_sent") {
      (msgs[m.platform] = msgs[m.platform] || zeros())[i] += v;
      sum[m.metric === "messages_received" ? "received" : "sent"] += v;
    } else if (m.metric === "escalations") {
      esc[i] += v;
      sum.esc += v;
    } else if (m.metric === "errors") {
      sum.errors += v;
    } else if (m.metric === "api_calls") {
      sum.calls += v;
    } else if (m.metric === "response_time") {
      for (const who of ["bot", "operator"]) {
        const n = Number(a[who + "_samples"]) || 0;
        if (n && a[who] !== null && a[who] !== undefined) {
          resp[who][0][i] += Number(a[who]) * n;
          resp[who][1][i] += n;
        }
      }
      const n = Number(a.samples) || 0;
      sum.rt += v * n;
      sum.rtn += n;
    }
  }
  const weighted = (p) => p[0].map((x, i) => (p[1][i] ? x / p[1][i] : null));
  return { msgs, esc, bot: weighted(resp.bot), operator: weighted(resp.operator), sum };
}

function seconds(s) {
  if (s === null || s === undefined) return "—";
  if (s < 1) return Math.round(s * 1000) + (lang === "ru" ? " мс" : " ms");
  if (s < 60) return (Math.round(s * 10) / 10) + (lang === "ru" ? " с" : " s");
  return duration(s * 1000);
}

function renderDash(rows, from, hours) {
  const f = aggregate(rows, from, hours);
  platformOptions();
  $("dash-empty").hidden = rows.length > 0;
  const tiles = [
    [t("dash.received"), String(f.sum.received)], [t("dash.sent"), String(f.sum.sent)],
    [t("dash.esc"), String(f.sum.esc)], [t("dash.errors"), String(f.sum.errors)],
    [t("dash.calls"), String(f.sum.calls)],
    [t("dash.median"), f.sum.rtn ? seconds(f.sum.rt / f.sum.rtn) : "—"],
  ];
  $("dash-tiles").replaceChildren(...tiles.map(([k, v]) => {
    const d = el("div", "tile");
    d.appendChild(el("div", "v", v));
    d.appendChild(el("div", "k", k));
    return d;
  }));
  const slots = Array.from({ length: hours }, (_, i) => from + i * HOUR_MS);
  const platforms = Object.keys(f.msgs).sort();
  barChart($("dash-messages"), slots,
    platforms.map((p, i) => ({ name: p, color: colorOf(p, i), values: f.msgs[p] })), String);
  barChart($("dash-escalations"), slots,
    [{ name: t("dash.esc"), color: "#b54708", values: f.esc }], String);
  lineChart($("dash-response"), slots, [
    { name: t("dash.bot"), color: "#2563c9", values: f.bot },
    { name: t("dash.operator"), color: "#0e9f6e", values: f.operator },
  ], seconds);
}

/* ---- SVG charts ------------------------------------------------------------ */

function svg(tag, attrs, parent) {
  const e = document.createElementNS(SVGNS, tag);
  for (const k in attrs) e.setAttribute(k, String(attrs[k]));
  if (parent) parent.appendChild(e);
  return e;
}

function titled(node, text) {
  svg("title", {}, node).textContent = text;
  return node;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function slotLabel(ms, hours) {
  const d = new Date(ms);
  if (hours <= 48) return d.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
  return d.toLocaleDateString(lang, { day: "numeric", month: "short" });
}

/* The frame: horizontal grid with value labels, hour labels below. */
function frame(slots, max, fmt) {
  const s = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img" });
  const plotH = H - TOP - B;
  for (let k = 0; k <= 4; k++) {
    const y = TOP + plotH - (plotH * k) / 4;
    svg("line", { class: "grid", x1: L, x2: W - R, y1: y, y2: y }, s);
    const v = (max * k) / 4;
    svg("text", { class: "axis", x: L - 6, y: y + 4, "text-anchor": "end" }, s).textContent =
      fmt(Number.isInteger(v) ? v : Math.round(v * 10) / 10);
  }
  const step = slots.length <= 24 ? 3 : 24;
  const bw = (W - L - R) / slots.length;
  slots.forEach((ms, i) => {
    if (i % step) return;
    svg("text", { class: "axis", x: L + i * bw + bw / 2, y: H - 8, "text-anchor": "middle" }, s)
      .textContent = slotLabel(ms, slots.length);
  });
  return s;
}

function legend(card, series) {
  card.querySelector(".legend").replaceChildren(...series.map((x) => {
    const item = el("span");
    const sw = svg("svg", { class: "sw", width: 10, height: 10, viewBox: "0 0 10 10" });
    svg("rect", { width: 10, height: 10, rx: 2, fill: x.color }, sw);
    item.appendChild(sw);
    item.appendChild(document.createTextNode(x.name));
    return item;
  }));
}

/* Stacked bars of counts per hour, one colour per series; the scale's
 * steps are whole numbers. */
function barChart(card, slots, series, fmt) {
  const totals = slots.map((_, i) => series.reduce((a, x) => a + (x.values[i] || 0), 0));
  const max = Math.max(4, Math.ceil(niceMax(Math.max(0, ...totals)) / 4) * 4);
  const s = frame(slots, max, fmt);
  const plotH = H - TOP - B;
  const bw = (W - L - R) / slots.length;
  slots.forEach((ms, i) => {
    let base = TOP + plotH;
    for (const x of series) {
      const v = x.values[i] || 0;
      if (!v) continue;
      const h = (plotH * v) / max;
      base -= h;
      titled(svg("rect", { class: "bar", x: L + i * bw + bw * 0.15, y: base, width: bw * 0.7,
        height: h, fill: x.color, rx: 1 }, s), `${x.name} · ${slotLabel(ms, 24)}: ${fmt(v)}`);
    }
  });
  card.querySelector(".chart-box").replaceChildren(s);
  legend(card, series);
}

/* Lines through the hours that have a value, a point on each. */
function lineChart(card, slots, series, fmt) {
  const all = series.flatMap((x) => x.values.filter((v) => v !== null));
  const max = niceMax(Math.max(0, ...all));
  const s = frame(slots, max, fmt);
  const plotH = H - TOP - B;
  const bw = (W - L - R) / slots.length;
  for (const x of series) {
    const pts = x.values.map((v, i) => (v === null ? null :
      [L + i * bw + bw / 2, TOP + plotH - (plotH * v) / max, v, slots[i]])).filter(Boolean);
    if (pts.length > 1)
      svg("path", { class: "line", stroke: x.color,
        d: pts.map((p, k) => (k ? "L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1)).join(" ") }, s);
    for (const p of pts)
      titled(svg("circle", { class: "point", cx: p[0], cy: p[1], r: 3.5, fill: x.color }, s),
        `${x.name} · ${slotLabel(p[3], 24)}: ${fmt(p[2])}`);
  }
  card.querySelector(".chart-box").replaceChildren(s);
  legend(card, series);
}

/* ---- the orders linked to a conversation -------------------------------------- */

const CURRENCIES = { "643": "RUB", "933": "BYN", "398": "KZT", "051": "AMD", "417": "KGS",
  "860": "UZS", "156": "CNY", "840": "USD", "978": "EUR" };

function money(amount, currency) {
  if (amount === null || amount === undefined) return "";
  const code = CURRENCIES[currency] || currency;
  if (code && /^[A-Z]{3}$/.test(code)) {
    try {
      return new Intl.NumberFormat(lang, { style: "currency", currency: code }).format(amount);
    } catch (e) { /* an unknown code: the plain number */ }
  }
  return String(amount) + (currency ? " " + currency : "");
}

function day(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(lang, { day: "numeric", month: "short", year: "numeric",
    hour: "2-digit", minute: "2-digit" });
}

function orderCard(o) {
  const li = el("li", "order");
  li.dataset.number = o.number;
  li.appendChild(el("div", "num", "№ " + o.number + (o.marketplace ? " · " + o.marketplace : "")));
  if (o.ref && o.ref !== o.number) li.appendChild(el("div", "muted", t("order.ref", { ref: o.ref })));
  const st = el("div");
  st.appendChild(el("span", "st " + o.status, t("order.st." + o.status)));
  const raw = el("span", "raw", o.status_raw || "");
  raw.title = t("order.raw");
  st.appendChild(raw);
  li.appendChild(st);
  const items = (Array.isArray(o.items) ? o.items : []).map((it) => {
    const name = it.name || it.article || "?";
    return el("li", null, it.quantity > 1 ? name + " × " + it.quantity : name);
  });
  if (items.length) {
    const ul = el("ul");
    ul.replaceChildren(...items);
    li.appendChild(ul);
  }
  for (const [k, v] of [["order.amount", money(o.amount, o.currency)],
    ["order.ordered", day(o.ordered_at)], ["order.changed", day(o.status_changed_at)]]) {
    if (!v) continue;
    const row = el("div", "row");
    row.appendChild(el("span", null, t(k)));
    row.appendChild(el("b", null, v));
    li.appendChild(row);
  }
  return li;
}

/* Called by renderConv: re-rendered only when the orders changed. */
function renderOrders(c) {
  const list = Array.isArray(c.orders) ? c.orders : [];
  const key = JSON.stringify([c.id, lang, list.map((o) => [o.number, o.status, o.status_raw,
    o.updated_at])]);
  if (key === dash.ordersKey) return;
  dash.ordersKey = key;
  $("orders").hidden = list.length === 0;
  /* in place, keyed by number (app.js: reconcile) */
  reconcile($("orders-list"), list.map((o) => ({ key: o.number, node: () => orderCard(o) })));
}

document.addEventListener("DOMContentLoaded", () => {
  $("dash-btn").addEventListener("click", () => (dash.open ? closeDash() : openDash()));
  $("dash-close").addEventListener("click", closeDash);
  $("dash-range").addEventListener("change", loadDash);
  $("dash-platform").addEventListener("change", loadDash);
  platformOptions();
  setInterval(() => { if (dash.open && auth.access) loadDash(); }, 60000);
});
