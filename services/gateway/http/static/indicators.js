// The monitor's indicators (services/monitor/strategies/indicators.py), ported line for line,
// and for each strategy what its chart draws. A monitor strategy is a pure function of its
// last `warmup` closes, so a chart value at bar i is that formula over the `warmup` closes
// ending at bar i: exactly what the monitor computed when the bar closed (the value a signal
// on that bar carries in `indicators`), and nothing before the monitor's own warm-up.

/** Simple moving average; element i averages values[i .. i + period). Aligned to the end. */
export function sma(values, period) {
  if (values.length < period) return [];
  let total = 0;
  for (let i = 0; i < period; i++) total += values[i];
  const out = [total / period];
  for (let i = period; i < values.length; i++) {
    total += values[i] - values[i - period];
    out.push(total / period);
  }
  return out;
}

/** Exponential moving average, alpha = 2 / (period + 1), seeded with the first SMA. */
export function ema(values, period) {
  if (values.length < period) return [];
  const alpha = 2 / (period + 1);
  let current = 0;
  for (let i = 0; i < period; i++) current += values[i];
  current /= period;
  const out = [current];
  for (let i = period; i < values.length; i++) {
    current += alpha * (values[i] - current);
    out.push(current);
  }
  return out;
}

function rsiValue(gain, loss) {
  if (loss === 0) return gain === 0 ? 50 : 100; // no losses: overbought, unless flat
  return 100 - 100 / (1 + gain / loss);
}

/** Wilder's RSI (0..100), seeded with the mean of the first `period` changes. */
export function rsi(values, period) {
  if (values.length <= period) return [];
  const changes = values.slice(1).map((v, i) => v - values[i]);
  let gain = 0;
  let loss = 0;
  for (const c of changes.slice(0, period)) { gain += Math.max(c, 0); loss += Math.max(-c, 0); }
  gain /= period;
  loss /= period;
  const out = [rsiValue(gain, loss)];
  for (const c of changes.slice(period)) {
    gain = (gain * (period - 1) + Math.max(c, 0)) / period;
    loss = (loss * (period - 1) + Math.max(-c, 0)) / period;
    out.push(rsiValue(gain, loss));
  }
  return out;
}

/** [MACD line, signal line], both aligned to the end. */
export function macd(values, fast, slow, signal) {
  const slowEma = ema(values, slow);
  const fastEma = slowEma.length ? ema(values, fast).slice(-slowEma.length) : [];
  const line = fastEma.map((f, i) => f - slowEma[i]);
  const signalLine = ema(line, signal);
  return [signalLine.length ? line.slice(-signalLine.length) : [], signalLine];
}

/** [lower, middle, upper] band of the last `period` values; population deviation. */
export function bollinger(values, period, width) {
  const win = values.slice(-period);
  const mean = win.reduce((s, v) => s + v, 0) / period;
  const dev = Math.sqrt(win.reduce((s, v) => s + (v - mean) ** 2, 0) / period);
  return [mean - width * dev, mean, mean + width * dev];
}

const last = (xs) => (xs.length ? xs[xs.length - 1] : null);

/**
 * Per bar, `fn` over the `warmup` closes ending there (an object of named values), or null
 * before the monitor's warm-up. Returns {name: [value or null per bar]}.
 */
export function perBar(closes, warmup, fn, names) {
  const out = Object.fromEntries(names.map((n) => [n, new Array(closes.length).fill(null)]));
  for (let i = warmup - 1; i < closes.length; i++) {
    const values = fn(closes.slice(i + 1 - warmup, i + 1));
    for (const n of names) out[n][i] = values[n] ?? null;
  }
  return out;
}

const COLORS = { a: "#fbbf24", b: "#a78bfa", band: "#38bdf8" };
const HIST_UP = "rgba(52, 211, 153, 0.6)";
const HIST_DOWN = "rgba(251, 113, 133, 0.6)";

function maCross(p, kind) {
  const fast = p.fast ?? (kind === "EMA" ? 12 : 5);
  const slow = p.slow ?? (kind === "EMA" ? 26 : 20);
  const avg = kind === "EMA" ? ema : sma;
  // The monitor's warm-up (monitor/strategies/sma_cross.py): an EMA needs three slow periods.
  return {
    warmup: (kind === "EMA" ? slow * 3 : slow) + 1,
    fn: (w) => ({ fast: last(avg(w, fast)), slow: last(avg(w, slow)) }),
    series: [
      { key: "fast", label: `${kind} ${fast}`, color: COLORS.a },
      { key: "slow", label: `${kind} ${slow}`, color: COLORS.b },
    ],
  };
}

const SPECS = {
  sma_cross: (p) => maCross(p, "SMA"),
  ema_cross: (p) => maCross(p, "EMA"),
  bollinger: (p) => {
    const period = p.period ?? 20;
    const width = p.width ?? 2;
    return {
      warmup: period + 1,
      fn: (w) => { const [lower, mid, upper] = bollinger(w, period, width); return { upper, mid, lower }; },
      series: [
        { key: "upper", label: "Upper band", color: COLORS.band },
        { key: "mid", label: `Average ${period}`, color: COLORS.a },
        { key: "lower", label: "Lower band", color: COLORS.band },
      ],
    };
  },
  rsi: (p) => {
    const period = p.period ?? 14;
    const high = p.overbought ?? 70;
    const low = p.oversold ?? 30;
    return {
      warmup: period * 3 + 2,
      fn: (w) => ({ rsi: last(rsi(w, period)) }),
      series: [{ key: "rsi", label: `RSI ${period} (${low}/${high})`, color: COLORS.a, pane: 1, levels: [high, low] }],
    };
  },
  macd_cross: (p) => {
    const fast = p.fast ?? 12;
    const slow = p.slow ?? 26;
    const signal = p.signal ?? 9;
    return {
      warmup: (slow + signal) * 3 + 1,
      fn: (w) => {
        const [line, sig] = macd(w, fast, slow, signal);
        const m = last(line);
        const s = last(sig);
        return { macd: m, macd_signal: s, macd_histogram: m === null ? null : m - s };
      },
      series: [
        { key: "macd_histogram", label: "Histogram", pane: 1, histogram: [HIST_UP, HIST_DOWN] },
        { key: "macd", label: `MACD ${fast}/${slow}`, color: COLORS.a, pane: 1 },
        { key: "macd_signal", label: `Signal ${signal}`, color: COLORS.b, pane: 1 },
      ],
    };
  },
};
SPECS.macd = SPECS.macd_cross; // the name older signals used

/**
 * What a strategy's chart draws: [{key, label, color, pane (0 price, 1 oscillator), levels?,
 * histogram?, values}], values aligned with `closes`; [] for a strategy it does not know.
 * Keys are the monitor's `indicators` names where the signal carries them.
 */
export function indicatorSeries(strategy, params, closes) {
  const spec = SPECS[strategy] && SPECS[strategy](params || {});
  if (!spec) return [];
  const values = perBar(closes, spec.warmup, spec.fn, spec.series.map((s) => s.key));
  return spec.series.map((s) => ({ pane: 0, ...s, values: values[s.key] }));
}
