// Quantum Signals live page. A browser ES module, no build step; the connection and its
// resume are qs-client.js (the same module programs use), on the vendored Socket.IO client;
// charts are the vendored lightweight-charts (charts.js). Every URL is resolved against the
// page's directory, so the page works at "/" and behind an ingress that strips a path prefix.
// The view (symbols, strategy, side, UTC) lives in the query string, so it can be shared.
import {
  AUTH_REFUSALS, askForToken, authHeaders, configureAuth, currentToken, renewToken, setupAuth,
  tokenAccepted,
} from "./auth.js";
import { alertChoice, alertFor, setupAlerts } from "./alerts.js";
import { connectSignals } from "./qs-client.js";
import { isUtc, precision, refreshTimes, setUtc } from "./format.js";
import { groupScores } from "./scores.js";
import { makeCard, renderCard, renderRow, renderStrategies, showMessage } from "./view.js";

const MAX_ROWS = 100;         // table rows kept; older ones are dropped
const HISTORY_LIMIT = 50;     // signals fetched from api/signals/latest on (re)connect
const BAR_LIMIT = 200;        // bars fetched per symbol from api/bars
const SEEN_LIMIT = 5000;      // de-duplication memory, oldest forgotten first
const SCORES_REFRESH_MS = 30000;

const base = new URL(".", location.href);
const $ = (id) => document.getElementById(id);
const el = {
  conn: $("connection"), connText: $("conn-text"), replica: $("replica"),
  lastSignal: $("last-signal"), options: $("symbol-options"), hint: $("filter-hint"),
  showAll: $("show-all"), cards: $("cards"), marketsEmpty: $("markets-empty"),
  rows: $("signal-rows"), signalsEmpty: $("signals-empty"), strategy: $("strategy-filter"),
  side: $("side-filter"), utc: $("utc"), notice: $("market-notice"),
};
$("max-rows").textContent = String(MAX_ROWS);

const query = new URLSearchParams(location.search);
const state = {
  rows: [],               // newest first: {key, sig, at, tr}
  seen: new Map(),        // de-duplication keys, in insertion order
  markets: new Map(),     // symbol -> {last, card, chart, signals: [sig]}
  options: new Map(),     // symbol -> filter checkbox
  strategies: new Map(),  // strategy -> params of its newest signal (or null)
  scores: groupScores(null), // GET api/scores: {window, byStrategy: strategy -> [row]}
  filter: new Set((query.get("symbols") || "").split(",").filter(Boolean)), // empty: all
  strategy: query.get("strategy") || "",
  side: ["BUY", "SELL"].includes(query.get("side")) ? query.get("side") : "",
  newest: null,           // newest signal, for "last signal n s ago"
};
setUtc(query.get("tz") === "utc");
window.__qs = { charts: {}, state }; // for tests: the chart objects, read through their API

function saveView() {
  const q = new URLSearchParams();
  if (state.filter.size) q.set("symbols", [...state.filter].sort().join(","));
  if (state.strategy) q.set("strategy", state.strategy);
  if (state.side) q.set("side", state.side);
  if (isUtc()) q.set("tz", "utc");
  const search = q.toString();
  history.replaceState(null, "", `${location.pathname}${search ? `?${search}` : ""}${location.hash}`);
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
  if (typeof sig.ts === "number") return `fp:${sig.symbol}|${sig.strategy}|${sig.type}|${sig.price}|${sig.ts}`;
  return null;
}
function remember(key) {
  state.seen.set(key, true);
  if (state.seen.size > SEEN_LIMIT) state.seen.delete(state.seen.keys().next().value);
}
function symbolShown(symbol) {
  return state.filter.size === 0 || typeof symbol !== "string" || state.filter.has(symbol);
}
function visible(sig) {
  // Signals without a symbol reach every client, so the symbol filter never hides them.
  return symbolShown(sig.symbol) && (!state.strategy || sig.strategy === state.strategy)
    && (!state.side || sig.type === state.side);
}

