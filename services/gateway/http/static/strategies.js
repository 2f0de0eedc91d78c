// What each strategy does, in two sentences, for the strategy panel. The parameters shown
// next to it come from the signals themselves (schema v2 `params`), so they are what ran.

export const STRATEGIES = {
  sma_cross: {
    title: "SMA crossover",
    text: "Compares a fast and a slow simple moving average of closing prices (the last `fast` "
      + "and `slow` bars). BUY when the fast average crosses above the slow one, SELL when it "
      + "crosses below.",
  },
  ema_cross: {
    title: "EMA crossover",
    text: "Like the SMA crossover, but with exponential moving averages, which weigh recent bars "
      + "more and so react sooner. BUY when the fast EMA crosses above the slow EMA, SELL when it "
      + "crosses below.",
  },
  bollinger: {
    title: "Bollinger breakout",
    text: "Draws bands `width` standard deviations above and below the average of the last "
      + "`period` closes. BUY when the close breaks above the upper band, SELL when it breaks "
      + "below the lower band.",
  },
  rsi: {
    title: "RSI reversal",
    text: "The Relative Strength Index (0 to 100) compares recent gains with recent losses over "
      + "`period` bars. BUY when it rises back above `oversold`, SELL when it falls back below "
      + "`overbought`.",
  },
  macd_cross: {
    title: "MACD crossover",
    text: "MACD is the difference between a fast and a slow exponential average; its signal line "
      + "is an average of MACD itself. BUY when MACD crosses above its signal line, SELL when it "
      + "crosses below.",
  },
};

STRATEGIES.macd = STRATEGIES.macd_cross; // the name older signals used

export function describe(name) {
  return STRATEGIES[name] ?? {
    title: name,
    text: "A strategy this page has no description for. Its signals carry their own reason.",
  };
}

/** "fast 5 · slow 20" from a signal's params. */
export function formatParams(params) {
  if (!params || typeof params !== "object") return "";
  return Object.entries(params)
    .filter(([, v]) => typeof v === "number")
    .map(([k, v]) => `${k} ${v}`)
    .join(" · ");
}
