// The filter builder's vocabulary: the metrics a condition may test and their windows, and a
// condition as typed (a draft) to and from the API's Condition.
import type { Condition, ConditionOp, MetricRef, Window } from "../session/types";

export interface Metric {
  /** The Condition `metric` the API accepts. */
  name: string;
  label: string;
  /** Windows it comes in (empty: a single column). */
  windows: Window[];
  /** What a trader should know when filtering on it (the option's tooltip). */
  title?: string;
}

const UNDERCOUNT = "Quote volume of liquidations. Binance sends at most one liquidation per symbol per second, so this undercounts";

const ALL_WINDOWS: Window[] = ["1m", "5m", "15m", "1h", "4h", "24h"];

/** The metrics of the ScanFilter's Condition schema, in the board's order. */
export const METRICS: Metric[] = [
  { name: "change_pct", label: "Change %", windows: ALL_WINDOWS },
  { name: "quote_volume", label: "Quote volume", windows: ALL_WINDOWS },
  { name: "rvol", label: "Relative volume", windows: ["1m", "5m", "15m", "1h"] },
  { name: "price", label: "Price", windows: [] },
  { name: "rsi_14", label: "RSI(14) 1m", windows: [] },
  { name: "volatility_1h", label: "Volatility 1h %", windows: [] },
  { name: "vwap_distance_pct", label: "From VWAP 24h %", windows: [] },
  { name: "from_high_pct", label: "From 24h high %", windows: [] },
  { name: "from_low_pct", label: "From 24h low %", windows: [] },
  { name: "trades_per_min", label: "Trades / min", windows: [] },
  { name: "spread_bps", label: "Spread (bp)", windows: [] },
  { name: "vwap_24h", label: "VWAP 24h", windows: [] },
  { name: "high_24h", label: "High 24h", windows: [] },
  { name: "low_24h", label: "Low 24h", windows: [] },
  { name: "bid", label: "Bid", windows: [] },
  { name: "ask", label: "Ask", windows: [] },
  { name: "mark_price", label: "Mark price", windows: [] },
  { name: "index_price", label: "Index price", windows: [] },
  { name: "basis_bps", label: "Basis (bp)", windows: [] },
  { name: "premium_bps", label: "Premium over spot (bp)", windows: [] },
  { name: "funding_rate_pct", label: "Funding rate %", windows: [] },
  { name: "funding_last_pct", label: "Last funding %", windows: [] },
  { name: "funding_annual_pct", label: "Funding APR %", windows: [] },
  { name: "next_funding_s", label: "Next funding in (s)", windows: [] },
  { name: "open_interest", label: "Open interest", windows: [] },
  { name: "open_interest_value", label: "Open interest value", windows: [] },
  { name: "oi_change_pct", label: "OI change %", windows: ["5m", "1h", "4h", "24h"] },
  { name: "liq_long", label: "Long liquidations", windows: ["5m", "1h", "24h"], title: UNDERCOUNT },
  { name: "liq_short", label: "Short liquidations", windows: ["5m", "1h", "24h"], title: UNDERCOUNT },
];

export const METRIC_BY_NAME = new Map(METRICS.map((metric) => [metric.name, metric]));

export const OPS: ConditionOp[] = [">=", ">", "<=", "<", "between"];

/** What a condition compares its metric with. */
export type Than = "number" | "metric";

/** A condition as typed: numbers still text, so a half-typed "-0." is not lost. */
export interface DraftCondition {
  metric: string;
  window: Window | null;
  op: ConditionOp;
  /** "number": with `value` (and `value2` for between); "metric": with `other` × `factor`. */
  than: Than;
  value: string;
  value2: string;
  other: string;
  otherWindow: Window | null;
  factor: string;
  /** Added to factor × other: the builder keeps a loaded condition's offset, it does not edit it. */
  offset: number;
  /** A condition the builder cannot edit (a between of metrics), kept whole until removed. */
  fixed?: Condition;
}

