/* Shared by the pages: labels in the branch's languages, the stale-data banner,
   one EventSource per page. Every text goes in with textContent, never innerHTML. */
"use strict";
const LABELS = {
  en: {counter: "Counter", waiting: "waiting", wait: "est. wait", min: "min", closed: "closed",
       connecting: "connecting…", stale: "data may be out of date — last update",
       unreachable: "the queue system does not answer — last update"},
  zh: {counter: "柜台", waiting: "人等候", wait: "预计等待", min: "分钟", closed: "暂停服务",
       connecting: "正在连接…", stale: "数据可能已过时 — 最后更新",
       unreachable: "排队系统无响应 — 最后更新"},
};
function langs() {
  return (document.body.dataset.languages || "en").split(",").filter(Boolean);
}
function label(key) {
  return langs().map(l => (LABELS[l] || LABELS.en)[key]).join(" / ");
}
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function hhmmss(ms) {
  return ms ? new Date(ms).toLocaleTimeString([], {hour12: false}) : "—";
}
/* connect(url, handlers): an EventSource whose state shows in #status:
   "connecting" before the first state, "stale" when nothing arrived for stale_s or
   the server says the engine does not answer, "ok" otherwise. */
function connect(url, handlers) {
  const staleMs = 1000 * Number(document.body.dataset.staleS || 15);
  const status = document.getElementById("status");
  const st = {lastMsg: 0, lastState: 0, engine: "connecting", open: false};
  window.tesseraStream = st;
  const es = new EventSource(url);
  es.onopen = () => { st.open = true; };
  es.onerror = () => { st.open = false; };
  es.addEventListener("tick", e => {
    st.lastMsg = Date.now();
    try { st.engine = JSON.parse(e.data).engine; } catch (err) { /* keep */ }
  });
  for (const [name, fn] of Object.entries(handlers)) {
    es.addEventListener(name, e => {
      st.lastMsg = st.lastState = Date.now();
      st.engine = "ok";
      fn(JSON.parse(e.data));
    });
  }
  function show() {
    let state = "ok", text = "";
    const age = Date.now() - st.lastMsg;
    if (!st.lastState) {
      state = "connecting"; text = label("connecting");
    } else if (st.engine === "unreachable") {
      state = "stale"; text = label("unreachable") + " " + hhmmss(st.lastState);
    } else if (age > staleMs || !st.open && age > 2000) {
      state = "stale"; text = label("stale") + " " + hhmmss(st.lastState);
    }
    status.dataset.state = state;
    status.textContent = text;
    document.body.classList.toggle("is-stale", state !== "ok");
  }
  setInterval(show, 250);
  show();
  return es;
}
/* One sound at a time (the chime, then the announcement). */
const player = {queue: [], busy: false, played: []};
window.tesseraPlayed = player.played;
function play(src) {
  player.queue.push(src);
  if (!player.busy) nextSound();
}
function nextSound() {
  const src = player.queue.shift();
  if (!src) { player.busy = false; return; }
  player.busy = true;
  player.played.push(src);
  const a = new Audio(src);
  a.onended = a.onerror = nextSound;
  a.play().catch(nextSound);
}
