// One candlestick chart per symbol (the vendored lightweight-charts, global LightweightCharts),
// with BUY/SELL markers at the signals and the triggering strategy's indicator lines.
// Indicator lines are recomputed here from the bars' closes with the signal's own params:
// a signal carries only the values on its trigger bar. RSI and MACD (separate panes) are not
// drawn; their signals still get markers and their reason sentence.
import { formatClock, formatPrice, precision } from "./format.js";

const LWC = globalThis.LightweightCharts;
const MAX_BARS = 500;
const COLORS = { up: "#34d399", down: "#fb7185", a: "#fbbf24", b: "#a78bfa", band: "#38bdf8" };

function sma(values, n) {
  const out = new Array(values.length).fill(null);
  let sum = 0;
  values.forEach((v, i) => {
    sum += v;
    if (i >= n) sum -= values[i - n];
    if (i >= n - 1) out[i] = sum / n;
  });
  return out;
}
function ema(values, n) {
  // Seeded with the first close, as the monitor's is; the seed fades within a few periods.
  const k = 2 / (n + 1);
  let prev = null;
  return values.map((v) => (prev = prev === null ? v : v * k + prev * (1 - k)));
}
function bands(values, n, width) {
  const mid = sma(values, n);
  const upper = mid.map(() => null);
  const lower = mid.map(() => null);
  mid.forEach((m, i) => {
    if (m === null) return;
    const win = values.slice(i - n + 1, i + 1);
    const sd = Math.sqrt(win.reduce((s, v) => s + (v - m) ** 2, 0) / n);
    upper[i] = m + width * sd;
    lower[i] = m - width * sd;
  });
  return { upper, mid, lower };
}

/** Lines for a strategy: [{key, label, color, values}] or [] when it has none on the price pane. */
function indicatorLines(strategy, params, closes) {
  const p = params || {};
  if (strategy === "sma_cross" || strategy === "ema_cross") {
    const avg = strategy === "ema_cross" ? ema : sma;
    const kind = strategy === "ema_cross" ? "EMA" : "SMA";
    const fast = p.fast ?? (kind === "EMA" ? 12 : 5);
    const slow = p.slow ?? (kind === "EMA" ? 26 : 20);
    return [
      { key: "fast", label: `${kind} ${fast}`, color: COLORS.a, values: avg(closes, fast) },
      { key: "slow", label: `${kind} ${slow}`, color: COLORS.b, values: avg(closes, slow) },
    ];
  }
  if (strategy === "bollinger") {
    const period = p.period ?? 20;
    const b = bands(closes, period, p.width ?? 2);
    return [
      { key: "upper", label: `Upper band`, color: COLORS.band, values: b.upper },
      { key: "mid", label: `Average ${period}`, color: COLORS.a, values: b.mid },
      { key: "lower", label: `Lower band`, color: COLORS.band, values: b.lower },
    ];
  }
  return [];
}

export class SymbolChart {
  constructor(container, legend, symbol) {
    this.symbol = symbol;
    this.legend = legend;
    this.bars = [];       // {t, o, h, l, c}, strictly increasing t
    this.signals = [];    // the visible signals of this symbol
    this.strategy = null; // {name, params} of the newest signal with indicators
    this.lines = new Map();
    this.chart = LWC.createChart(container, {
      autoSize: true,
      // The library's logo injects a <style> element, which the page's CSP refuses: the
      // attribution is a plain link in the page's footer instead (index.html).
      layout: {
        background: { color: "#111a2e" }, textColor: "#9fb0c8", fontSize: 11, attributionLogo: false,
      },
      grid: { vertLines: { color: "#1b2640" }, horzLines: { color: "#1b2640" } },
      rightPriceScale: { borderColor: "#24324f" },
      timeScale: {
        borderColor: "#24324f", timeVisible: true, secondsVisible: true,
        tickMarkFormatter: (t) => formatClock(t),
      },
      localization: { timeFormatter: (t) => formatClock(t), priceFormatter: (p) => formatPrice(p, symbol) },
    });
    this.candles = this.chart.addSeries(LWC.CandlestickSeries, {
      upColor: COLORS.up, downColor: COLORS.down, wickUpColor: COLORS.up,
      wickDownColor: COLORS.down, borderVisible: false,
    });
    this.markers = LWC.createSeriesMarkers(this.candles, []);
  }

