// An account's equity over time: the curve GET …/equity gives (from paper_ledger), with
// the live equity appended as the account's updates come.
import { ColorType, createChart, LineSeries, type IChartApi, type ISeriesApi, type UTCTimestamp } from "lightweight-charts";
import { useEffect, useRef, useState } from "react";
import { failure } from "../chart/useCandles";
import { getEquity, type AccountView } from "./api";
import { equityPoints } from "./orders";

export function EquityChart({ account }: { account: AccountView }) {
  const box = useRef<HTMLDivElement>(null);
  const series = useRef<ISeriesApi<"Line"> | null>(null);
  const lastTime = useRef(0);
  const [state, setState] = useState<"loading" | "ready" | "empty" | string>("loading");
  const id = account.account_id;

  useEffect(() => {
    const chart: IChartApi = createChart(box.current!, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: "transparent" }, textColor: "#8b98a5", fontSize: 11, attributionLogo: false },
      grid: { vertLines: { color: "#161c23" }, horzLines: { color: "#161c23" } },
      rightPriceScale: { borderColor: "#222a33" },
      timeScale: { borderColor: "#222a33", timeVisible: true, secondsVisible: false },
    });
    const line = chart.addSeries(LineSeries, { color: "#3d8bfd", lineWidth: 2, priceFormat: { type: "price", precision: 2, minMove: 0.01 } });
    series.current = line;
    lastTime.current = 0;
    setState("loading");
    const abort = new AbortController();
    getEquity(id, {}, abort.signal).then(
      (history) => {
        const points = equityPoints(history);
        line.setData(points);
        lastTime.current = points.at(-1)?.time ?? 0;
        chart.timeScale().fitContent();
        setState(points.length > 0 ? "ready" : "empty");
      },
      (reason: unknown) => {
        if (!abort.signal.aborted) setState(failure(reason, "Cannot load the equity curve"));
      },
    );
    return () => {
      abort.abort();
      series.current = null;
      chart.remove();
    };
  }, [id]);

  // The live equity extends the curve (never rewrites a second already drawn from history).
  useEffect(() => {
    const time = Math.floor(account.time_us / 1_000_000);
    if (!series.current || state === "loading" || time < lastTime.current || time === 0) return;
    series.current.update({ time: time as UTCTimestamp, value: Number(account.equity) });
    lastTime.current = time;
    if (state === "empty") setState("ready");
  }, [account.time_us, account.equity, state]);

  return (
    <div className="equity-chart" data-testid="equity-chart" data-state={state === "ready" || state === "empty" || state === "loading" ? state : "error"}>
      <div className="equity-canvas" ref={box} />
      {state === "loading" && <p className="equity-note">Loading the equity curve…</p>}
      {state === "empty" && <p className="equity-note">No equity recorded yet.</p>}
      {state !== "ready" && state !== "empty" && state !== "loading" && (
        <p className="equity-note error-text" role="alert">
          {state}
        </p>
      )}
    </div>
  );
}