function addSignal(sig, live) {
  if (!isSignal(sig)) return false;
  const key = dedupeKey(sig);
  if (key !== null) {
    if (state.seen.has(key)) return false;
    remember(key);
  }
  const at = typeof sig.ts === "number" ? sig.ts : Date.now() / 1000;
  const row = { key, sig: { ...sig, ts: at }, at, tr: null };
  // Newest first by signal time; ties keep arrival order (later arrival on top).
  let i = 0;
  while (i < state.rows.length && state.rows[i].at > at) i++;
  if (i >= MAX_ROWS) return false; // older than everything we keep
  if (typeof sig.symbol === "string") precision(sig.symbol, sig.price);
  state.rows.splice(i, 0, row);
  row.tr = renderRow(row, live);
  row.tr.hidden = !visible(sig);
  el.rows.insertBefore(row.tr, el.rows.children[i] || null);
  while (state.rows.length > MAX_ROWS) state.rows.pop().tr.remove();
  if (!state.newest || at >= state.newest.at) state.newest = { at, sig };
  if (typeof sig.strategy === "string") noteStrategy(sig);
  if (typeof sig.symbol === "string") updateMarket(row.sig);
  refreshEmpty();
  return true;
}

function noteStrategy(sig) {
  const known = state.strategies.has(sig.strategy);
  if (sig.params || !known) state.strategies.set(sig.strategy, sig.params || state.strategies.get(sig.strategy) || null);
  if (!known) strategyOption(sig.strategy);
  renderStrategies(state.strategies, state.scores);
}
function strategyOption(name) {
  alertChoice("strategies", name);
  if ([...el.strategy.options].some((o) => o.value === name)) return;
  el.strategy.append(new Option(name, name, false, name === state.strategy));
}

function refreshEmpty() {
  const anyRow = state.rows.some((r) => !r.tr.hidden);
  el.signalsEmpty.hidden = anyRow;
  el.signalsEmpty.textContent = state.rows.length ? "No signals match the chosen filters yet." : "No signals yet.";
  el.marketsEmpty.hidden = [...state.markets.values()].some((m) => !m.card.hidden);
}

// ---------- per-symbol cards and charts ----------
function market(symbol) {
  let m = state.markets.get(symbol);
  if (m) return m;
  const { card, chart } = makeCard(symbol);
  m = { last: null, card, chart, signals: [] };
  state.markets.set(symbol, m);
  if (chart) window.__qs.charts[symbol] = chart;
  insertSorted(el.cards, card, symbol);
  option(symbol);
  card.hidden = !symbolShown(symbol);
  renderCard(m, symbol);
  loadBars(symbol, m);
  return m;
}
function insertSorted(parent, node, symbol) {
  const after = [...parent.children].find((c) => c.dataset.symbol > symbol);
  parent.insertBefore(node, after || null);
}

function updateMarket(sig) {
  const m = market(sig.symbol);
  m.signals.push(sig);
  m.signals.sort((a, b) => a.ts - b.ts);
  if (m.signals.length > MAX_ROWS) m.signals.shift();
  refreshMarket(m, sig.symbol);
}
function refreshMarket(m, symbol) {
  // The card and chart follow the strategy and side filter, like the table.
  const shown = m.signals.filter(visible);
  const newest = shown[shown.length - 1];
  m.last = newest ? { at: newest.ts, sig: newest } : null;
  if (m.chart) m.chart.setSignals(shown);
  renderCard(m, symbol);
}

