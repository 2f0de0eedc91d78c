// One candlestick chart per symbol (the vendored lightweight-charts, global LightweightCharts),
// with BUY/SELL markers at the signals and the triggering strategy's indicators: lines on the
// price pane (moving averages, Bollinger bands), or a second pane below it (RSI with its two
// levels, MACD with its signal line and histogram). Indicators are recomputed from the bars'
// closes with the signal's own params, the way the monitor computes them (indicators.js): a
// signal carries only the values on its trigger bar.
import { formatClock, formatPrice, precision } from "./format.js";
import { indicatorSeries } from "./indicators.js";

const LWC = globalThis.LightweightCharts;
const MAX_BARS = 500;
const COLORS = { up: "#34d399", down: "#fb7185", level: "#64748b" };
const OSCILLATOR_PANE = 1;
const SIGNIFICANT = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 3 });
const OSCILLATOR_FORMAT = { type: "custom", formatter: (v) => SIGNIFICANT.format(v), minMove: 1e-10 };

export class SymbolChart {
  constructor(container, legend, symbol) {
    this.symbol = symbol;
    this.legend = legend;
    this.bars = [];       // {t, o, h, l, c}, strictly increasing t
    this.signals = [];    // the visible signals of this symbol
    this.strategy = null; // {name, params} of the newest signal with indicators
    this.lines = new Map(); // key -> series, on the price pane or the oscillator pane
    this.container = container;
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
      localization: { timeFormatter: (t) => formatClock(t) },
    });
    this.candles = this.chart.addSeries(LWC.CandlestickSeries, {
      upColor: COLORS.up, downColor: COLORS.down, wickUpColor: COLORS.up,
      wickDownColor: COLORS.down, borderVisible: false,
    });
    this.markers = LWC.createSeriesMarkers(this.candles, []);
    // The box is hidden (zero wide) until bars arrive: once it has a size, pin the view to
    // the newest bar, so the library then scrolls it along as bars arrive (a range computed
    // while hidden stays where it was, with the newest bars off to the right).
    const pin = new ResizeObserver(() => {
      if (!container.clientWidth || !this.bars.length) return;
      pin.disconnect();
      requestAnimationFrame(() => this.chart.timeScale().scrollToPosition(0, false));
    });
    pin.observe(container);
  }

  setBars(bars) {
    const clean = [];
    for (const b of bars) {
      if (!isBar(b)) continue;
      if (clean.length && b.t <= clean[clean.length - 1].t) continue; // the library needs order
      clean.push(b);
    }
    // Bars that came live (new_bar) while the request was on its way are newer than its
    // answer: keep them, or the indicators' windows would have a hole.
    const newest = clean.length ? clean[clean.length - 1].t : -Infinity;
    clean.push(...this.bars.filter((b) => b.t > newest));
    this.bars = clean.slice(-MAX_BARS);
    if (this.bars.length) this.scale(this.bars[0].c);
    this.candles.setData(this.bars.map(candle));
    // No fitContent(): the box may still be hidden (zero wide) here; the default bar spacing
    // shows the newest bars at a readable width once it appears (see the constructor).
    this.chart.timeScale().scrollToPosition(0, false);
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
    this.priceFormat = { type: "custom", formatter: (p) => formatPrice(p, this.symbol), minMove: 10 ** -digits };
    this.candles.applyOptions({ priceFormat: this.priceFormat });
    for (const series of this.lines.values()) {
      if (series.getPane().paneIndex() === 0) series.applyOptions({ priceFormat: this.priceFormat });
    }
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
      ? indicatorSeries(this.strategy.name, this.strategy.params, this.bars.map((b) => b.c)) : [];
    const keys = new Set(lines.map((l) => l.key));
    for (const [key, series] of this.lines) {
      if (!keys.has(key)) { this.chart.removeSeries(series); this.lines.delete(key); }
    }
    for (const line of lines) this.drawSeries(line);
    this.layoutPanes(lines.some((l) => l.pane === OSCILLATOR_PANE));
    this.renderLegend(lines);
  }

  drawSeries(line) {
    let series = this.lines.get(line.key);
    if (!series) {
      const type = line.histogram ? LWC.HistogramSeries : LWC.LineSeries;
      series = this.chart.addSeries(type, {
        lineWidth: 1, priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false,
        // The symbol's digits on the price pane; three significant digits for an oscillator
        // (RSI 0-100, a MACD of a 0.1 coin about 0.0001).
        priceFormat: line.pane === OSCILLATOR_PANE ? OSCILLATOR_FORMAT : this.priceFormat,
      }, line.pane);
      // An oscillator's own levels (RSI 70/30), dashed, on its pane.
      for (const price of line.levels || []) {
        series.createPriceLine({ price, color: COLORS.level, lineWidth: 1, lineStyle: 2, axisLabelVisible: true });
      }
      this.lines.set(line.key, series);
    }
    if (!line.histogram) series.applyOptions({ color: line.color, title: "" });
    const [up, down] = line.histogram || [];
    series.setData(this.bars.flatMap((b, i) => {
      const value = line.values[i];
      if (value === null || !Number.isFinite(value)) return [];
      return [line.histogram ? { time: b.t, value, color: value >= 0 ? up : down } : { time: b.t, value }];
    }));
  }

  layoutPanes(oscillator) {
    // The box grows for the second pane, so the price pane keeps its height.
    this.container.classList.toggle("with-pane", oscillator);
    const panes = this.chart.panes();
    if (panes.length > 1) panes[OSCILLATOR_PANE].setStretchFactor(0.5);
  }

  renderLegend(lines) {
    const items = lines.map((l) => {
      const span = document.createElement("span");
      span.className = "legend-item";
      span.dataset.key = l.key;
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      // Through the CSSOM, which the page's CSP allows (a style attribute it would refuse).
      swatch.style.background = l.color || l.histogram[0];
      swatch.setAttribute("aria-hidden", "true");
      span.append(swatch, l.label);
      return span;
    });
    const s = this.strategy && this.strategy.name;
    if (s && !lines.length) items.push(`${s}: this page does not know how to draw its indicator`);
    this.legend.replaceChildren(...items);
  }

  /** What the tests read: the library's own view of the data, not pixels. */
  inspect() {
    return {
      candles: this.candles.data().length,
      markers: this.markers.markers().length,
      lines: [...this.lines.keys()],
      // Per pane, its series' keys (the candles are "candles"), from the library's panes.
      panes: this.chart.panes().map((pane) => pane.getSeries().map((s) => this.keyOf(s))),
    };
  }

  keyOf(series) {
    if (series === this.candles) return "candles";
    return [...this.lines].find(([, s]) => s === series)?.[0] ?? "?";
  }

  /** An indicator's series (the library's ISeriesApi), e.g. series("rsi").data(). */
  series(key) {
    return this.lines.get(key) ?? null;
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
