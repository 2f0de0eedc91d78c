// Quantum Signals live page. A browser ES module, no build step; the connection and its
// resume are qs-client.js (the same module programs use), on the vendored Socket.IO client.
// Every URL is resolved against the page's directory, so the page works at "/" and
// behind an ingress that strips a path prefix ("/signals/" -> "/").
import { connectSignals } from "./qs-client.js";

const MAX_ROWS = 100;         // table rows kept; older ones are dropped
const HISTORY_LIMIT = 50;     // signals fetched from api/signals/latest on (re)connect
const SPARK_POINTS = 40;      // prices per sparkline
const MAX_MESSAGES = 5;       // system messages kept on screen
const SEEN_LIMIT = 5000;      // de-duplication memory, oldest forgotten first
const STORAGE_KEY = "quantum-signals.symbols";

const base = new URL(".", location.href);
const $ = (id) => document.getElementById(id);
const el = {
  conn: $("connection"), connText: $("conn-text"), replica: $("replica"),
  lastSignal: $("last-signal"), messages: $("messages"), messageList: $("message-list"),
  options: $("symbol-options"), hint: $("filter-hint"), showAll: $("show-all"),
  cards: $("cards"), marketsEmpty: $("markets-empty"), rows: $("signal-rows"),
  signalsEmpty: $("signals-empty"), cardTemplate: $("card-template"),
};
$("max-rows").textContent = String(MAX_ROWS);

const state = {
  rows: [],               // newest first: {key, sig, at, seq, tr}
  seen: new Map(),        // de-duplication keys, in insertion order
  markets: new Map(),     // symbol -> {points: [{at, price}], last, card}
  options: new Map(),     // symbol -> filter checkbox
  filter: new Set(loadFilter()), // chosen symbols; empty means all
  newest: null,           // newest signal, whose id a resuming gateway can be given
  seq: 0,
};

// ---------- formatting ----------
const timeFmt = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});
const priceFmts = new Map();
function formatPrice(p) {
  // Sub-dollar instruments need more digits than BTC does.
  const digits = p >= 1000 ? 2 : p >= 1 ? 4 : 8;
  if (!priceFmts.has(digits)) {
    priceFmts.set(digits, new Intl.NumberFormat(undefined, {
      minimumFractionDigits: 2, maximumFractionDigits: digits,
    }));
  }
  return priceFmts.get(digits).format(p);
}
function timeEl(at) {
  const t = document.createElement("time");
  const d = new Date(at * 1000);
  t.dateTime = d.toISOString();
  t.textContent = timeFmt.format(d);
  return t;
}
function sideEl(type) {
  // Colour plus an arrow plus the word: never colour alone.
  const s = document.createElement("span");
  s.className = `side side-${type.toLowerCase()}`;
  const icon = document.createElement("span");
  icon.setAttribute("aria-hidden", "true");
  icon.textContent = type === "BUY" ? "▲" : "▼";
  s.append(icon, ` ${type}`);
  return s;
}
function cell(content, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.append(content);
  return td;
}

// ---------- signals store ----------
function isSignal(sig) {
  return sig !== null && typeof sig === "object" && (sig.type === "BUY" || sig.type === "SELL")
    && typeof sig.price === "number" && Number.isFinite(sig.price);
}
function dedupeKey(sig) {
  // The id is the contract's identity. Id-less signals with a timestamp are matched on
  // their content (history and live can both deliver one); without either they are unique.
  if (typeof sig.id === "string" && sig.id) return `id:${sig.id}`;
  if (typeof sig.ts === "number") {
    return `fp:${sig.symbol}|${sig.strategy}|${sig.type}|${sig.price}|${sig.ts}`;
  }
  return null;
}
function remember(key) {
  state.seen.set(key, true);
  if (state.seen.size > SEEN_LIMIT) state.seen.delete(state.seen.keys().next().value);
}
function visible(sig) {
  // Signals without a symbol reach every client, so they are always shown.
  return state.filter.size === 0 || typeof sig.symbol !== "string" || state.filter.has(sig.symbol);
}

