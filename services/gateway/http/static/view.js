// DOM pieces of the live page: table rows, symbol cards with their chart, the strategy
// panel and system messages. Text only ever goes in through textContent/append.
import { SymbolChart } from "./charts.js";
import { formatPrice, timeEl } from "./format.js";
import { scoreEl } from "./scores.js";
import { renderSpark } from "./sparkline.js";
import { describe, formatParams } from "./strategies.js";

const $ = (id) => document.getElementById(id);
const MAX_MESSAGES = 5;

export function sideEl(type) {
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

const text = (v) => (typeof v === "string" ? v : "—");

/** "SMA 5 crossed above SMA 20 at 60,112.40" plus the timeframe, or what is known. */
export function whyEl(sig) {
  const span = document.createElement("span");
  span.className = "why";
  span.append(typeof sig.reason === "string" ? sig.reason : "No reason given (older signal format).");
  if (typeof sig.timeframe === "string") {
    const tf = document.createElement("span");
    tf.className = "tf";
    tf.textContent = `${sig.timeframe} bars`;
    span.append(" ", tf);
  }
  return span;
}

export function renderRow(row, live) {
  const { sig } = row;
  const tr = document.createElement("tr");
  tr.className = `row-${sig.type.toLowerCase()}${live ? " fresh" : ""}`;
  if (sig.id) tr.dataset.id = sig.id;
  tr.dataset.symbol = typeof sig.symbol === "string" ? sig.symbol : "";
  tr.dataset.strategy = typeof sig.strategy === "string" ? sig.strategy : "";
  tr.dataset.side = sig.type;
  tr.append(
    cell(timeEl(row.at)),
    cell(text(sig.symbol), "sym"),
    cell(text(sig.strategy), "col-strategy"),
    cell(sideEl(sig.type)),
    cell(formatPrice(sig.price, sig.symbol), "num"),
    cell(whyEl(sig), "col-why"),
  );
  return tr;
}

/** A card with its chart; `chart` is null where the chart library did not load. */
export function makeCard(symbol) {
  const card = $("card-template").content.firstElementChild.cloneNode(true);
  card.dataset.symbol = symbol;
  card.querySelector(".card-symbol").textContent = symbol;
  const box = card.querySelector(".chart");
  box.setAttribute("aria-label", `${symbol} price chart with BUY and SELL markers`);
  let chart = null;
  if (globalThis.LightweightCharts) {
    chart = new SymbolChart(box, card.querySelector(".legend"), symbol);
  } else {
    box.hidden = true;
  }
  return { card, chart };
}

export function renderCard(m, symbol) {
  const { card, last } = m;
  const meta = card.querySelector(".card-meta");
  if (last) {
    card.querySelector(".side").replaceWith(sideEl(last.sig.type));
    card.querySelector(".card-price").textContent = formatPrice(last.sig.price, symbol);
    meta.replaceChildren(`Last signal: ${text(last.sig.strategy)}, `, timeEl(last.at), ". ", whyEl(last.sig));
  } else { // none, or none the filters show
    const side = document.createElement("span");
    side.className = "side";
    card.querySelector(".side").replaceWith(side);
    card.querySelector(".card-price").textContent = "";
    meta.replaceChildren();
  }
  renderSpark(card.querySelector(".spark"), m.chart ? m.chart.bars : [], symbol);
  const bars = m.chart ? m.chart.bars.length : 0;
  card.querySelector(".chart").hidden = !m.chart || bars === 0;
  card.querySelector(".chart-empty").hidden = bars > 0;
}

/** The panel: one entry per strategy seen or scored, its two sentences, the params it ran
 * with, and how its signals have done (scores: {window, byStrategy}). */
export function renderStrategies(strategies, scores) {
  const list = $("strategy-list");
  const names = [...new Set([...strategies.keys(), ...scores.byStrategy.keys()])].sort();
  list.replaceChildren(...names.map((name) => strategyEl(
    name, strategies.get(name) ?? null, scoreEl(scores.byStrategy.get(name), scores.window),
  )));
  $("strategies-empty").hidden = names.length > 0;
}

function strategyEl(name, params, score) {
  const info = describe(name);
  const div = document.createElement("div");
  div.className = "strategy";
  div.dataset.strategy = name;
  const dt = document.createElement("dt");
  const code = document.createElement("code");
  code.textContent = name;
  dt.append(`${info.title} `, code);
  const dd = document.createElement("dd");
  // `name` in a description is a parameter: shown as code, like the parameters below.
  info.text.split("`").forEach((part, i) => {
    if (i % 2 === 0) { dd.append(part); return; }
    const param = document.createElement("code");
    param.textContent = part;
    dd.append(param);
  });
  const p = document.createElement("dd");
  p.className = "params";
  p.textContent = params ? `Parameters: ${formatParams(params)}` : "Parameters: not reported by its signals.";
  div.append(dt, dd, p);
  if (score) div.append(score);
  return div;
}

const ICONS = { info: "ℹ", warning: "⚠", critical: "⛔" };
export function showMessage(msg, source) {
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
  const list = $("message-list");
  list.prepend(li);
  while (list.children.length > MAX_MESSAGES) list.lastElementChild.remove();
  $("messages").hidden = false;
}
