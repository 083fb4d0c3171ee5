// The chart of one symbol beside the board: header (symbol, intervals, last price, close),
// the bar under the crosshair, and the chart with its loading, empty and error states.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Locked } from "../account/Locked";
import { useSession } from "../session/SessionProvider";
import { formatPct, formatVolume } from "../board/format";
import { fixed } from "./axis";
import { changePct, INTERVALS, parseKey, type Candle, type Interval } from "./candles";
import { ChartView } from "./chartView";
import { formatFunding, UNDERCOUNT, type PerpBook } from "./perps";
import { failure, useCandles, type CandlesStatus } from "./useCandles";
import { usePerps } from "./usePerps";
import { useSignals } from "./useSignals";
import { ChartLineList } from "../trading/ChartLineList";
import { amendOrder, type Market } from "../trading/api";
import { tradeLines, type TradeLine } from "../trading/lines";
import { OrderTicket } from "../trading/OrderTicket";
import { TradingTables } from "../trading/TradingTables";
import { useChartLines } from "../trading/useChartLines";
import { usePaper } from "../trading/usePaper";
import { useSymbolFilters } from "../trading/useSymbolFilters";
import "./chart.css";
import "../trading/trading.css";

const MARKET_LABEL: Record<string, string> = { spot: "Spot", usdm: "Perp" };

/** Esc closes the chart, unless it is meant for a field being edited. */
function closesOnEscape(event: KeyboardEvent): boolean {
  if (event.key !== "Escape" || event.defaultPrevented) return false;
  const target = event.target as HTMLElement | null;
  return !target?.closest("input, textarea, select, [contenteditable='true']");
}

function direction(candle: Candle | undefined): string {
  if (!candle) return "";
  return Number(candle.close) >= Number(candle.open) ? "up" : "down";
}

function Legend({ candle, revised, precision }: { candle: Candle | undefined; revised: boolean; precision: number }) {
  if (!candle) return <div className="chart-legend" data-testid="chart-legend" />;
  const fields: [string, string][] = [
    ["O", fixed(candle.open, precision)],
    ["H", fixed(candle.high, precision)],
    ["L", fixed(candle.low, precision)],
    ["C", fixed(candle.close, precision)],
    ["Vol", formatVolume(Number(candle.quote_volume))],
  ];
  return (
    <div className={`chart-legend ${direction(candle)}`} data-testid="chart-legend">
      <time className="chart-legend-time" dateTime={new Date(candle.open_time).toISOString()}>
        {new Date(candle.open_time).toISOString().slice(0, 19).replace("T", " ")} UTC
      </time>
      {fields.map(([label, value]) => (
        <span key={label} className="chart-legend-field">
          <span className="chart-legend-label">{label}</span>
          <span className="chart-legend-value">{value}</span>
        </span>
      ))}
      <span className="chart-legend-value">{formatPct(changePct(candle))}</span>
      {revised && (
        <span className="chart-revised" title="A late trade changed this bar after it closed">
          <span className="swatch-revised" /> revised
        </span>
      )}
    </div>
  );
}

/**
 * A perpetual's values at the bar under the crosshair (or the last): open interest in the
 * quote asset and in contracts, the funding rate, and the bar's liquidations, which the
 * exchange samples (said on the row, and in full in its tooltip).
 */
function PerpLegend({ book, openTime, error }: { book: PerpBook; openTime: number | undefined; error: string | null }) {
  const { openInterest, funding, liquidations } = book.latestAt(openTime ?? Number.MAX_SAFE_INTEGER);
  const value = openInterest?.open_interest_value;
  return (
    <div className="chart-perps" data-testid="chart-perps">
      <span className="chart-legend-field" data-testid="perps-oi">
        <span className="chart-legend-label swatch-oi">OI</span>
        <span className="chart-legend-value">{value ? formatVolume(Number(value)) : openInterest ? "" : "–"}</span>
        {openInterest && <span className="chart-perps-contracts">({book.contracts(openInterest)})</span>}
      </span>
      <span className="chart-legend-field" data-testid="perps-funding">
        <span className="chart-legend-label">Funding</span>
        <span className={`chart-legend-value ${funding ? (Number(funding.rate) >= 0 ? "up" : "down") : ""}`}>
          {funding ? formatFunding(funding.rate) : "–"}
        </span>
        {funding?.settled && <span className="chart-perps-settled">settled</span>}
      </span>
      <span className="chart-legend-field" data-testid="perps-liquidations" title={UNDERCOUNT}>
        <span className="chart-legend-label">Liq</span>
        <span className="chart-legend-value swatch-long">L {liquidations?.longCount ? formatVolume(liquidations.long) : "–"}</span>
        <span className="chart-legend-value swatch-short">S {liquidations?.shortCount ? formatVolume(liquidations.short) : "–"}</span>
        <span className="chart-perps-note" data-testid="perps-undercount">
          sampled ≤1/s
        </span>
      </span>
      {error && <span className="chart-signals-error">{error}</span>}
    </div>
  );
}

interface OverlayProps {
  status: CandlesStatus;
  symbol: string;
  /** Bars on screen: a reload (after a reconnect) keeps showing them instead of "loading". */
  hasBars: boolean;
  onRetry(): void;
}

function Overlay({ status, symbol, hasBars, onRetry }: OverlayProps) {
  if (status.state === "loading") return hasBars ? null : <div className="chart-overlay">Loading candles…</div>;
  if (status.state === "empty") return <div className="chart-overlay">No candles for {symbol} at this interval yet.</div>;
  if (status.state === "error") {
    return (
      <div className="chart-overlay chart-overlay-error" role="alert">
        <span>{status.message}</span>
        <button type="button" onClick={onRetry}>
          Retry
        </button>
      </div>
    );
  }
  return null;
}

