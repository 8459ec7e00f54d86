// The drawing page: pointer strokes on a canvas; each finished stroke asks /api/predict; corrections go to
// /api/feedback. White ink on black, like MNIST; the server prepares the picture as `predict` does.
"use strict";

const pad = document.getElementById("pad");
const ink = pad.getContext("2d");
const answer = document.getElementById("answer");
const top3 = document.getElementById("top3");
const preview = document.getElementById("preview");
const model = document.getElementById("model");
const status = document.getElementById("status");
const labels = document.getElementById("labels");

let drawing = false;
let drawn = false;
let asked = 0; // the latest request's number: an older answer arriving late is dropped

function clearPad() {
  ink.fillStyle = "#000";
  ink.fillRect(0, 0, pad.width, pad.height);
  ink.strokeStyle = "#fff";
  ink.fillStyle = "#fff";
  ink.lineWidth = 18;
  ink.lineCap = "round";
  ink.lineJoin = "round";
  drawn = false;
  asked += 1;
  answer.textContent = "?";
  top3.replaceChildren();
  preview.hidden = true;
  setStatus("");
  setCorrections(false);
}

function setStatus(text, isError = false) {
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function setCorrections(enabled) {
  for (const button of labels.querySelectorAll("button")) button.disabled = !enabled;
}

function pointAt(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * (pad.width / box.width), (event.clientY - box.top) * (pad.height / box.height)];
}

function lineTo(event) {
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const each of events.length ? events : [event]) {
    const [x, y] = pointAt(each);
    ink.lineTo(x, y);
  }
  ink.stroke();
  const [x, y] = pointAt(event);
  ink.beginPath();
  ink.moveTo(x, y);
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  drawing = true;
  drawn = true;
  const [x, y] = pointAt(event);
  ink.beginPath();
  ink.arc(x, y, ink.lineWidth / 2, 0, 2 * Math.PI);
  ink.fill();
  ink.beginPath();
  ink.moveTo(x, y);
});

pad.addEventListener("pointermove", (event) => {
  if (drawing) lineTo(event);
});

function endStroke(event) {
  if (!drawing) return;
  drawing = false;
  if (event.type === "pointerup") lineTo(event);
  ask();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

function drawingAsPng() {
  return new Promise((resolve) => pad.toBlob(resolve, "image/png"));
}

async function postPicture(url) {
  const response = await fetch(url, { method: "POST", headers: { "Content-Type": "image/png" }, body: await drawingAsPng() });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

async function ask() {
  const number = ++asked;
  pad.dataset.asked = String(number); // what a test waits on: every stroke asked, the latest one answered
  setStatus("asking the champion…");
  try {
    const [record] = await postPicture("/api/predict");
    if (number !== asked) return;
    show(record);
    setStatus("");
    setCorrections(true);
    pad.dataset.answered = String(number);
  } catch (error) {
    if (number !== asked) return;
    setStatus(error.message, true);
    pad.dataset.answered = String(number);
  }
}

function show(record) {
  answer.textContent = record.unsure ? "not sure" : String(record.label);
  answer.classList.toggle("unsure", record.unsure);
  top3.replaceChildren(
    ...record.top3.map((item) => {
      const row = document.createElement("li");
      row.textContent = `${item.label}: ${(100 * item.probability).toFixed(1)} %`;
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${Math.round(120 * item.probability)}px`;
      row.append(bar);
      return row;
    })
  );
  preview.src = record.image;
  preview.hidden = false;
  const since = record.champion_since ? `, champion since ${record.champion_since}` : "";
  model.textContent = `answered by ${record.model} (key ${record.model_key}${since})`;
}

async function correct(digit) {
  if (!drawn) return;
  setCorrections(false);
  setStatus(`saving as a ${digit}…`);
  try {
    const result = await postPicture(`/api/feedback?label=${digit}`);
    setStatus(result.message);
  } catch (error) {
    setStatus(error.message, true);
    setCorrections(true);
  }
}

for (let digit = 0; digit <= 9; digit += 1) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = String(digit);
  button.dataset.label = String(digit);
  button.addEventListener("click", () => correct(digit));
  labels.append(button);
}
document.getElementById("clear").addEventListener("click", clearPad);
clearPad();
