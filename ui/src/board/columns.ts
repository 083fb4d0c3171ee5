// The board's columns: what each shows, how wide, how it reads, and which are on by default.
import type { RankRow } from "../session/types";
import { formatBps, formatCountdown, formatFixed, formatPct, formatPrice, formatRate, formatVolume } from "./format";

export type NumericField = {
  [F in keyof RankRow]: RankRow[F] extends number | null ? F : never;
}[keyof RankRow];

export interface Column {
  /** The RankRow field, also the server's sort column. */
  field: NumericField;
  label: string;
  /** Header tooltip: the metric's definition. */
  title: string;
  width: number;
  format(value: number | null): string;
  /** Coloured green/red by sign (changes and distances), not only flashed. */
  signed?: boolean;
  /**
   * How a change flashes: `tick` green up / red down (prices), `sign` in the colour of the
   * new value's sign (a red -0.01% never flashes green), `neutral` without a direction
   * (more volume or trades is not bullish).
   */
  flash: FlashKind;
  /**
   * The value as of the board's time rather than the row's (`nowMs`: the board's exchange
   * time): a countdown keeps counting between the row's updates.
   */
  at?(value: number | null, row: RankRow, nowMs: number): number | null;
}

export type FlashKind = "tick" | "sign" | "neutral";

const pct = (field: NumericField, label: string, title: string): Column => ({
  field,
  label,
  title,
  width: 76,
  format: formatPct,
  signed: true,
  flash: "sign",
});
const volume = (field: NumericField, label: string, title: string): Column => ({
  field,
  label,
  title,
  width: 80,
  format: formatVolume,
  flash: "neutral",
});
const rvol = (field: NumericField, label: string, title: string): Column => ({
  field,
  label,
  title,
  width: 64,
  format: formatFixed(2, "×"),
  flash: "neutral",
});

const bps = (field: NumericField, label: string, title: string): Column => ({
  field,
  label,
  title,
  width: 74,
  format: formatBps,
  signed: true,
  flash: "sign",
});
const rate = (field: NumericField, label: string, title: string): Column => ({
  field,
  label,
  title,
  width: 82,
  format: formatRate,
  signed: true,
  flash: "sign",
});
const UNDERCOUNT = "Binance sends at most one liquidation per symbol per second, so this undercounts";
const liquidations = (field: NumericField, label: string, side: string, window: string): Column =>
  volume(field, label, `Quote volume of ${side} liquidated over ${window}. ${UNDERCOUNT}`);

