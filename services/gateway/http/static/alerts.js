// Opt-in alerts for live signals: a browser notification (Notification API) and/or a short
// tone (WebAudio, generated here: no sound file, no request), for the symbols and strategies
// the user ticked (none ticked: all). Nothing sounds or pops up unless the user turned it on;
// the choice is kept in localStorage. Only live signals alert, never the history a page
// loads, and never one older than STALE_S (a burst replayed after a long disconnect).

import { formatPrice } from "./format.js";

const KEY = "quantum-signals.alerts";
const STALE_S = 120;
const TONE = { BUY: 880, SELL: 440 }; // Hz: a higher tone for BUY, lower for SELL
const $ = (id) => document.getElementById(id);

const settings = load();
const chips = { symbols: new Map(), strategies: new Map() };
let audio = null; // one AudioContext, made on the user's click (browsers' autoplay rule)

function load() {
  const empty = { notify: false, sound: false, symbols: [], strategies: [] };
  try {
    const saved = JSON.parse(localStorage.getItem(KEY) || "null");
    if (!saved || typeof saved !== "object") return empty;
    const list = (v) => (Array.isArray(v) ? v.filter((x) => typeof x === "string") : []);
    return {
      notify: saved.notify === true, sound: saved.sound === true,
      symbols: list(saved.symbols), strategies: list(saved.strategies),
    };
  } catch {
    return empty;
  }
}

function save() {
  try { localStorage.setItem(KEY, JSON.stringify(settings)); } catch { /* refused: this page only */ }
  summarize();
}

function summarize() {
  const what = [settings.notify && "notifications", settings.sound && "sound"].filter(Boolean);
  const scope = [settings.symbols.join(", "), settings.strategies.join(", ")].filter(Boolean);
  $("alerts-summary").textContent = what.length
    ? `Alerts: ${what.join(" and ")} for ${scope.length ? scope.join("; ") : "every signal"}`
    : "Alerts: off";
}

function note(text) {
  $("alerts-note").textContent = text;
  $("alerts-note").hidden = !text;
}

async function enableNotifications(box) {
  if (!("Notification" in window)) {
    box.checked = false;
    note("This browser has no notifications.");
    return;
  }
  let permission = Notification.permission;
  if (permission === "default") permission = await Notification.requestPermission();
  if (permission !== "granted") {
    box.checked = false;
    note("The browser blocks notifications for this page: allow them in its site settings, then tick again.");
    return;
  }
  note("");
  settings.notify = true;
  save();
}

function audioContext() {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return null;
  if (!audio) audio = new Ctx();
  if (audio.state === "suspended") audio.resume().catch(() => {});
  return audio;
}

/** A 0.2 s tone with a soft start and end. */
function beep(side) {
  const ctx = audioContext();
  if (!ctx) return;
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.type = "sine";
  osc.frequency.value = TONE[side] ?? 660;
  const t = ctx.currentTime;
  gain.gain.setValueAtTime(0.0001, t);
  gain.gain.exponentialRampToValueAtTime(0.2, t + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.2);
  osc.connect(gain).connect(ctx.destination);
  osc.start(t);
  osc.stop(t + 0.22);
}

function chosen(list, value) {
  return list.length === 0 || (typeof value === "string" && list.includes(value));
}

/** Alert for one live signal if the user asked for it. */
export function alertFor(sig) {
  if (!settings.notify && !settings.sound) return;
  if (!chosen(settings.symbols, sig.symbol) || !chosen(settings.strategies, sig.strategy)) return;
  if (typeof sig.ts === "number" && Date.now() / 1000 - sig.ts > STALE_S) return;
  if (settings.sound) beep(sig.type);
  if (settings.notify && "Notification" in window && Notification.permission === "granted") {
    const symbol = typeof sig.symbol === "string" ? sig.symbol : "";
    const price = formatPrice(sig.price, sig.symbol);
    const strategy = typeof sig.strategy === "string" ? sig.strategy : "unknown strategy";
    const reason = typeof sig.reason === "string" ? sig.reason : "no reason given";
    try {
      // tag: one notification per signal, even if two tabs or a replay deliver it twice.
      new Notification([sig.type, symbol, "at", price].filter(Boolean).join(" "), {
        body: `${strategy}: ${reason}`, tag: typeof sig.id === "string" ? sig.id : undefined,
      });
    } catch {
      // Chrome on Android allows notifications only from a service worker.
      note("This browser cannot show notifications from a page; the sound still works.");
    }
  }
}

function chip(kind, value) {
  if (chips[kind].has(value)) return;
  const label = document.createElement("label");
  label.className = "chip";
  const box = document.createElement("input");
  box.type = "checkbox";
  box.value = value;
  box.checked = settings[kind].includes(value);
  box.addEventListener("change", () => {
    const rest = settings[kind].filter((v) => v !== value);
    settings[kind] = box.checked ? [...rest, value].sort() : rest;
    save();
  });
  box.setAttribute("aria-label", `Alerts for ${value}`);
  label.append(box, ` ${value}`);
  const list = $(`alert-${kind}`);
  const after = [...list.children].find((c) => c.textContent.trim() > value);
  list.insertBefore(label, after || null);
  chips[kind].set(value, box);
}

/** A symbol or strategy the page now knows: it can be chosen for alerts. */
export function alertChoice(kind, value) {
  if (typeof value === "string" && value) chip(kind, value);
}

export function setupAlerts() {
  const notify = $("alert-notify");
  const sound = $("alert-sound");
  notify.checked = settings.notify;
  sound.checked = settings.sound;
  notify.addEventListener("change", () => {
    if (notify.checked) { enableNotifications(notify); return; }
    settings.notify = false;
    save();
  });
  sound.addEventListener("change", () => {
    settings.sound = sound.checked;
    if (sound.checked) audioContext(); // made inside the click, so it may play
    save();
  });
  // After a reload the browser lets audio start only after a click or key on the page.
  const unlock = () => { if (settings.sound) audioContext(); };
  document.addEventListener("pointerdown", unlock, { once: true });
  document.addEventListener("keydown", unlock, { once: true });
  for (const kind of ["symbols", "strategies"]) for (const v of settings[kind]) chip(kind, v);
  summarize();
}