  setBars(bars) {
    const clean = [];
    for (const b of bars) {
      if (!isBar(b)) continue;
      if (clean.length && b.t <= clean[clean.length - 1].t) continue; // the library needs order
      clean.push(b);
    }
    this.bars = clean.slice(-MAX_BARS);
    if (this.bars.length) this.scale(this.bars[0].c);
    this.candles.setData(this.bars.map(candle));
    // No fitContent(): the box may still be hidden (zero wide) here; the default bar spacing
    // shows the newest bars at a readable width once it appears.
    this.redraw();
  }

  addBar(bar) {
    if (!isBar(bar)) return false;
    const last = this.bars[this.bars.length - 1];
    if (last && bar.t < last.t) return false; // late: the reload on reconnect has it
    if (last && bar.t === last.t) this.bars[this.bars.length - 1] = bar;
    else this.bars.push(bar);
    if (this.bars.length > MAX_BARS) this.bars.shift();
    this.scale(bar.c);
    this.candles.update(candle(bar));
    this.redraw();
    return true;
  }

  setSignals(signals) {
    this.signals = signals;
    const withParams = signals.filter((s) => s.params && typeof s.strategy === "string");
    const newest = withParams[withParams.length - 1];
    this.strategy = newest ? { name: newest.strategy, params: newest.params } : null;
    this.redraw();
  }

  scale(price) {
    const digits = precision(this.symbol, price);
    if (this.digits === digits) return;
    this.digits = digits;
    this.candles.applyOptions({ priceFormat: { type: "price", precision: digits, minMove: 10 ** -digits } });
  }

  redraw() {
    this.markers.setMarkers(this.markerList());
    this.drawIndicators();
  }

  markerList() {
    // A signal belongs to the bar whose close triggered it. Its time is about that bar's
    // close, which is also the next bar's open: half a bar back lands inside the right one.
    const out = [];
    const n = this.bars.length;
    const half = n > 1 ? (this.bars[n - 1].t - this.bars[n - 2].t) / 2 : 0;
    for (const sig of this.signals) {
      const bar = barAt(this.bars, sig.ts - half);
      if (!bar) continue;
      const buy = sig.type === "BUY";
      out.push({
        time: bar.t, position: buy ? "belowBar" : "aboveBar", shape: buy ? "arrowUp" : "arrowDown",
        color: buy ? COLORS.up : COLORS.down, text: sig.type,
      });
    }
    return out.sort((a, b) => a.time - b.time);
  }

  drawIndicators() {
    const lines = this.strategy
      ? indicatorLines(this.strategy.name, this.strategy.params, this.bars.map((b) => b.c)) : [];
    const keys = new Set(lines.map((l) => l.key));
    for (const [key, series] of this.lines) {
      if (!keys.has(key)) { this.chart.removeSeries(series); this.lines.delete(key); }
    }
    for (const line of lines) {
      let series = this.lines.get(line.key);
      if (!series) {
        series = this.chart.addSeries(LWC.LineSeries, {
          lineWidth: 1, priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false,
        });
        this.lines.set(line.key, series);
      }
      series.applyOptions({ color: line.color, title: "" });
      series.setData(this.bars.flatMap((b, i) => (line.values[i] === null ? [] : [{ time: b.t, value: line.values[i] }])));
    }
    this.renderLegend(lines);
  }

  renderLegend(lines) {
    const items = lines.map((l) => {
      const span = document.createElement("span");
      span.className = "legend-item";
      span.dataset.color = l.key;
      const swatch = document.createElement("span");
      swatch.className = `swatch swatch-${l.key}`;
      swatch.setAttribute("aria-hidden", "true");
      span.append(swatch, l.label);
      return span;
    });
    const s = this.strategy && this.strategy.name;
    if (s && !lines.length) items.push(`${s}: indicator not drawn on the price chart`);
    this.legend.replaceChildren(...items);
  }

  /** What the tests read: the library's own view of the data, not pixels. */
  inspect() {
    return {
      candles: this.candles.data().length,
      markers: this.markers.markers().length,
      lines: [...this.lines.keys()],
    };
  }

  resetTimeFormat() {
    this.chart.applyOptions({ timeScale: { tickMarkFormatter: (t) => formatClock(t) } });
  }
}

function isBar(b) {
  return b && typeof b.t === "number" && ["o", "h", "l", "c"].every((k) => Number.isFinite(b[k]));
}
function candle(b) {
  return { time: b.t, open: b.o, high: b.h, low: b.l, close: b.c };
}
function barAt(bars, ts) {
  if (typeof ts !== "number" || !bars.length || ts < bars[0].t) return null;
  let lo = 0;
  let hi = bars.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (bars[mid].t <= ts) lo = mid; else hi = mid - 1;
  }
  return bars[lo];
}
