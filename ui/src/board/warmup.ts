// When the board's dashes become values: each metric's history need (GET /api/v1/scan/columns)
// against the history each row has (`history_1s_from_ms`, `history_1m_from_ms`).
import type { RankRow } from "../session/types";

/** How much unbroken history of `resolution` candles a metric reads before it has a value. */
export interface Warmup {
  resolution: "1s" | "1m";
  history_ms: number;
}

/** GET /api/v1/scan/columns. */
export interface ScanColumns {
  columns: { name: string; warmup: Warmup | null }[];
}

export type Warmups = ReadonlyMap<string, Warmup>;

export function warmupsOf(answer: ScanColumns): Warmups {
  return new Map(answer.columns.flatMap((column) => (column.warmup ? [[column.name, column.warmup] as const] : [])));
}

const valueOf = (row: RankRow, field: string) => (row as unknown as Record<string, unknown>)[field];

/**
 * How long (ms, from `nowMs` in exchange time) until `field` of `row` has a value: null
 * when it has one, when its window is already covered, or when the row does not say
 * where its history begins (a dash that will not fill by waiting).
 */
export function waitMs(row: RankRow, field: string, warmups: Warmups, nowMs: number): number | null {
  if (valueOf(row, field) !== null) return null;
  const need = warmups.get(field);
  if (!need) return null;
  const from = need.resolution === "1s" ? row.history_1s_from_ms : row.history_1m_from_ms;
  if (from === null || from === undefined) return null;
  const left = from + need.history_ms - nowMs;
  return left > 0 ? left : null;
}

/** A wait as a countdown: `3:12` under an hour, `5h07m` above, whole seconds rounded up. */
export function formatWait(ms: number): string {
  const seconds = Math.ceil(ms / 1000);
  if (seconds < 3600) return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  const minutes = Math.ceil(seconds / 60);
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

/** The board as a whole: how many rows still wait for history, and until when. */
export interface WarmupSummary {
  rows: number;
  /** Rows with a metric still waiting for its window (or, saying nothing of their history, without a 24h volume yet). */
  warming: number;
  /** Exchange time the last known wait ends; null when none is known. */
  doneAtMs: number | null;
}

/**
 * Summarise the rows' warm-up. A row that says nothing of its history (both history
 * fields null) counts as warming while its 24h quote volume, the last column to fill, is
 * still null.
 */
export function summarise(rows: Iterable<RankRow>, warmups: Warmups, nowMs: number): WarmupSummary {
  let count = 0;
  let warming = 0;
  let doneAtMs: number | null = null;
  for (const row of rows) {
    count++;
    let waiting = false;
    if (row.history_1s_from_ms == null && row.history_1m_from_ms == null) {
      waiting = row.quote_volume_24h === null;
    } else {
      for (const field of warmups.keys()) {
        const wait = waitMs(row, field, warmups, nowMs);
        if (wait === null) continue;
        waiting = true;
        doneAtMs = Math.max(doneAtMs ?? 0, nowMs + wait);
      }
    }
    if (waiting) warming++;
  }
  return { rows: count, warming, doneAtMs };
}

/**
 * Complete once all but 1 % of the rows are warm: a symbol listed an hour ago waits a day
 * for its 24h columns, and must not hold the whole board "warming up" until then.
 */
export function isComplete(summary: WarmupSummary): boolean {
  return summary.rows > 0 && summary.warming <= Math.floor(summary.rows / 100);
}

/** The sort of a user who chose none: 24h quote volume once the board has it, else trades per minute (there from the first minute). */
export function defaultSort(complete: boolean): "quote_volume_24h" | "trades_per_min" {
  return complete ? "quote_volume_24h" : "trades_per_min";
}
