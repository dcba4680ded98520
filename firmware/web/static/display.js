/* The hall display: the newest call large and highlighted, a short history, the
   queues per service in every language, a clock. Pushed by /display/events. */
"use strict";
const seen = new Set();
let firstState = true;
function callKey(c) { return c.ticket_id + "/" + c.recalls; }
function renderState(s) {
  const latest = document.getElementById("latest");
  const newest = s.calls[0];
  latest.querySelector(".number").textContent = newest ? newest.number : "";
  latest.querySelector(".counter").textContent =
    newest ? label("counter") + " " + newest.counter : "";
  latest.dataset.ticket = newest ? newest.ticket_id : "";
  const hist = document.getElementById("history");
  hist.replaceChildren(...s.calls.slice(1).map(c => {
    const li = el("li", "call");
    li.append(el("span", "number", c.number), el("span", "counter",
      label("counter") + " " + c.counter));
    return li;
  }));
  const body = document.querySelector("#services tbody");
  body.replaceChildren(...s.services.map(v => {
    const tr = el("tr", v.open ? "service" : "service closed");
    tr.dataset.service = v.id;
    const names = el("td", "names");
    for (const l of s.languages) names.append(el("span", "name lang-" + l, v.names[l]));
    tr.append(names, el("td", "waiting", v.waiting + " " + label("waiting")),
      el("td", "wait", v.open ? label("wait") + " " + v.est_wait_min + " " + label("min")
                              : label("closed")));
    return tr;
  }));
  // announce calls not seen before (not the ones already on screen at page load)
  const fresh = s.calls.filter(c => !seen.has(callKey(c))).reverse();
  for (const c of s.calls) seen.add(callKey(c));
  if (!firstState) {
    for (const c of fresh) {
      latest.classList.remove("flash"); void latest.offsetWidth; latest.classList.add("flash");
      play("/audio/call-" + encodeURIComponent(c.number) + "-" + c.counter + ".wav");
    }
  }
  firstState = false;
}
function clock() {
  document.getElementById("clock").textContent =
    new Date().toLocaleTimeString([], {hour12: false, hour: "2-digit", minute: "2-digit"});
}
setInterval(clock, 1000); clock();
connect("/display/events", {state: renderState});
