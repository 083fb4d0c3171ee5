// What the board tells the status line: how far its warm-up is (null: no board shown).
import { useSyncExternalStore } from "react";
import type { WarmupSummary } from "../board/warmup";

export interface BoardWarmup {
  summary: WarmupSummary;
  /** The board's exchange time the summary is as of. */
  nowMs: number;
}

let current: BoardWarmup | null = null;
const listeners = new Set<() => void>();

/** Set by the board at each update, null when it goes; listeners hear only real changes. */
export function publishWarmup(next: BoardWarmup | null): void {
  const same =
    next === current ||
    (next !== null && current !== null && JSON.stringify(next.summary) === JSON.stringify(current.summary) && Math.floor(next.nowMs / 1000) === Math.floor(current.nowMs / 1000));
  if (same) return;
  current = next;
  for (const listener of listeners) listener();
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function useBoardWarmup(): BoardWarmup | null {
  return useSyncExternalStore(subscribe, () => current);
}