/** Every metric column the board can show, in display order. */
export const COLUMNS: Column[] = [
  { field: "price", label: "Price", title: "Close of the latest 1s candle", width: 104, format: formatPrice, flash: "tick" },
  pct("change_pct_1m", "1m %", "Price change over 1 minute"),
  pct("change_pct_5m", "5m %", "Price change over 5 minutes"),
  pct("change_pct_15m", "15m %", "Price change over 15 minutes"),
  pct("change_pct_1h", "1h %", "Price change over 1 hour"),
  pct("change_pct_4h", "4h %", "Price change over 4 hours"),
  pct("change_pct_24h", "24h %", "Price change over 24 hours"),
  volume("quote_volume_1m", "Vol 1m", "Quote volume over 1 minute"),
  volume("quote_volume_5m", "Vol 5m", "Quote volume over 5 minutes"),
  volume("quote_volume_15m", "Vol 15m", "Quote volume over 15 minutes"),
  volume("quote_volume_1h", "Vol 1h", "Quote volume over 1 hour"),
  volume("quote_volume_4h", "Vol 4h", "Quote volume over 4 hours"),
  volume("quote_volume_24h", "Vol 24h", "Quote volume over 24 hours"),
  rvol("rvol_1m", "RVol 1m", "Relative volume: the forming 1m bar over the average of the previous 10"),
  rvol("rvol_5m", "RVol 5m", "Relative volume: the forming 5m bar over the average of the previous 10"),
  rvol("rvol_15m", "RVol 15m", "Relative volume: the forming 15m bar over the average of the previous 10"),
  rvol("rvol_1h", "RVol 1h", "Relative volume: the forming 1h bar over the average of the previous 10"),
  { field: "rsi_14", label: "RSI", title: "RSI(14) of closed 1m candles", width: 52, format: formatFixed(1), flash: "tick" },
  { field: "volatility_1h", label: "Vola 1h", title: "Std. deviation of the last 60 one-minute log returns, %", width: 64, format: formatFixed(2, "%"), flash: "neutral" },
  { field: "vwap_24h", label: "VWAP 24h", title: "24h volume-weighted average price", width: 104, format: formatPrice, flash: "tick" },
  pct("vwap_distance_pct", "VWAP dist", "Distance of the price from the 24h VWAP"),
  { field: "high_24h", label: "High 24h", title: "24h high", width: 104, format: formatPrice, flash: "tick" },
  { field: "low_24h", label: "Low 24h", title: "24h low", width: 104, format: formatPrice, flash: "tick" },
  pct("from_high_pct", "From high", "Percent below the 24h high"),
  pct("from_low_pct", "From low", "Percent above the 24h low"),
  { field: "trades_per_min", label: "Trades/m", title: "Exchange trades over the last 60 s", width: 70, format: formatFixed(0), flash: "neutral" },
  { field: "bid", label: "Bid", title: "Best bid", width: 104, format: formatPrice, flash: "tick" },
  { field: "ask", label: "Ask", title: "Best ask", width: 104, format: formatPrice, flash: "tick" },
  { field: "spread_bps", label: "Spread", title: "(ask - bid) / mid, basis points", width: 62, format: formatFixed(1, " bp"), flash: "neutral" },
  { field: "mark_price", label: "Mark", title: "Mark price (perpetuals): what positions are valued at", width: 104, format: formatPrice, flash: "tick" },
  { field: "index_price", label: "Index", title: "Index price (perpetuals): the spot index the mark tracks", width: 104, format: formatPrice, flash: "tick" },
  bps("basis_bps", "Basis", "(mark - index) / index, basis points"),
  bps("premium_bps", "Premium", "Perp price over its spot pair's last price, basis points"),
  rate("funding_rate_pct", "Funding", "Current funding-rate estimate, per funding interval"),
  rate("funding_last_pct", "Fund. last", "Rate of the last settled funding"),
  { field: "funding_annual_pct", label: "Fund. APR", title: "Funding estimate × fundings per year (from the symbol's funding interval)", width: 80, format: formatPct, signed: true, flash: "sign" },
  {
    field: "next_funding_s",
    label: "Next fund.",
    title: "Time to the next funding",
    width: 76,
    format: formatCountdown,
    flash: "neutral",
    at: (value, row, nowMs) => (value === null ? null : Math.max(0, value - Math.max(0, nowMs - row.time_ms) / 1000)),
  },
  volume("open_interest", "OI", "Open interest, contracts (base asset)"),
  volume("open_interest_value", "OI value", "Open interest × mark price, quote asset"),
  pct("oi_change_pct_5m", "OI 5m %", "Open interest change over 5 minutes"),
  pct("oi_change_pct_1h", "OI 1h %", "Open interest change over 1 hour"),
  pct("oi_change_pct_4h", "OI 4h %", "Open interest change over 4 hours"),
  pct("oi_change_pct_24h", "OI 24h %", "Open interest change over 24 hours"),
  liquidations("liq_long_5m", "Liq L 5m", "longs", "5 minutes"),
  liquidations("liq_long_1h", "Liq L 1h", "longs", "1 hour"),
  liquidations("liq_long_24h", "Liq L 24h", "longs", "24 hours"),
  liquidations("liq_short_5m", "Liq S 5m", "shorts", "5 minutes"),
  liquidations("liq_short_1h", "Liq S 1h", "shorts", "1 hour"),
  liquidations("liq_short_24h", "Liq S 24h", "shorts", "24 hours"),
];

/** A cell's value: the row's, or for a column that counts on (`at`), as of the board's time. */
export function cellValue(column: Column, row: RankRow, nowMs: number | null): number | null {
  const value = row[column.field];
  return column.at && nowMs !== null ? column.at(value, row, nowMs) : value;
}

export const COLUMN_BY_FIELD = new Map<string, Column>(COLUMNS.map((column) => [column.field, column]));

export const DEFAULT_COLUMNS: NumericField[] = [
  "price",
  "change_pct_1m",
  "change_pct_5m",
  "change_pct_15m",
  "change_pct_1h",
  "change_pct_24h",
  "quote_volume_5m",
  "quote_volume_24h",
  "rvol_5m",
  "rvol_1h",
  "rsi_14",
  "volatility_1h",
  "spread_bps",
  "trades_per_min",
  "from_high_pct",
  "from_low_pct",
];

/** The known columns of a saved list, in its order (fields since renamed are dropped). */
export function visibleColumns(fields: string[]): Column[] {
  const columns = fields.flatMap((field) => COLUMN_BY_FIELD.get(field) ?? []);
  return columns.length > 0 ? columns : DEFAULT_COLUMNS.map((field) => COLUMN_BY_FIELD.get(field)!);
}

/** Fixed widths of the symbol and market columns, before the metrics, and the actions after. */
export const SYMBOL_WIDTH = 150;
export const MARKET_WIDTH = 52;
export const ACTIONS_WIDTH = 78;

export function gridTemplate(columns: Column[]): string {
  return [SYMBOL_WIDTH, MARKET_WIDTH, ...columns.map((column) => column.width), ACTIONS_WIDTH]
    .map((width) => `${width}px`)
    .join(" ");
}

/** The sign a signed cell is coloured by: by the digits shown, a -0.001% that reads 0.00% is neither. */
export function tone(value: number | null): "up" | "down" | null {
  if (value === null || Math.abs(value) < 0.005) return null;
  return value > 0 ? "up" : "down";
}

/** The flash of a cell the latest update moved (`moved`: which way), by its column's kind. */
export function cellFlash(kind: FlashKind, moved: "up" | "down" | undefined, value: number | null): "up" | "down" | "neutral" | null {
  if (!moved) return null;
  if (kind === "tick") return moved;
  if (kind === "sign") return tone(value) ?? "neutral";
  return "neutral";
}
