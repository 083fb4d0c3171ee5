// The filter builder's vocabulary: the metrics a condition may test and their windows.
import type { Condition, ConditionOp, Window } from "../session/types";

export interface Metric {
  /** The Condition `metric` the API accepts. */
  name: string;
  label: string;
  /** Windows it comes in (empty: a single column). */
  windows: Window[];
}

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
];

export const METRIC_BY_NAME = new Map(METRICS.map((metric) => [metric.name, metric]));

export const OPS: ConditionOp[] = [">=", ">", "<=", "<", "between"];

/** A condition as typed: numbers still text, so a half-typed "-0." is not lost. */
export interface DraftCondition {
  metric: string;
  window: Window | null;
  op: ConditionOp;
  value: string;
  value2: string;
}

export function newDraft(): DraftCondition {
  return { metric: "change_pct", window: "5m", op: ">=", value: "", value2: "" };
}

export function toDraft(condition: Condition): DraftCondition {
  return {
    metric: condition.metric,
    window: condition.window ?? null,
    op: condition.op,
    value: String(condition.value),
    value2: condition.value2 == null ? "" : String(condition.value2),
  };
}

const number = (text: string): number | null => (text.trim() === "" || !Number.isFinite(Number(text)) ? null : Number(text));

/** The condition to send, or null while a needed number is missing. */
export function fromDraft(draft: DraftCondition): Condition | null {
  const value = number(draft.value);
  const value2 = number(draft.value2);
  if (value === null || (draft.op === "between" && value2 === null)) return null;
  const windows = METRIC_BY_NAME.get(draft.metric)?.windows ?? [];
  return {
    metric: draft.metric,
    window: windows.length > 0 ? (draft.window ?? windows[0]) : null,
    op: draft.op,
    value,
    value2: draft.op === "between" ? value2 : null,
  };
}

/** A draft moved to another metric keeps a window that metric has, else its first. */
export function withMetric(draft: DraftCondition, metric: string): DraftCondition {
  const windows = METRIC_BY_NAME.get(metric)?.windows ?? [];
  const window = draft.window && windows.includes(draft.window) ? draft.window : (windows[0] ?? null);
  return { ...draft, metric, window };
}