function addSignal(sig, live) {
  if (!isSignal(sig)) return false;
  const key = dedupeKey(sig);
  if (key !== null) {
    if (state.seen.has(key)) return false;
    remember(key);
  }
  const at = typeof sig.ts === "number" ? sig.ts : Date.now() / 1000;
  const row = { key, sig, at, seq: state.seq++, tr: null };
  // Newest first by signal time; ties keep arrival order (later arrival on top).
  let i = 0;
  while (i < state.rows.length && state.rows[i].at > at) i++;
  if (i >= MAX_ROWS) return false; // older than everything we keep
  state.rows.splice(i, 0, row);
  row.tr = renderRow(row, live);
  el.rows.insertBefore(row.tr, el.rows.children[i] || null);
  while (state.rows.length > MAX_ROWS) state.rows.pop().tr.remove();
  if (!state.newest || at >= state.newest.at) state.newest = { at, sig };
  if (typeof sig.symbol === "string") updateMarket(sig, at);
  refreshEmpty();
  return true;
}

function renderRow(row, live) {
  const { sig } = row;
  const tr = document.createElement("tr");
  tr.className = `row-${sig.type.toLowerCase()}${live ? " fresh" : ""}`;
  if (sig.id) tr.dataset.id = sig.id;
  tr.dataset.symbol = typeof sig.symbol === "string" ? sig.symbol : "";
  tr.hidden = !visible(sig);
  tr.append(
    cell(timeEl(row.at)),
    cell(typeof sig.symbol === "string" ? sig.symbol : "—", "sym"),
    cell(typeof sig.strategy === "string" ? sig.strategy : "—", "col-strategy"),
    cell(sideEl(sig.type)),
    cell(formatPrice(sig.price), "num"),
  );
  return tr;
}

function refreshEmpty() {
  const anyRow = state.rows.some((r) => !r.tr.hidden);
  el.signalsEmpty.hidden = anyRow;
  el.signalsEmpty.textContent = state.rows.length ? "No signals for the chosen symbols yet."
    : "No signals yet.";
  el.marketsEmpty.hidden = [...state.markets.values()].some((m) => !m.card.hidden);
}

// ---------- per-symbol cards ----------
function market(symbol) {
  let m = state.markets.get(symbol);
  if (m) return m;
  const card = el.cardTemplate.content.firstElementChild.cloneNode(true);
  card.dataset.symbol = symbol;
  card.querySelector(".card-symbol").textContent = symbol;
  m = { points: [], last: null, card };
  state.markets.set(symbol, m);
  insertSorted(el.cards, card, symbol);
  option(symbol);
  card.hidden = state.filter.size > 0 && !state.filter.has(symbol);
  return m;
}
function insertSorted(parent, node, symbol) {
  const after = [...parent.children].find((c) => c.dataset.symbol > symbol);
  parent.insertBefore(node, after || null);
}

function updateMarket(sig, at) {
  const m = market(sig.symbol);
  let i = m.points.length;
  while (i > 0 && m.points[i - 1].at > at) i--;
  m.points.splice(i, 0, { at, price: sig.price });
  if (m.points.length > SPARK_POINTS) m.points.shift();
  if (!m.last || at >= m.last.at) m.last = { at, sig };
  renderCard(m, sig.symbol);
}

function renderCard(m, symbol) {
  const { card, last, points } = m;
  const side = card.querySelector(".side");
  side.replaceWith(sideEl(last.sig.type));
  card.querySelector(".card-price").textContent = formatPrice(last.sig.price);
  const meta = card.querySelector(".card-meta");
  meta.replaceChildren(
    `${typeof last.sig.strategy === "string" ? last.sig.strategy : "signal"} · `,
    timeEl(last.at),
  );
  const svg = card.querySelector(".spark");
  const first = points[0].price;
  const final = points[points.length - 1].price;
  svg.classList.toggle("down", final < first);
  svg.querySelector("polyline").setAttribute("points", sparkPoints(points));
  svg.setAttribute("aria-label", points.length < 2 ? `${symbol}: one signal so far`
    : `${symbol} price over the last ${points.length} signals, from ${formatPrice(first)} `
      + `to ${formatPrice(final)}`);
}

