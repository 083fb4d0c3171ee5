// Candles as the API sends them (GET /api/v1/candles, live `candle`/`close`) and the
// conversions the chart needs. Decimals stay strings; numbers are made for drawing only.

export const INTERVALS = ["1s", "1m", "5m", "15m", "1h", "4h", "1d"] as const;
export type Interval = (typeof INTERVALS)[number];

export const INTERVAL_MS: Record<Interval, number> = {
  "1s": 1_000,
  "1m": 60_000,
  "5m": 300_000,
  "15m": 900_000,
  "1h": 3_600_000,
  "4h": 14_400_000,
  "1d": 86_400_000,
};

/** One candle: the kline fields, decimals as exact strings. */
export interface Candle {
  open_time: number;
  close_time: number;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
  quote_volume: string;
  count: number;
  /** Rises with each revision (a late trade or a repair changed the candle). */
  version: number;
}

/** A page of GET /api/v1/candles, oldest first. */
export interface CandlePage {
  candles: Candle[];
  next_cursor: number | null;
}

/** One signal occurrence (GET /api/v1/signals, live `signal`). */
export interface Signal {
  name: string;
  timeframe: string;
  /** Close of the candle that fired it, ms. */
  time_ms: number;
  direction: "up" | "down";
  price: number;
  value: number;
}

/** The parts of a symbol key `exchange:market:symbol`. */
export interface SymbolRef {
  exchange: string;
  market: string;
  symbol: string;
}

export function parseKey(key: string): SymbolRef {
  const [exchange, market, ...rest] = key.split(":");
  return { exchange, market, symbol: rest.join(":") };
}

/** Digits after the point, trailing zeros aside ("61807.70" -> 1). */
function decimals(value: string): number {
  const point = value.indexOf(".");
  if (point < 0) return 0;
  let end = value.length;
  while (end > point + 1 && value[end - 1] === "0") end--;
  return end - point - 1;
}

/** The price precision that shows every candle's prices exactly (at least 2 digits). */
export function pricePrecision(candles: readonly Candle[]): number {
  let precision = 2;
  for (const c of candles) {
    precision = Math.max(precision, decimals(c.open), decimals(c.high), decimals(c.low), decimals(c.close));
  }
  return Math.min(precision, 12);
}

/** The open time (ms) of the bar of `interval` holding the candle that closed at `time_ms`. */
export function barTimeOf(timeMs: number, interval: Interval): number {
  const ms = INTERVAL_MS[interval];
  return Math.floor((timeMs - 1) / ms) * ms;
}

/** Percent change from open to close, null for an open of 0. */
export function changePct(candle: Candle): number | null {
  const open = Number(candle.open);
  return open === 0 ? null : ((Number(candle.close) - open) / open) * 100;
}