export function newDraft(): DraftCondition {
  return { metric: "change_pct", window: "5m", op: ">=", than: "number", value: "", value2: "", other: "vwap_24h", otherWindow: null, factor: "1", offset: 0 };
}

export const isMetric = (value: number | MetricRef | null | undefined): value is MetricRef => typeof value === "object" && value !== null;

export function toDraft(condition: Condition): DraftCondition {
  const draft = { ...newDraft(), metric: condition.metric, window: condition.window ?? null, op: condition.op };
  const { value, value2 } = condition;
  if (isMetric(value2) || (isMetric(value) && condition.op === "between")) return { ...draft, fixed: condition };
  if (isMetric(value)) {
    return { ...draft, than: "metric", other: value.metric, otherWindow: value.window ?? null, factor: String(value.factor ?? 1), offset: value.offset ?? 0 };
  }
  return { ...draft, value: String(value), value2: value2 == null ? "" : String(value2) };
}

const number = (text: string): number | null => (text.trim() === "" || !Number.isFinite(Number(text)) ? null : Number(text));

/** A metric name with the window it needs: its own if it has it, else its first (none: null). */
function windowOf(metric: string, window: Window | null): Window | null {
  const windows = METRIC_BY_NAME.get(metric)?.windows ?? [];
  return windows.length > 0 ? (window && windows.includes(window) ? window : windows[0]) : null;
}

/** The condition to send, or null while a needed number is missing. */
export function fromDraft(draft: DraftCondition): Condition | null {
  if (draft.fixed) return draft.fixed;
  const window = windowOf(draft.metric, draft.window);
  if (draft.than === "metric" && draft.op !== "between") {
    const factor = number(draft.factor);
    if (factor === null) return null;
    const other: MetricRef = { metric: draft.other, window: windowOf(draft.other, draft.otherWindow), factor };
    if (draft.offset !== 0) other.offset = draft.offset;
    return { metric: draft.metric, window, op: draft.op, value: other, value2: null };
  }
  const value = number(draft.value);
  const value2 = number(draft.value2);
  if (value === null || (draft.op === "between" && value2 === null)) return null;
  return { metric: draft.metric, window, op: draft.op, value, value2: draft.op === "between" ? value2 : null };
}

/** A draft moved to another metric keeps a window that metric has, else its first. */
export function withMetric(draft: DraftCondition, metric: string): DraftCondition {
  return { ...draft, metric, window: windowOf(metric, draft.window) };
}

/** A draft compared with another metric keeps a window that metric has, else its first. */
export function withOther(draft: DraftCondition, other: string): DraftCondition {
  return { ...draft, other, otherWindow: windowOf(other, draft.otherWindow ?? draft.window) };
}

/** A draft with another comparison: between takes numbers only (the builder's limit, not the API's). */
export function withOp(draft: DraftCondition, op: ConditionOp): DraftCondition {
  return { ...draft, op, than: op === "between" ? "number" : draft.than };
}

function label(metric: string, window: Window | null | undefined): string {
  return `${METRIC_BY_NAME.get(metric)?.label ?? metric}${window ? ` ${window}` : ""}`;
}

function side(value: number | MetricRef): string {
  if (!isMetric(value)) return String(value);
  const factor = value.factor ?? 1;
  const offset = value.offset ?? 0;
  return `${label(value.metric, value.window)}${factor !== 1 ? ` × ${factor}` : ""}${offset ? ` ${offset > 0 ? "+" : "−"} ${Math.abs(offset)}` : ""}`;
}

/** A condition as a trader reads it: "Change % 5m > Change % 1h × 0.0833". */
export function describeCondition(condition: Condition): string {
  const upper = condition.op === "between" && condition.value2 != null ? ` and ${side(condition.value2)}` : "";
  return `${label(condition.metric, condition.window)} ${condition.op} ${side(condition.value)}${upper}`;
}
