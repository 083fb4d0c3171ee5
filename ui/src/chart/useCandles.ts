// Feeds a chart its candles: the latest page of history, older pages as the user scrolls
// left, and the live forming bar, its close and later revisions.
import { useEffect, useState } from "react";
import { api, ApiError } from "../api/client";
import type { LiveSocket, ServerMessage } from "../live/socket";
import { parseKey, type Candle, type CandlePage } from "./candles";
import type { ChartView } from "./chartView";
import { useReopened } from "./useReopened";

/** Candles per history page (the API allows 1,000). */
const PAGE = 500;

export type CandlesStatus =
  | { state: "loading" }
  | { state: "ready" }
  | { state: "empty" }
  | { state: "error"; message: string };

function isBar(message: ServerMessage): boolean {
  return message.type === "candle" || message.type === "close";
}

/** What went wrong, as the API put it. */
export function failure(error: unknown, fallback: string): string {
  return error instanceof ApiError ? error.message : fallback;
}

/**
 * Load and follow the candles of `view`'s symbol and interval; again after the socket
 * reconnects (bars that closed meanwhile were never sent).
 *
 * The live subscription starts before the history request, and bars that arrive first
 * wait for it, so no bar closes unseen between the two.
 */
export function useCandles(view: ChartView | null, live: LiveSocket): CandlesStatus {
  const [status, setStatus] = useState<CandlesStatus>({ state: "loading" });
  const reopened = useReopened(live);

  useEffect(() => {
    if (!view) return;
    const ref = parseKey(view.symbolKey);
    const query = { ...ref, interval: view.interval, limit: PAGE };
    const abort = new AbortController();
    let waiting: ServerMessage[] | null = [];
    let loadingOlder = false;
    let exhausted = false;
    setStatus({ state: "loading" });

    const apply = (message: ServerMessage) =>
      view.applyLive(message as unknown as Candle, message.type === "close");
    const sub = live.subscribe("candles", { ...ref, interval: view.interval }, (message) => {
      if (isBar(message)) {
        if (waiting) {
          waiting.push(message);
          return;
        }
        const empty = !view.book.last();
        apply(message);
        if (empty) setStatus({ state: "ready" });
      } else if (message.type === "error") {
        setStatus({ state: "error", message: String(message.message) });
      }
    });

    api<CandlePage>("/api/v1/candles", { query, signal: abort.signal }).then(
      (page) => {
        view.setHistory(page.candles);
        exhausted = page.candles.length < PAGE;
        const early = waiting ?? [];
        waiting = null;
        early.forEach(apply);
        setStatus(view.book.last() ? { state: "ready" } : { state: "empty" });
      },
      (error: unknown) => {
        if (!abort.signal.aborted) setStatus({ state: "error", message: failure(error, "Cannot load candles") });
      },
    );

    view.needOlder = () => {
      const first = view.book.candles[0];
      if (waiting || loadingOlder || exhausted || !first) return;
      loadingOlder = true;
      api<CandlePage>("/api/v1/candles", { query: { ...query, end: first.open_time }, signal: abort.signal })
        .then((page) => {
          exhausted = page.candles.length < PAGE || view.prepend(page.candles) === 0;
        })
        // A failed page is asked for again on the next scroll; the chart keeps what it has.
        .catch(() => undefined)
        .finally(() => {
          loadingOlder = false;
        });
    };

    return () => {
      abort.abort();
      sub.close();
      view.needOlder = undefined;
    };
  }, [view, live, reopened]);

  return status;
}
