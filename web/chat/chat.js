// chat.js -- the web chat page (/chat): one WebSocket to /ws/chat
// (docs/websocket.md, subprotocol ef.chat.v1). The signed visitor id lives
// in localStorage, so a reload keeps the conversation; messages not yet
// acknowledged (committed) are kept too and sent again, with the same id,
// after a reconnect (the gateway answers a resend as a duplicate).
"use strict";

(function () {
  const VISITOR_KEY = "ef.chat.visitor";
  const PENDING_KEY = "ef.chat.pending";
  const log = document.getElementById("log");
  const empty = document.getElementById("empty");
  const stateEl = document.getElementById("state");
  const form = document.getElementById("compose");
  const input = document.getElementById("text");

  let ws = null;
  let ready = false;
  let backoff = 500;
  let status = null; // the conversation's status as last shown
  let operator = false;
  const shown = new Set(); // row ids and client ids already on screen
  const bubbles = new Map(); // client id -> its meta line
  let pending = loadPending(); // [{id, type, text, payload?, title?}]
  const unread = new Set(); // replies shown while the page was hidden

  function loadPending() {
    try {
      const p = JSON.parse(localStorage.getItem(PENDING_KEY) || "[]");
      return Array.isArray(p) ? p : [];
    } catch (e) {
      return [];
    }
  }
  function savePending() {
    localStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  }
  function newId() {
    const a = new Uint8Array(9);
    crypto.getRandomValues(a);
    return "c-" + Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function setState(text, cls) {
    stateEl.textContent = text;
    stateEl.className = "state " + (cls || "");
  }

  function time(at) {
    const d = at ? new Date(at) : new Date();
    if (isNaN(d)) return "";
    return d.toLocaleTimeString("ru-RU", { hour: "2-digit", minute: "2-digit" });
  }

  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  function note(text, cls) {
    const p = document.createElement("div");
    p.className = "note " + (cls || "");
    p.textContent = text;
    log.appendChild(p);
    scrollDown();
  }

  // One message on screen: m = {id, from, text, buttons, at, client_id}.
  function show(m, metaText) {
    if (m.id && shown.has(m.id)) return;
    if (m.client_id && shown.has(m.client_id)) {
      if (m.id) shown.add(m.id);
      return;
    }
    if (m.id) shown.add(m.id);
    if (m.client_id) shown.add(m.client_id);
    empty.hidden = true;
    const box = document.createElement("div");
    box.className = "msg " + m.from;
    if (m.from === "operator") {
      const who = document.createElement("div");
      who.className = "who-label";
      who.textContent = "Оператор";
      box.appendChild(who);
    }
    const b = document.createElement("div");
    b.className = "bubble";
    b.textContent = m.text || "";
    box.appendChild(b);
    if (Array.isArray(m.buttons) && m.buttons.length) {
      const row = document.createElement("div");
      row.className = "buttons";
      for (const btn of m.buttons) {
        const el = document.createElement("button");
        el.type = "button";
        el.textContent = btn.title;
        el.addEventListener("click", () => {
          row.querySelectorAll("button").forEach((x) => (x.disabled = true));
          submit({ type: "button", payload: btn.payload, title: btn.title, text: btn.title });
        });
        row.appendChild(el);
      }
      box.appendChild(row);
    }
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = metaText || time(m.at);
    box.appendChild(meta);
    if (m.client_id) bubbles.set(m.client_id, meta);
    log.appendChild(box);
    scrollDown();
    if (m.from !== "visitor" && m.id && !m.read) seen(m.id);
  }

  // Tells the gateway a reply was shown: delivered, or read when the page is
  // in front (the operator's console shows the ticks).
  function seen(id) {
    const visible = document.visibilityState === "visible";
    if (!visible) unread.add(id);
    send({ type: "seen", message: id, status: visible ? "read" : "delivered" });
  }

  // The conversation's state as notes: handed to an operator, joined, back.
  function showStatus(st, op, quiet) {
    if (!quiet) {
      if (op && !operator) note("Оператор подключился к чату", "joined");
      else if (st === "escalated" && status !== "escalated" && !op) note("Передаём ваш вопрос оператору…");
      else if (st === "active" && (status === "escalated" || operator)) note("Оператор завершил разговор, вам снова отвечает бот");
      else if (st === "closed" && status !== "closed") note("Разговор завершён");
    }
    status = st;
    operator = !!op;
    if (ready) setState(operator ? "Оператор в чате" : "Онлайн", "online");
  }

  function send(o) {
    if (ws && ready) ws.send(JSON.stringify(o));
  }

  function frameOf(p) {
    return p.type === "button"
      ? { type: "button", id: p.id, payload: p.payload, title: p.title }
      : { type: "message", id: p.id, text: p.text };
  }

  function submit(p) {
    p.id = newId();
    pending.push(p);
    savePending();
    show({ from: "visitor", text: p.text, client_id: p.id }, "отправка…");
    send(frameOf(p));
  }

  function acked(id, ok, why) {
    const meta = bubbles.get(id);
    if (meta) {
      meta.textContent = ok ? time() + " ✓" : "не отправлено: " + why;
      meta.classList.toggle("failed", !ok);
    }
    pending = pending.filter((p) => p.id !== id);
    savePending();
  }

  function onFrame(o) {
    switch (o.type) {
      case "welcome":
        ready = true;
        backoff = 500;
        localStorage.setItem(VISITOR_KEY, o.visitor);
        for (const m of o.messages || []) show(m);
        showStatus(o.status, o.operator, true);
        if (o.status === "escalated" && !o.operator) note("Ваш вопрос передан оператору, он скоро ответит");
        if (o.operator) note("Оператор в чате", "joined");
        for (const p of pending) {
          if (!shown.has(p.id)) show({ from: "visitor", text: p.text, client_id: p.id }, "отправка…");
          send(frameOf(p));
        }
        break;
      case "message":
        show(o);
        break;
      case "status":
        showStatus(o.status, o.operator, false);
        break;
      case "ack":
        acked(o.id, true);
        break;
      case "nack":
        if (!o.retry) acked(o.id, false, o.error);
        else setTimeout(() => {
          const p = pending.find((x) => x.id === o.id);
          if (p) send(frameOf(p));
        }, o.retry_after_s > 0 ? o.retry_after_s * 1000 : 2000);
        break;
      case "error":
        if (o.error === "invalid visitor id") localStorage.removeItem(VISITOR_KEY);
        break;
    }
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    setState("Подключение…", "offline");
    ws = new WebSocket(proto + "//" + location.host + "/ws/chat", "ef.chat.v1");
    ws.onopen = () => {
      const v = localStorage.getItem(VISITOR_KEY);
      ws.send(JSON.stringify(v ? { type: "hello", visitor: v } : { type: "hello" }));
    };
    ws.onmessage = (ev) => {
      try {
        onFrame(JSON.parse(ev.data));
      } catch (e) {
        /* not ours: ignored */
      }
    };
    ws.onclose = () => {
      ready = false;
      setState("Нет связи, переподключаемся…", "offline");
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 10000);
    };
  }

  function grow() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 140) + "px";
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    submit({ type: "message", text: text });
    input.value = "";
    grow();
    input.focus();
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  input.addEventListener("input", grow);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible" || !ready) return;
    for (const id of unread) send({ type: "seen", message: id, status: "read" });
    unread.clear();
  });
  connect();
})();
