// Formatting shared by the table, the cards and the charts: one price precision per symbol,
// and times with date and zone (the browser's zone by default, UTC on request).

const digitsBySymbol = new Map(); // symbol -> fraction digits, fixed at first sight
const numberFmts = new Map();     // digits -> Intl.NumberFormat
let utc = false;

/** Fraction digits for a price of this size: cents above 1, enough for sub-cent coins below. */
export function digitsFor(price) {
  const size = Math.abs(price);
  return size >= 1 ? 2 : size >= 0.01 ? 5 : 8;
}

/**
 * The symbol's precision, decided once from the first price seen (the bars' scale when they
 * load first): every price of a symbol then has the same number of digits, so 0.46465 never
 * sits next to 0.46130771.
 */
export function precision(symbol, price) {
  if (typeof symbol !== "string") return digitsFor(price);
  if (!digitsBySymbol.has(symbol) && Number.isFinite(price)) {
    digitsBySymbol.set(symbol, digitsFor(price));
  }
  return digitsBySymbol.get(symbol) ?? 2;
}

export function formatPrice(price, symbol) {
  const digits = precision(symbol, price);
  if (!numberFmts.has(digits)) {
    numberFmts.set(digits, new Intl.NumberFormat(undefined, {
      minimumFractionDigits: digits, maximumFractionDigits: digits,
    }));
  }
  return numberFmts.get(digits).format(price);
}

export function isUtc() { return utc; }
export function setUtc(on) { utc = Boolean(on); fullFmt = makeFull(); clockFmt = makeClock(); }

function makeFull() {
  return new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    second: "2-digit", hourCycle: "h23", timeZoneName: "short", timeZone: utc ? "UTC" : undefined,
  });
}
function makeClock() {
  return new Intl.DateTimeFormat(undefined, {
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
    timeZone: utc ? "UTC" : undefined,
  });
}
let fullFmt = makeFull();
let clockFmt = makeClock();

/** "1 Dec 2026, 23:47:05 UTC": date, time and zone. */
export function formatTime(seconds) { return fullFmt.format(new Date(seconds * 1000)); }
/** "23:47:05" in the chosen zone: the charts' axis labels. */
export function formatClock(seconds) { return clockFmt.format(new Date(seconds * 1000)); }

export function timeEl(seconds) {
  const t = document.createElement("time");
  t.dateTime = new Date(seconds * 1000).toISOString();
  t.dataset.ts = String(seconds);
  t.textContent = formatTime(seconds);
  return t;
}

/** Re-render every <time> made by timeEl after the zone changed. */
export function refreshTimes(root) {
  for (const t of root.querySelectorAll("time[data-ts]")) t.textContent = formatTime(Number(t.dataset.ts));
}
