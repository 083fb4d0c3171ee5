// A perpetual's open interest, funding and liquidations as the API sends them
// (GET /api/v1/perps/..., live `open_interest`, `funding`, `liquidation`), kept per bar of
// the chart so the panes and markers sit on the candles' time scale. Decimals stay strings.
import { decimalsOf, fixed } from "./axis";
import { INTERVAL_MS, type Interval } from "./candles";

/** One bar's open interest: contracts (base asset) and their value in the quote asset. */
export interface OpenInterestPoint {
  time_ms: number;
  open_interest: string;
  open_interest_value: string | null;
}

export interface OpenInterestSeries {
  points: OpenInterestPoint[];
}

export interface FundingSeries {
  settled: { funding_time_ms: number; funding_rate: string }[];
  estimates: { time_ms: number; funding_rate: string }[];
  current: { time_ms: number; funding_rate: string | null; next_funding_time_ms: number | null } | null;
}

/** One liquidation order: SELL liquidated a long, BUY a short. */
export interface Liquidation {
  time_ms: number;
  side: "BUY" | "SELL";
  quote_volume: string;
}

export interface LiquidationSeries {
  liquidations: Liquidation[];
}

/** What the stream leaves out, said wherever liquidations are shown. */
export const UNDERCOUNT =
  "Binance publishes at most one liquidation per symbol per second, so these undercount the true liquidations.";

/** A bar's funding: the estimate published last in it, or the rate settled in it. */
export interface FundingPoint {
  rate: string;
  settled: boolean;
}

/** A bar's liquidations, in quote volume, and how many orders were seen. */
export interface LiquidationSums {
  long: number;
  short: number;
  longCount: number;
  shortCount: number;
}

/** What the legend shows of one bar. */
export interface PerpValues {
  openInterest?: OpenInterestPoint;
  funding?: FundingPoint;
  liquidations?: LiquidationSums;
}

/** The open time of the bar of `interval` holding the instant `timeMs`. */
export function barOf(timeMs: number, interval: Interval): number {
  const ms = INTERVAL_MS[interval];
  return Math.floor(timeMs / ms) * ms;
}

/** A funding rate (a fraction) as a percentage with four decimals: "0.0100%", "-0.0075%". */
export function formatFunding(rate: string | number): string {
  const pct = Number(rate) * 100;
  const text = pct.toFixed(4);
  return text === "-0.0000" ? "0.0000%" : `${text}%`;
}

/** A marker's size (1 to 3) for a bar's liquidated quote volume: one step per ×10 above 10K. */
export function markerSize(quoteVolume: number): number {
  if (quoteVolume <= 10_000) return 1;
  return Math.min(3, 1 + Math.log10(quoteVolume / 10_000));
}

/** A perpetual's data per bar of one chart, from history and live. */
export class PerpBook {
  readonly openInterest = new Map<number, OpenInterestPoint>();
  readonly funding = new Map<number, FundingPoint>();
  readonly liquidations = new Map<number, LiquidationSums>();
  private readonly seen = new Set<string>();
  /** Digits after the point of the contracts, the same for every bar shown. */
  contractDigits = 0;

  constructor(private readonly interval: Interval) {}

  /** A bar's open interest: the latest sample in it wins. */
  addOpenInterest(point: OpenInterestPoint): void {
    const bar = barOf(point.time_ms, this.interval);
    this.openInterest.set(bar, { ...point, time_ms: bar });
    this.contractDigits = Math.min(8, Math.max(this.contractDigits, decimalsOf(point.open_interest)));
  }

  /** A bar's funding estimate; a rate settled in the bar stands over any estimate. */
  addEstimate(timeMs: number, rate: string | null): void {
    if (rate === null) return;
    const bar = barOf(timeMs, this.interval);
    if (this.funding.get(bar)?.settled) return;
    this.funding.set(bar, { rate, settled: false });
  }

  addSettled(fundingTimeMs: number, rate: string): void {
    this.funding.set(barOf(fundingTimeMs, this.interval), { rate, settled: true });
  }

  /** Count a liquidation once, however often history and live both bring it. */
  addLiquidation(liquidation: Liquidation): void {
    const id = `${liquidation.time_ms}:${liquidation.side}`;
    if (this.seen.has(id)) return;
    this.seen.add(id);
    const bar = barOf(liquidation.time_ms, this.interval);
    const sums = this.liquidations.get(bar) ?? { long: 0, short: 0, longCount: 0, shortCount: 0 };
    const volume = Number(liquidation.quote_volume);
    if (liquidation.side === "SELL") {
      sums.long += volume;
      sums.longCount += 1;
    } else {
      sums.short += volume;
      sums.shortCount += 1;
    }
    this.liquidations.set(bar, sums);
  }

  /** Take a page of each history. */
  addHistory(oi: OpenInterestSeries, funding: FundingSeries, liquidations: LiquidationSeries): void {
    oi.points.forEach((point) => this.addOpenInterest(point));
    funding.estimates.forEach((e) => this.addEstimate(e.time_ms, e.funding_rate));
    if (funding.current) this.addEstimate(funding.current.time_ms, funding.current.funding_rate);
    funding.settled.forEach((s) => this.addSettled(s.funding_time_ms, s.funding_rate));
    liquidations.liquidations.forEach((l) => this.addLiquidation(l));
  }

  /** What the legend shows of the bar opening at `openTime`. */
  at(openTime: number): PerpValues {
    return {
      openInterest: this.openInterest.get(openTime),
      funding: this.funding.get(openTime),
      liquidations: this.liquidations.get(openTime),
    };
  }

  /** The latest bar with an open interest or a funding rate, at or before `openTime`. */
  latestAt(openTime: number): PerpValues {
    return {
      openInterest: latest(this.openInterest, openTime),
      funding: latest(this.funding, openTime),
      liquidations: this.liquidations.get(openTime),
    };
  }

  /** The contracts of a point with the book's digits. */
  contracts(point: OpenInterestPoint): string {
    return fixed(point.open_interest, this.contractDigits);
  }
}

function latest<T>(map: Map<number, T>, at: number): T | undefined {
  let best: number | undefined;
  for (const time of map.keys()) if (time <= at && (best === undefined || time > best)) best = time;
  return best === undefined ? undefined : map.get(best);
}