async function loadBars(symbol, m) {
  if (!m.chart) return;
  try {
    const url = new URL(`api/bars?symbol=${encodeURIComponent(symbol)}&limit=${BAR_LIMIT}`, base);
    const res = await fetch(url, { cache: "no-store", headers: authHeaders() });
    // 404 (a gateway without bars) or 403 (not in the token's symbols): the card says so.
    const body = res.ok ? await res.json() : null;
    if (body && Array.isArray(body.bars)) m.chart.setBars(body.bars);
  } catch { /* offline: the reconnect reloads */ }
  renderCard(m, symbol);
  m.card.dataset.bars = "loaded";
}
function onBar(bar) {
  if (!bar || typeof bar.symbol !== "string" || !state.markets.has(bar.symbol)) {
    if (bar && typeof bar.symbol === "string" && symbolShown(bar.symbol)) market(bar.symbol);
    return;
  }
  const m = state.markets.get(bar.symbol);
  if (m.chart && m.chart.addBar(bar)) renderCard(m, bar.symbol);
}

// ---------- filters: symbols on the server (subscribe), strategy and side on the page ----------
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
  alertChoice("symbols", symbol);
}

function setSymbol(symbol, on) {
  if (on) state.filter.add(symbol); else state.filter.delete(symbol);
  applyFilterView();
  // While offline nothing is sent: the connect handler sends the whole filter.
  if (!stream.socket.connected) return;
  if (on) request("subscribe", [symbol]); else request("unsubscribe", [symbol]);
}

function showAll() {
  state.filter.clear();
  for (const box of state.options.values()) box.checked = false;
  applyFilterView();
  if (stream.socket.connected) request("unsubscribe", null);
}