/**
 * The chart of `symbolKey` (`exchange:market:symbol`); the board stays live beside it.
 * One chart per symbol and interval: changing either removes it and starts a new one.
 * `asView`: on a narrow screen the chart is a view of its own, left by a back button.
 */
export function ChartPanel({ symbolKey, onClose, asView = false }: { symbolKey: string; onClose(): void; asView?: boolean }) {
  const { live, has } = useSession();
  const [chosen, setChosen] = useState<Interval>("1m");
  // A plan without 1s candles (say, after logging out) falls back to 1m.
  const interval: Interval = chosen === "1s" && !has("candles_1s") ? "1m" : chosen;
  const [attempt, setAttempt] = useState(0);
  const container = useRef<HTMLDivElement>(null);
  const [canvas, setCanvas] = useState<HTMLDivElement | null>(null);
  const [view, setView] = useState<ChartView | null>(null);
  const [last, setLast] = useState<Candle>();
  const [hover, setHover] = useState<Candle>();
  // Bumped when the perpetual's data changes: the legend reads it from the view.
  const [, setPerpsVersion] = useState(0);

  useEffect(() => {
    setCanvas(container.current);
    const chart = new ChartView(container.current!, symbolKey, interval, {
      onLast: setLast,
      onHover: setHover,
      onPerps: () => setPerpsVersion((n) => n + 1),
    });
    setView(chart);
    return () => {
      chart.remove();
      setView(null);
      setLast(undefined);
      setHover(undefined);
    };
  }, [symbolKey, interval, attempt]);

  const status = useCandles(view, live);
  const signalsEnabled = has("signals");
  const signalsError = useSignals(view, live, signalsEnabled);
  const perpsError = usePerps(view, live);

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (closesOnEscape(event)) onClose();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose]);

  const { exchange, market, symbol } = parseKey(symbolKey);
  const shown = hover ?? last;
  const precision = view?.precision ?? 2;

  // Paper trading on this symbol: the ticket, the account's lines on the chart, its tables.
  const paper = usePaper(market as Market, exchange);
  const filters = useSymbolFilters(exchange, market as Market, symbol);
  const lines = useMemo(() => tradeLines(paper.account, symbol), [paper.account, symbol]);
  const [lineError, setLineError] = useState<string | null>(null);
  const accountId = paper.account?.account_id;
  const { track } = paper;
  const amend = useCallback(
    async (line: TradeLine, price: string) => {
      if (!accountId || !line.amend) return;
      setLineError(null);
      try {
        track(await amendOrder(accountId, line.amend.clientOrderId, { [line.amend.field]: price }));
      } catch (failed) {
        setLineError(failure(failed, "The order could not be amended"));
        throw failed;
      }
    },
    [accountId, track],
  );
  const drag = useChartLines(view, canvas, lines, filters?.tick_size ?? null, amend);

  return (
    <section className="chart-panel trading" data-testid="chart" aria-label={`${symbol} chart`}>
      <header className="chart-header">
        {asView && (
          <button type="button" className="chart-back" data-testid="chart-back" onClick={onClose} aria-label="Back to the board (Esc)">
            ‹ Board
          </button>
        )}
        <h2 className="chart-symbol">
          {symbol}
          <span className="chart-market">
            {exchange} {MARKET_LABEL[market] ?? market}
          </span>
        </h2>
        <div className="chart-intervals" role="group" aria-label="Interval">
          {INTERVALS.map((i) => {
            const button = (
              <button
                key={i}
                type="button"
                className="chart-interval"
                data-testid={`chart-interval-${i}`}
                aria-pressed={i === interval}
                onClick={() => setChosen(i)}
              >
                {i}
              </button>
            );
            return i === "1s" ? (
              <Locked key={i} feature="candles_1s">
                {button}
              </Locked>
            ) : (
              button
            );
          })}
        </div>
        <span className={`chart-last ${direction(last)}`} data-testid="chart-last-close" aria-live="off">
          {last ? fixed(last.close, precision) : ""}
        </span>
        {!asView && (
          <button type="button" className="chart-close" data-testid="chart-close" onClick={onClose} aria-label="Close chart (Esc)">
            ×
          </button>
        )}
      </header>
      <div className="chart-subheader">
        <Legend candle={shown} revised={!!shown && !!view?.book.isRevised(shown.open_time)} precision={precision} />
        <div className="chart-signals">
          {signalsEnabled ? (
            signalsError && <span className="chart-signals-error">Signals: {signalsError}</span>
          ) : (
            <>
              <span className="chart-signals-label">Signals</span>
              <Locked feature="signals" />
            </>
          )}
        </div>
      </div>
      {view?.perps && <PerpLegend book={view.perps} openTime={shown?.open_time} error={perpsError} />}
      <div className="chart-body">
      <div className="chart-area">
        <div className="chart-canvas" ref={container} />
        <Overlay status={status} symbol={symbol} hasBars={!!last} onRetry={() => setAttempt((n) => n + 1)} />
        <ChartLineList lines={lines} drag={drag} error={lineError} tick={filters?.tick_size ?? null} amend={amend} />
        {/* The attribution notice of TradingView Lightweight Charts™ (Apache 2.0 NOTICE):
            Copyright (c) 2025 TradingView, Inc. https://www.tradingview.com/ */}
        <a
          className="chart-attribution"
          data-testid="chart-attribution"
          href="https://www.tradingview.com/"
          target="_blank"
          rel="noopener noreferrer"
        >
          TradingView Lightweight Charts™
        </a>
      </div>
      <OrderTicket paper={paper} market={market as Market} symbol={symbol} filters={filters} lastPrice={last?.close} />
      </div>
      <TradingTables paper={paper} />
    </section>
  );
}
