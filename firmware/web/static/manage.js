/* The supervisor console: live queues and counters, alerts, actions (POST with the
   session's CSRF token). */
"use strict";
const CSRF = document.querySelector('meta[name="csrf"]').content;
async function act(action, fields) {
  const body = new URLSearchParams({action, csrf: CSRF, ...fields});
  const r = await fetch("/manage/action", {method: "POST", body,
    headers: {"content-type": "application/x-www-form-urlencoded"}});
  let res;
  try { res = await r.json(); } catch (e) { res = {status: "error", detail: String(r.status)}; }
  const out = document.getElementById("result");
  out.dataset.status = res.status;
  out.textContent = action + ": " + res.status + (res.code && res.code !== "ok" ?
    " (" + res.code + ")" : "") + (res.detail ? " — " + res.detail : "");
  document.getElementById("errors").replaceChildren(...(res.errors || []).map(
    m => el("li", "error", m)));
  return res;
}
function renderState(s) {
  document.querySelector("#queues tbody").replaceChildren(...s.services.map(v => {
    const tr = el("tr");
    tr.dataset.service = v.id;
    tr.append(el("td", "names", s.languages.map(l => v.names[l]).join(" / ")),
      el("td", "waiting", v.waiting), el("td", "wait", v.est_wait_min),
      el("td", "open", v.open ? "yes" : "no"));
    return tr;
  }));
  document.querySelector("#counters tbody").replaceChildren(...s.counters.map(c => {
    const tr = el("tr");
    tr.dataset.counter = c.id;
    const actions = el("td", "actions");
    for (const a of ["open", "pause", "resume", "close"]) {
      const b = el("button", "act-" + a, a);
      b.type = "button";
      b.addEventListener("click", () => act(a, {counter: c.id}));
      actions.append(b);
    }
    if (c.ticket_id) {  // print the counter's current ticket again, at the kiosk
      const b = el("button", "act-reprint", "reprint");
      b.type = "button";
      b.addEventListener("click", () => act("reprint", {ticket: c.ticket_id}));
      actions.append(b);
    }
    tr.append(el("td", "id", c.number + " (" + c.id + ")"), el("td", "state", c.state),
      el("td", "staff", c.staff), el("td", "ticket", c.ticket), el("td", "since",
      c.since_s === null ? "" : c.since_s), actions);
    return tr;
  }));
  const k = s.kpis || {available: false, detail: ""};
  const summary = document.getElementById("kpi-summary");
  summary.dataset.available = String(k.available);
  summary.textContent = k.available ? "issued " + k.issued + ", mean wait " +
    (k.wait_mean_s === null ? "—" : Math.round(k.wait_mean_s) + " s") + ", p90 " +
    (k.wait_p90_s === null ? "—" : Math.round(k.wait_p90_s) + " s") + ", no-shows " +
    k.no_shows : k.detail;
  document.querySelector("#kpis tbody").replaceChildren(...(k.services || []).map(v => {
    const tr = el("tr");
    tr.dataset.service = v.id;
    tr.append(el("td", "id", v.id), el("td", "issued", v.issued),
      el("td", "sla", v.sla_pct === null ? "—" : v.sla_pct),
      el("td", "target", v.sla_target_pct),
      el("td", "rating", (v.rating_mean === null ? "—" : v.rating_mean) + " (" +
         v.ratings + ")"));
    return tr;
  }));
  document.getElementById("alerts").replaceChildren(...s.alerts.map(a =>
    el("li", "alert alert-" + String(a.kind).replace(/[^a-z]/g, "-"),
       [a.kind, a.service || a.device || "", a.detail].join(" "))));
}
for (const f of document.querySelectorAll("form.act")) {
  f.addEventListener("submit", e => {
    e.preventDefault();
    const fields = Object.fromEntries(new FormData(f).entries());
    for (const k of Object.keys(fields)) if (fields[k] === "") delete fields[k];
    act(f.dataset.action, fields);
  });
}
const upload = document.getElementById("appointments");
upload.addEventListener("submit", async e => {
  e.preventDefault();
  const file = upload.querySelector("input[type=file]").files[0];
  if (!file) return;
  if (file.size > Number(upload.dataset.maxBytes) / 3) {  // urlencoding may triple it
    const out = document.getElementById("result");
    out.dataset.status = "rejected";
    out.textContent = "appointments: rejected — the file is over " +
      Math.floor(Number(upload.dataset.maxBytes) / 3 / 1024) + " KiB";
    return;
  }
  const name = file.name.replace(/[^A-Za-z0-9._ ()-]/g, "_").slice(-100) || "upload.csv";
  const fields = {file: name, csv: await file.text()};
  if (upload.querySelector("input[name=dry_run]").checked) fields.dry_run = "1";
  act("appointments", fields);
});
connect("/manage/events", {state: renderState});
