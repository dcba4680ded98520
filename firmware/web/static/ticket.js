/* One ticket's page (the QR code's link): its number, place and estimate, its call
   ("go to counter 3", with sound and vibration), its one rating after DONE. */
"use strict";
const REF = document.body.dataset.ref;
const TEXT = {
  en: {ahead: n => n + " ahead of you", wait: m => "about " + m + " min",
       called: c => "Your number is called: go to counter " + c,
       serving: c => "You are being served at counter " + c,
       done: "Thank you for your visit. How was it?", no_show: "Your number was called " +
       "and you were not there. Please take a new ticket.", void: "This ticket is not " +
       "valid (it was not printed). Please take a new ticket.", past: "This ticket is " +
       "from an earlier day.", issued: "Printing…", rated: "Thank you for your rating.",
       already: "This ticket has already been rated."},
  zh: {ahead: n => "前面还有 " + n + " 人", wait: m => "约 " + m + " 分钟",
       called: c => "请到 " + c + " 号柜台", serving: c => c + " 号柜台正在为您服务",
       done: "感谢您的光临，请评价本次服务", no_show: "您的号码已过号，请重新取号。",
       void: "此号票无效（未打印），请重新取号。", past: "此号票不是今天的。",
       issued: "正在打印…", rated: "感谢您的评价。", already: "此号票已评价过。"},
};
function say(key, arg) {
  return langs().map(l => { const t = (TEXT[l] || TEXT.en)[key];
    return typeof t === "function" ? t(arg) : t; }).join(" / ");
}
let lastState = null;
function renderPlace(p) {
  document.getElementById("number").textContent = p.number;
  document.getElementById("service").textContent = langs().map(l => p.names[l]).join(" / ");
  const st = document.getElementById("state");
  st.dataset.state = p.state;
  const waiting = p.state === "waiting";
  document.getElementById("ahead").textContent = waiting ? say("ahead", p.ahead) : "";
  document.getElementById("wait").textContent =
    waiting && p.est_wait_min !== null ? say("wait", p.est_wait_min) : "";
  const msg = document.getElementById("message");
  msg.textContent = waiting ? "" : (p.state === "called" || p.state === "serving")
    ? say(p.state, p.counter) : say(p.state);
  if (p.state === "called" && lastState !== null && lastState !== "called") {
    if (navigator.vibrate) navigator.vibrate([300, 150, 300]);
    play("/audio/chime.wav");
  }
  lastState = p.state;
  const form = document.getElementById("rating");
  const canRate = p.state === "done" && !p.rated;
  form.hidden = !canRate;
  if (canRate && !form.childElementCount) {
    for (let i = 1; i <= p.rating_scale; i++) {
      const b = el("button", "rate", String(i));
      b.type = "submit"; b.name = "score"; b.value = String(i); b.dataset.score = String(i);
      form.append(b);
    }
  }
  const rated = document.getElementById("rated");
  if (p.rated && rated.hidden) { rated.hidden = false; rated.textContent = say("rated"); }
}
document.getElementById("rating").addEventListener("submit", async e => {
  e.preventDefault();
  const score = e.submitter ? e.submitter.value : "";
  const r = await fetch("/t/" + REF + "/rate", {method: "POST",
    headers: {"content-type": "application/x-www-form-urlencoded"},
    body: "score=" + encodeURIComponent(score)});
  const body = await r.json();
  const rated = document.getElementById("rated");
  rated.hidden = false;
  rated.dataset.code = body.code;
  rated.textContent = r.ok ? say("rated") : body.code === "already-rated" ? say("already")
                                                                            : body.detail;
  document.getElementById("rating").hidden = true;
});
connect("/t/" + REF + "/events", {place: renderPlace});
