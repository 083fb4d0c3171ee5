// Marks a chart's symbol's signals on it: the latest from history, then each live one.
import { useEffect, useState } from "react";
import { api } from "../api/client";
import type { LiveSocket } from "../live/socket";
import { parseKey, type Signal } from "./candles";
import type { ChartView } from "./chartView";
import { failure } from "./useCandles";
import { useReopened } from "./useReopened";

/** Signals of the symbol loaded from history, newest first (the API allows 1,000). */
const HISTORY = 1_000;

/**
 * Feed `view` its symbol's signals while `enabled` (the plan has `signals`); returns why
 * they cannot be shown, or null.
 */
export function useSignals(view: ChartView | null, live: LiveSocket, enabled: boolean): string | null {
  const [error, setError] = useState<string | null>(null);
  const reopened = useReopened(live);

  useEffect(() => {
    setError(null);
    if (!view || !enabled) return;
    const abort = new AbortController();
    const sub = live.subscribe("signals", { symbol: view.symbolKey }, (message) => {
      if (message.type === "signal") view.addSignals([message as unknown as Signal]);
      else if (message.type === "error") setError(String(message.message));
    });
    api<{ signals: Signal[] }>("/api/v1/signals", {
      query: { ...parseKey(view.symbolKey), limit: HISTORY },
      signal: abort.signal,
    }).then(
      (page) => view.addSignals(page.signals),
      (reason: unknown) => {
        if (!abort.signal.aborted) setError(failure(reason, "Cannot load signals"));
      },
    );
    return () => {
      abort.abort();
      sub.close();
    };
  }, [view, live, enabled, reopened]);

  return error;
}
