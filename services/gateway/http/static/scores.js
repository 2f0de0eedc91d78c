// How good each strategy's signals have been (GET api/scores, the monitor's scoring), shown
// under the strategy in the panel: per symbol, the sample size and the hit rates exactly as
// the API gives them (no averaging across symbols: each rate has its own scored count).

/** "54%" from 0.54; "—" while nothing is scored yet (null). */
export function formatRate(rate) {
  return typeof rate === "number" && Number.isFinite(rate) ? `${(rate * 100).toFixed(0)}%` : "—";
}

/** "+0.12%" from 0.0012: the mean move in the signals' direction. */
export function formatMove(move) {
  if (typeof move !== "number" || !Number.isFinite(move)) return "—";
  const pct = (move * 100).toFixed(2);
  return `${move > 0 ? "+" : ""}${pct === "-0.00" ? "0.00" : pct}%`;
}

/** {window, byStrategy: Map(strategy -> [row])} from the API's body; rows keep its order. */
export function groupScores(body) {
  const byStrategy = new Map();
  for (const row of Array.isArray(body && body.scores) ? body.scores : []) {
    if (!row || typeof row.strategy !== "string" || typeof row.symbol !== "string") continue;
    if (!byStrategy.has(row.strategy)) byStrategy.set(row.strategy, []);
    byStrategy.get(row.strategy).push(row);
  }
  return { window: Number(body && body.window_signals) || null, byStrategy };
}

const COLUMNS = [
  ["Symbol", (r) => r.symbol],
  ["Signals", (r) => String(r.signals)],
  ["1 bar", (r) => formatRate(r.hit_rate_1)],
  ["5 bars", (r) => formatRate(r.hit_rate_5)],
  ["20 bars", (r) => formatRate(r.hit_rate_20)],
  ["Avg move 5", (r) => formatMove(r.avg_move_5)],
];
const KEYS = ["symbol", "signals", "hit_rate_1", "hit_rate_5", "hit_rate_20", "avg_move_5"];

/** A <dd> with the strategy's score table, or null when it has no scores. */
export function scoreEl(rows, window) {
  if (!rows || !rows.length) return null;
  const dd = document.createElement("dd");
  dd.className = "score";
  const table = document.createElement("table");
  table.className = "scores";
  const caption = document.createElement("caption");
  const total = rows.reduce((n, r) => n + (Number(r.signals) || 0), 0);
  caption.textContent = `Right-way moves after 1, 5 and 20 bars, from ${total} signal${total === 1 ? "" : "s"}`
    + `${window ? ` (the last ${window} per symbol)` : ""}. Signals: the sample size, newest `
    + "ones not yet scored included.";
  const head = document.createElement("tr");
  for (const [title] of COLUMNS) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = title;
    head.append(th);
  }
  const body = document.createElement("tbody");
  for (const r of rows) {
    const tr = document.createElement("tr");
    tr.dataset.symbol = r.symbol;
    COLUMNS.forEach(([, value], i) => {
      const td = document.createElement("td");
      td.dataset.key = KEYS[i];
      td.textContent = value(r);
      tr.append(td);
    });
    body.append(tr);
  }
  const thead = document.createElement("thead");
  thead.append(head);
  table.append(caption, thead, body);
  dd.append(table);
  return dd;
}
