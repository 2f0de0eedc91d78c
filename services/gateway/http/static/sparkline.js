// A card's sparkline: the market's last closes (from the bars, not the signals), coloured by
// the price change over them and labelled with it ("last 60 bars, +0.42%"), so the line never
// contradicts its own label. An inline SVG path: no canvas, no style attribute (CSP).

export const SPARK_BARS = 60;
const W = 120; // viewBox units; CSS sizes the box
const H = 32;
const PAD = 2;

/** {closes, change (relative, 0.0042 = +0.42%), direction: "up" | "down" | "flat"} or null. */
export function priceChange(bars) {
  const closes = bars.slice(-SPARK_BARS).map((b) => b.c);
  if (closes.length < 2 || !(closes[0] > 0)) return null;
  const change = (closes[closes.length - 1] - closes[0]) / closes[0];
  return { closes, change, direction: change > 0 ? "up" : change < 0 ? "down" : "flat" };
}

function pathOf(closes) {
  const lo = Math.min(...closes);
  const span = Math.max(...closes) - lo || 1;
  const step = (W - 2 * PAD) / (closes.length - 1);
  return closes.map((c, i) => {
    const x = PAD + i * step;
    const y = H - PAD - ((c - lo) / span) * (H - 2 * PAD);
    return `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
  }).join("");
}

export function formatChange(change) {
  const pct = (change * 100).toFixed(2);
  return `${change > 0 ? "+" : ""}${pct === "-0.00" ? "0.00" : pct}%`;
}

/** Fill a card's <figure class="spark"> from the symbol's bars; hidden with fewer than 2. */
export function renderSpark(figure, bars, symbol) {
  const found = priceChange(bars);
  figure.hidden = found === null;
  if (!found) return;
  const { closes, change, direction } = found;
  const label = `last ${closes.length} bars, ${formatChange(change)}`;
  figure.dataset.direction = direction;
  figure.dataset.change = String(change);
  figure.querySelector("path").setAttribute("d", pathOf(closes));
  figure.querySelector("svg").setAttribute("aria-label", `${symbol} market price, ${label}`);
  figure.querySelector("figcaption").textContent = label;
}