function applyFilterView() {
  saveView();
  for (const row of state.rows) row.tr.hidden = !visible(row.sig);
  for (const [symbol, m] of state.markets) {
    m.card.hidden = !symbolShown(symbol);
    refreshMarket(m, symbol);
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

// ---------- connection, server info, history ----------
function setConn(stateName, text) {
  el.conn.dataset.state = stateName;
  el.connText.textContent = text;
}

async function getJson(path) {
  const res = await fetch(new URL(path, base), { cache: "no-store", headers: authHeaders() });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.json();
}

async function loadInfo() {
  try {
    const info = await getJson("api/info");
    // The replica and pid are for operators: behind a tooltip, not in the header text.
    el.replica.textContent = "Server details";
    el.replica.title = `Gateway replica ${info.replica}, process ${info.pid}`;
    el.replica.dataset.pid = String(info.pid);
    configureAuth(info.auth, base);
    showMarket(info.market);
  } catch {
    el.replica.textContent = "Server details unknown";
  }
}

function showMarket(info) {
  if (!info || typeof info !== "object") return;
  const simulated = [true, 1, "1", "true"].includes(info.simulated);
  const tf = typeof info.timeframe === "string" ? ` (${info.timeframe} bars)` : "";
  let text = "";
  if (simulated) text = `Simulated market data${tf}: prices come from the monitor's simulator, not from an exchange. Do not trade on these signals.`;
  else if (info.source === "replay") text = `Replayed market data${tf}: prices are replayed from a file, not live.`;
  el.notice.textContent = text;
  el.notice.hidden = !text;
  // The monitor's symbols get a chart before their first signal.
  const symbols = Array.isArray(info.symbols) ? info.symbols
    : typeof info.symbols === "string" ? info.symbols.split(",") : [];
  for (const s of symbols) if (typeof s === "string" && s && symbolShown(s)) market(s);
}

async function loadHistory() {
  // Fills the page on first load and the gap after a reconnect; ids make it idempotent.
  try {
    const body = await getJson(`api/signals/latest?limit=${HISTORY_LIMIT}`);
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

async function loadScores() {
  // Optional: a gateway without GET api/scores (404) simply shows no scores.
  try {
    state.scores = groupScores(await getJson("api/scores"));
    renderStrategies(state.strategies, state.scores);
    document.body.dataset.scores = "loaded";
  } catch { /* no scores: nothing to show */ }
}

function tickLastSignal() {
  if (!state.newest) return;
  const age = Math.max(0, Math.round(Date.now() / 1000 - state.newest.at));
  el.lastSignal.textContent = `last signal ${age < 60 ? `${age} s` : `${Math.round(age / 60)} min`} ago`;
}

// Resume (docs/delivery.md) is qs-client.js's: every (re)connect presents the newest offset
// seen and the filter; the gateway sends what was missed, in order, before live signals.
// Bars have no resume: every connect reloads them from api/bars.
function onStatus({ state: conn, attempt, error }) {
  if (conn === "connected") {
    setConn("connected", "Live: receiving signals");
    tokenAccepted();
    // A new connection starts with no rooms: send the whole filter again.
    if (state.filter.size) request("subscribe", [...state.filter]);
    else document.body.dataset.subscribed = "";
    loadInfo();
    loadHistory();
    loadScores();
    for (const [symbol, m] of state.markets) loadBars(symbol, m);
  } else if (conn === "refused") {
    setConn("refused", "Not connected: the server refused; retrying…");
    el.conn.title = `Refused by the gateway (${error})`;
    if (AUTH_REFUSALS.has(error)) {
      setConn("refused", "Not connected: an access token is needed");
      askForToken(currentToken()
        ? `The gateway refused the access token (${error.replaceAll("_", " ")}).` : null);
    }
  } else {
    setConn("reconnecting", attempt ? `Connection lost; reconnecting (attempt ${attempt})…` : "Connection lost; reconnecting…");
    delete document.body.dataset.subscribed; // the next connection starts with no rooms
  }
}

const RECOVERY_REASONS = {
  trimmed: "the gap is older than the retained history",
  epoch_changed: "the signal history was reset (Redis lost data)",
  epoch_unknown: "the resume position predates history epochs",
  unavailable: "the history could not be read",
};
function onRecovery(info) {
  if (!info || info.complete !== false) return;
  const why = RECOVERY_REASONS[info.reason] || "signals may be missing";
  document.body.dataset.recovery = typeof info.reason === "string" ? info.reason : "incomplete";
  showMessage({ message: `Some signals may have been missed: ${why}. History reloaded.`, level: "warning" }, "page");
  loadHistory();
}

const stream = connectSignals({
  socketOptions: { path: `${base.pathname}socket.io/` },
  symbols: () => [...state.filter],
  token: currentToken,
  onStatus,
  onRecovery,
  onSignal: (sig) => {
    // A signal can arrive between connect and the subscribe ack: filter here too.
    if (isSignal(sig) && symbolShown(sig.symbol) && addSignal(sig, true)) {
      tickLastSignal();
      alertFor(sig); // only if the user opted in, for the symbols/strategies chosen
    }
  },
});
stream.socket.on("system_message", (msg) => showMessage(msg, null));
stream.socket.on("new_bar", onBar);
stream.socket.on("auth_expiring", (msg) => renewToken(base, stream.socket, msg && msg.expires_at));
stream.socket.on("auth_expired", () => askForToken("Your access token expired."));
setupAlerts();
setupAuth(base, (token, why) => {
  // The next connect presents the new token (qs-client reads it on every connect).
  if (why === "refreshed") return;
  stream.socket.disconnect();
  stream.socket.connect();
});
loadInfo(); // before any connection: with AUTH_REQUIRED it says how to get a token

el.showAll.addEventListener("click", showAll);
el.strategy.addEventListener("change", () => { state.strategy = el.strategy.value; applyFilterView(); });
el.side.addEventListener("change", () => { state.side = el.side.value; applyFilterView(); });
el.utc.checked = isUtc();
el.utc.addEventListener("change", () => {
  setUtc(el.utc.checked);
  refreshTimes(document.body);
  for (const m of state.markets.values()) if (m.chart) m.chart.resetTimeFormat();
  saveView();
});
if (state.strategy) strategyOption(state.strategy);
el.side.value = state.side;
for (const symbol of state.filter) option(symbol); // from the shared URL
applyFilterView();
setInterval(tickLastSignal, 1000);
// Signals are scored as later bars close: refresh the panel's numbers now and then.
setInterval(() => { if (stream.socket.connected) loadScores(); }, SCORES_REFRESH_MS);
