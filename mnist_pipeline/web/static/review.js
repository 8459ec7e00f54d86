// The review page: one queued digit at a time with the champion's answer; Enter/Space confirms, a digit key
// corrects, x marks it unreadable, u undoes the last. Each key moves on at once; the label is POSTed with
// keepalive, so it reaches the server even when the tab closes. Everything shown is set as text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const held = []; // images handed out to this page (leased to it), in review order
const done = []; // what this page reviewed, most recent last, for undo
const roundTrips = []; // milliseconds per label, key to answer (what the page promises: at most 50)
let fetching = null;
let posted = Promise.resolve(); // POSTs go one at a time, in key order: an undo after the label it undoes

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function call(url, body) {
  const started = performance.now();
  const options = body === undefined ? {} : { method: "POST", keepalive: true, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(url, options);
  const answer = await response.json();
  if (body !== undefined) roundTrips.push(performance.now() - started);
  if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  return answer;
}

function post(url, body) {
  const sent = posted.then(() => call(url, body));
  posted = sent.catch(() => {});
  return sent;
}

const imageUrl = (item) => `/api/review/${encodeURIComponent(item.id)}/image`;
const percent = (value) => `${(100 * value).toFixed(1)} %`;

function fill() {
  if (held.length >= 5 || fetching) return fetching;
  fetching = call("/api/review/next?limit=10")
    .then((items) => {
      for (const item of items) if (!held.some((other) => other.id === item.id)) held.push(item);
      show();
    })
    .catch((error) => setStatus(error.message, true))
    .finally(() => { fetching = null; });
  return fetching;
}

function show() {
  const item = held[0];
  document.body.dataset.current = item ? item.id : "";
  $("digit").hidden = !item;
  $("predicted").textContent = item ? (item.predicted ?? "?") : "nothing left to review";
  $("confidence").textContent = item && item.confidence !== null ? percent(item.confidence) : "";
  $("audit").hidden = !(item && item.audit);
  $("refused").hidden = !(item && item.refused);
  $("refused").textContent = item && item.refused ? `sent back by the gate: ${item.refused}` : "";
  $("source").textContent = item ? `from ${item.source ?? "?"}` : "";
  if (item) $("digit").src = imageUrl(item);
  $("strip").replaceChildren(
    ...held.slice(1, 7).map((next) => {
      const row = document.createElement("li");
      row.className = next.audit ? "audit-item" : "";
      const picture = document.createElement("img");
      picture.src = imageUrl(next);
      picture.width = picture.height = 56;
      picture.alt = `next: the champion says ${next.predicted ?? "?"}`;
      row.append(picture);
      return row;
    })
  );
}

async function showStatus() {
  const status = await call("/api/review/status");
  $("counts").textContent = `reviewed ${status.reviewed} · left ${status.left} · ${status.waiting} labels waiting, a batch goes to the gate at ${status.threshold}`;
  const audit = status.audit;
  const sure = status.audit_answered;
  const error = sure.count
    ? `; among the ${sure.count} it was sure of, ${percent(1 - sure.accuracy)} wrong (95 % interval ${percent(1 - sure.high)} to ${percent(1 - sure.low)})`
    : "";
  $("estimate").textContent = audit.count
    ? `champion's accuracy on the audit sample: ${percent(audit.accuracy)} (95 % interval ${percent(audit.low)} to ${percent(audit.high)}, ${audit.count} labels)${error}`
    : "champion's accuracy on the audit sample: no audit labels for this champion yet";
  $("returned").hidden = !status.refused.length;
  $("returned").textContent = status.refused.length ? `back in the queue: ${status.refused.join(" | ")}` : "";
}

async function review(body) {
  const item = held.shift();
  if (!item) return;
  done.push(item);
  show();
  fill();
  try {
    await post(`/api/review/${encodeURIComponent(item.id)}`, body);
    setStatus(body.unreadable ? "marked unreadable" : `saved as a ${body.label}`);
    document.body.dataset.reviewed = String(Number(document.body.dataset.reviewed || 0) + 1);
    await showStatus();
  } catch (error) {
    setStatus(error.message, true);
  }
}

function confirm() {
  const item = held[0];
  if (item && item.predicted !== null) review({ label: item.predicted });
  else if (item) setStatus("the champion gave no answer: type the digit", true);
}

async function undo() {
  const item = done.pop();
  if (!item) return;
  held.unshift(item); // back on screen at once: the next key is about it
  show();
  try {
    await post(`/api/review/${encodeURIComponent(item.id)}`, { undo: true });
    setStatus("undone");
    await showStatus();
  } catch (error) {
    held.splice(held.indexOf(item), 1);
    show();
    setStatus(error.message, true);
  }
}

document.addEventListener("keydown", (event) => {
  if (event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
  const actions = { Enter: confirm, " ": confirm, x: () => review({ unreadable: true }), u: undo };
  if (/^[0-9]$/.test(event.key)) actions[event.key] = () => review({ label: Number(event.key) });
  if (!actions[event.key]) return;
  event.preventDefault();
  actions[event.key]();
});

for (let digit = 0; digit <= 9; digit += 1) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = String(digit);
  button.dataset.label = String(digit);
  button.addEventListener("click", () => review({ label: digit }));
  $("labels").append(button);
}
$("confirm").addEventListener("click", confirm);
$("unreadable").addEventListener("click", () => review({ unreadable: true }));
$("undo").addEventListener("click", undo);
$("submit").addEventListener("click", async () => {
  try {
    setStatus((await post("/api/review/submit", {})).message);
    await showStatus();
  } catch (error) {
    setStatus(error.message, true);
  }
});
fill();
showStatus().catch((error) => setStatus(error.message, true));