function sparkPoints(points) {
  const prices = points.map((p) => p.price);
  const lo = Math.min(...prices);
  const span = Math.max(...prices) - lo || 1;
  const step = points.length > 1 ? 100 / (points.length - 1) : 0;
  // 2 units of padding keep the stroke inside the 32-unit-high box.
  const coords = prices.map((p, i) => {
    const y = points.length > 1 ? 30 - ((p - lo) / span) * 28 : 16;
    return `${(i * step).toFixed(2)},${y.toFixed(2)}`;
  });
  if (points.length === 1) coords.push(`100,${16}`);
  return coords.join(" ");
}

// ---------- symbol filter (server-side via subscribe/unsubscribe) ----------
function loadFilter() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "[]");
    return Array.isArray(saved) ? saved.filter((s) => typeof s === "string") : [];
  } catch {
    return [];
  }
}
function saveFilter() {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify([...state.filter]));
  } catch { /* private mode: the filter just is not remembered */ }
}

function option(symbol) {
  if (state.options.has(symbol)) return;
  const label = document.createElement("label");
  label.className = "chip";
  label.dataset.symbol = symbol;
  const box = document.createElement("input");
  box.type = "checkbox";
  box.value = symbol;
  box.checked = state.filter.has(symbol);
  box.addEventListener("change", () => setSymbol(symbol, box.checked));
  label.append(box, ` ${symbol}`);
  insertSorted(el.options, label, symbol);
  state.options.set(symbol, box);
}

function setSymbol(symbol, on) {
  if (on) state.filter.add(symbol); else state.filter.delete(symbol);
  saveFilter();
  applyFilterView();
  // While offline nothing is sent: the connect handler sends the whole filter.
  if (!stream.socket.connected) return;
  if (on) request("subscribe", [symbol]); else request("unsubscribe", [symbol]);
}

function showAll() {
  state.filter.clear();
  saveFilter();
  for (const box of state.options.values()) box.checked = false;
  applyFilterView();
  if (stream.socket.connected) request("unsubscribe", null);
}

function applyFilterView() {
  for (const row of state.rows) row.tr.hidden = !visible(row.sig);
  for (const [symbol, m] of state.markets) {
    m.card.hidden = state.filter.size > 0 && !state.filter.has(symbol);
  }
  el.showAll.disabled = state.filter.size === 0;
  el.hint.textContent = state.filter.size === 0
    ? "Showing all symbols. Tick symbols to receive only those."
    : `Receiving only ${[...state.filter].sort().join(", ")} (and signals without a symbol).`;
  refreshEmpty();
}

function request(event, symbols) {
  const send = stream.socket.timeout(5000);
  const done = (err, ack) => {
    if (!err && ack && ack.ok && Array.isArray(ack.symbols)) {
      // What the gateway confirmed, not what was asked: tests and people can rely on it.
      document.body.dataset.subscribed = ack.symbols.join(",");
    } else {
      showMessage({
        level: "warning", ts: Date.now() / 1000,
        message: `Could not ${event}: ${err ? "no answer from the gateway" : ack && ack.error}`,
      }, "this page");
    }
  };
  if (symbols === null) send.emit(event, done); else send.emit(event, symbols, done);
}

// ---------- system messages ----------
const ICONS = { info: "ℹ", warning: "⚠", critical: "⛔" };
function showMessage(msg, source) {
  if (!msg || typeof msg.message !== "string") return;
  const level = ICONS[msg.level] ? msg.level : "info";
  const li = document.createElement("li");
  li.className = `msg msg-${level}`;
  const icon = document.createElement("span");
  icon.className = "msg-icon";
  icon.setAttribute("aria-hidden", "true");
  icon.textContent = ICONS[level];
  const label = document.createElement("strong");
  label.textContent = `${level[0].toUpperCase()}${level.slice(1)}${source ? ` (${source})` : ""}:`;
  const at = typeof msg.ts === "number" ? msg.ts : Date.now() / 1000;
  li.append(icon, timeEl(at), " ", label, ` ${msg.message}`);
  el.messageList.prepend(li);
  while (el.messageList.children.length > MAX_MESSAGES) el.messageList.lastElementChild.remove();
  el.messages.hidden = false;
}

