// Feeds a perpetual's chart its open interest, funding and liquidations: the latest bars
// of each history, then what the live `perps` channel brings.
import { useEffect, useState } from "react";
import { api } from "../api/client";
import { follow } from "../live/follow";
import type { LiveSocket, ServerMessage } from "../live/socket";
import { parseKey } from "./candles";
import type { ChartView } from "./chartView";
import type { FundingSeries, Liquidation, LiquidationSeries, OpenInterestPoint, OpenInterestSeries } from "./perps";
import { failure } from "./useCandles";
import { useReopened } from "./useReopened";

/** Bars of each history (the API allows 1,000). */
const PAGE = 1_000;

/** Apply one live message of the `perps` channel to the chart's book; whether it was one. */
function applyLive(view: ChartView, message: ServerMessage): boolean {
  const book = view.perps!;
  if (message.type === "open_interest") {
    book.addOpenInterest(message as unknown as OpenInterestPoint);
  } else if (message.type === "funding") {
    const rate = message.funding_rate as string | null;
    if (message.settled) book.addSettled(message.time_ms as number, rate as string);
    else book.addEstimate(message.time_ms as number, rate);
  } else if (message.type === "liquidation") {
    book.addLiquidation(message as unknown as Liquidation);
  } else {
    return false;
  }
  return true;
}

/**
 * Load and follow the perpetual's data of `view` (nothing for a spot chart); again after
 * the socket reconnects. Returns why it cannot be shown, or null.
 *
 * Live messages that arrive before the history are kept and applied after it, as the
 * candles' are.
 */
export function usePerps(view: ChartView | null, live: LiveSocket): string | null {
  const [error, setError] = useState<string | null>(null);
  const reopened = useReopened(live);

  useEffect(() => {
    setError(null);
    if (!view?.perps) return;
    const ref = parseKey(view.symbolKey);
    const query = { ...ref, interval: view.interval, limit: PAGE };
    const get = <T>(what: string, signal: AbortSignal) => api<T>(`/api/v1/perps/${what}`, { query, signal });
    return follow(live, "perps", { ...ref }, {
      load: (signal) =>
        Promise.all([
          get<OpenInterestSeries>("open_interest", signal),
          get<FundingSeries>("funding", signal),
          get<LiquidationSeries>("liquidations", signal),
        ]),
      history: ([oi, funding, liquidations]) => {
        view.perps!.addHistory(oi, funding, liquidations);
        view.perpsChanged();
      },
      message: (message) => {
        if (applyLive(view, message)) view.perpsChanged();
      },
      refused: setError,
      failed: (reason) => setError(failure(reason, "Cannot load open interest and funding")),
    });
  }, [view, live, reopened]);

  return error;
}