// ---------- connection ----------
function setConn(stateName, text) {
  el.conn.dataset.state = stateName;
  el.connText.textContent = text;
}

async function loadInfo() {
  try {
    const res = await fetch(new URL("api/info", base), { cache: "no-store" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const info = await res.json();
    el.replica.textContent = `replica ${info.replica} · pid ${info.pid}`;
    el.replica.dataset.pid = String(info.pid);
  } catch {
    el.replica.textContent = "replica unknown";
  }
}

async function loadHistory() {
  // Fills the page on first load and the gap after a reconnect; ids make it idempotent.
  try {
    const url = new URL(`api/signals/latest?limit=${HISTORY_LIMIT}`, base);
    const res = await fetch(url, { cache: "no-store" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const body = await res.json();
    const signals = Array.isArray(body.signals) ? body.signals : [];
    for (const sig of signals.reverse()) {
      addSignal(sig, false); // oldest first
      // What the page shows need not be replayed: the next resume starts after it.
      if (isSignal(sig)) stream.advance(sig.offset);
    }
    tickLastSignal();
    document.body.dataset.history = "loaded";
  } catch (err) {
    document.body.dataset.history = "failed";
    el.lastSignal.textContent = `history unavailable (${err.message})`;
  }
}

function tickLastSignal() {
  if (!state.newest) return;
  const age = Math.max(0, Math.round(Date.now() / 1000 - state.newest.at));
  el.lastSignal.textContent = `last signal ${age < 60 ? `${age} s` : `${Math.round(age / 60)} min`} ago`;
}

// Resume (docs/delivery.md) is qs-client.js's: every (re)connect presents the newest offset
// seen and the filter; the gateway sends what was missed, in order, before live signals.
// History reloads overlap with it harmlessly: addSignal drops any id it has already shown.
function onStatus({ state: conn, attempt, error }) {
  if (conn === "connected") {
    setConn("connected", "Connected");
    // A new connection starts with no rooms: send the whole filter again.
    if (state.filter.size) request("subscribe", [...state.filter]);
    else document.body.dataset.subscribed = "";
    loadInfo();
    loadHistory();
  } else if (conn === "refused") {
    // Refused by the server (e.g. a draining replica); qs-client.js retries with backoff.
    setConn("refused", `Refused by the gateway (${error}); retrying…`);
  } else {
    setConn("reconnecting", attempt ? `Reconnecting… (attempt ${attempt})` : "Reconnecting…");
    delete document.body.dataset.subscribed; // the next connection starts with no rooms
  }
}

// Why a resume could not be complete (the recovery event's reason), in the page's words.
const RECOVERY_REASONS = {
  trimmed: "the gap is older than the retained history",
  epoch_changed: "the signal history was reset (Redis lost data)",
  epoch_unknown: "the resume position predates history epochs",
  unavailable: "the history could not be read",
};
function onRecovery(info) {
  if (!info || info.complete !== false) return;
  // Signals may be missing: say so, and refill from the latest signals.
  const why = RECOVERY_REASONS[info.reason] || "signals may be missing";
  document.body.dataset.recovery = typeof info.reason === "string" ? info.reason : "incomplete";
  showMessage({ message: `Some signals may have been missed: ${why}. History reloaded.`, level: "warning" }, "page");
  loadHistory();
}

const stream = connectSignals({
  socketOptions: { path: `${base.pathname}socket.io/` },
  symbols: () => [...state.filter],
  onStatus,
  onRecovery,
  onSignal: (sig) => {
    // A signal can arrive between connect and the subscribe ack: filter here too.
    if (isSignal(sig) && visible(sig) && addSignal(sig, true)) tickLastSignal();
  },
});
stream.socket.on("system_message", (msg) => showMessage(msg, null));

el.showAll.addEventListener("click", showAll);
for (const symbol of state.filter) option(symbol); // remembered from the last visit
applyFilterView();
setInterval(tickLastSignal, 1000);
