// One lightweight-charts chart: candlesticks, quote volume beneath, revised bars in their own
// colour and signals as markers; for a perpetual, open interest and funding in panes of
// their own under the candles and liquidations as markers. Imperative on purpose: live bars
// go to `series.update` without a React render of the whole series.
import {
  AreaSeries,
  CandlestickSeries,
  ColorType,
  createChart,
  createSeriesMarkers,
  CrosshairMode,
  HistogramSeries,
  type CandlestickData,
  type HistogramData,
  type IChartApi,
  type ISeriesApi,
  type ISeriesMarkersPluginApi,
  type LogicalRange,
  type MouseEventParams,
  type SeriesMarker,
  type Time,
  type UTCTimestamp,
} from "lightweight-charts";
import { crosshairLabel, decimalsOf, shortHistoryRange, tickLabel } from "./axis";
import { CandleBook, type Placement } from "./candleBook";
import { formatVolume } from "../board/format";
import { barTimeOf, INTERVAL_MS, parseKey, pricePrecision, type Candle, type Interval, type Signal } from "./candles";
import { markerSize, PerpBook } from "./perps";

const UP = "#26a69a";
const DOWN = "#ef5350";
const UP_VOLUME = "rgba(38, 166, 154, 0.45)";
const DOWN_VOLUME = "rgba(239, 83, 80, 0.45)";
/** Wick and border of a bar revised after it closed (chart.css .swatch-revised matches). */
const REVISED = "#f5a623";
/**
 * A perpetual's colours (chart.css's legend swatches match): open interest's line and
 * fill, funding's bars by sign (the settled rate's brighter), liquidated longs (forced
 * sells) and shorts (forced buys).
 */
const PERP = {
  oiLine: "#7aa2f7",
  oiFill: "rgba(122, 162, 247, 0.25)",
  oiFade: "rgba(122, 162, 247, 0.02)",
  fundingUp: "rgba(38, 166, 154, 0.7)",
  fundingDown: "rgba(239, 83, 80, 0.7)",
  settledUp: UP,
  settledDown: DOWN,
  longs: "#ff7043",
  shorts: "#4dd0e1",
} as const;
/** How tall the candles are against each perpetuals pane. */
const CANDLE_STRETCH = 4;
const GRID = "#161c23";
const AXIS = "#222a33";

/** Fewer bars than this left of the view asks for older history. */
const OLDER_MARGIN_BARS = 30;

export interface ChartViewEvents {
  /** The last bar changed: the header shows its close. */
  onLast(candle: Candle | undefined): void;
  /** The crosshair moved over a bar, or off the bars (undefined). */
  onHover(candle: Candle | undefined): void;
  /** A perpetual's open interest, funding or liquidations changed. */
  onPerps?(): void;
}

/** The panes of a perpetual: open interest and funding, sharing the candles' time scale. */
interface PerpPanes {
  book: PerpBook;
  openInterest: ISeriesApi<"Area">;
  funding: ISeriesApi<"Histogram">;
}

function seconds(ms: number): UTCTimestamp {
  return (ms / 1000) as UTCTimestamp;
}

function signalId(signal: Signal): string {
  return `${signal.name}:${signal.timeframe}:${signal.time_ms}`;
}

export class ChartView {
  readonly book: CandleBook;
  /** Set by whoever loads history: called when the user scrolls near the oldest bar. */
  needOlder: (() => void) | undefined;
  private readonly chart: IChartApi;
  private readonly candles: ISeriesApi<"Candlestick">;
  private readonly volume: ISeriesApi<"Histogram">;
  private readonly markers: ISeriesMarkersPluginApi<Time>;
  private readonly signals = new Map<string, Signal>();
  private readonly panes: PerpPanes | null = null;
  private digits = 2;
  private removed = false;

  /**
   * A chart is made for one symbol and interval (and removed when either changes), so
   * whoever feeds it reads both here and never feeds a chart the wrong candles.
   */
  constructor(
    container: HTMLElement,
    readonly symbolKey: string,
    readonly interval: Interval,
    private readonly events: ChartViewEvents,
  ) {
    this.book = new CandleBook(interval);
    const font = getComputedStyle(container).fontFamily;
    // autoSize follows the container with a ResizeObserver of the library's own.
    this.chart = createChart(container, {
      autoSize: true,
      layout: {
        background: { type: ColorType.Solid, color: "transparent" },
        textColor: "#8b98a5",
        fontFamily: font,
        fontSize: 11,
        // The library's logo brings an inline <style>, which the site's policy refuses
        // (style-src 'self'): ChartPanel links to TradingView instead, as its licence asks.
        attributionLogo: false,
        // A perpetual's panes (open interest, funding) are set off like the axes.
        panes: { separatorColor: AXIS },
      },
      grid: { vertLines: { color: GRID }, horzLines: { color: GRID } },
      crosshair: { mode: CrosshairMode.Normal },
      localization: { timeFormatter: (time: Time) => crosshairLabel(time as number, INTERVAL_MS[interval]) },
      rightPriceScale: { borderColor: AXIS, scaleMargins: { top: 0.08, bottom: 0.28 } },
      timeScale: {
        borderColor: AXIS,
        timeVisible: interval !== "1d",
        secondsVisible: interval === "1s",
        rightOffset: 4,
        tickMarkFormatter: (time: Time, type: number) => tickLabel(time as number, type, INTERVAL_MS[interval]),
      },
    });
    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: UP,
      downColor: DOWN,
      borderUpColor: UP,
      borderDownColor: DOWN,
      wickUpColor: UP,
      wickDownColor: DOWN,
    });
    this.volume = this.chart.addSeries(HistogramSeries, {
      priceFormat: { type: "volume" },
      priceScaleId: "volume",
      lastValueVisible: false,
      priceLineVisible: false,
    });
    this.chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    this.markers = createSeriesMarkers(this.candles, []);
    if (parseKey(symbolKey).market === "usdm") this.panes = this.addPerpPanes(interval);
    this.chart.subscribeCrosshairMove(this.onCrosshair);
    this.chart.timeScale().subscribeVisibleLogicalRangeChange(this.onRange);
  }

  /**
   * Digits after the point of this symbol's prices: enough for every price seen, the same
   * for every price shown (the legend, the axis, the last close).
   */
  get precision(): number {
    return this.digits;
  }

  /** The candles' series: lines at a price (a paper account's orders) are drawn on it. */
  get priceSeries(): ISeriesApi<"Candlestick"> {
    return this.candles;
  }

  /** Let the pointer pan and zoom the chart, or not (while it drags a line). */
  setScrollable(on: boolean): void {
    this.chart.applyOptions({ handleScroll: on, handleScale: on });
  }

  /** A perpetual's data per bar; null for a spot symbol (no panes). */
  get perps(): PerpBook | null {
    return this.panes?.book ?? null;
  }

  /** Draw the perpetual's panes and liquidation markers again after `perps` changed. */
  perpsChanged(): void {
    if (!this.panes) return;
    this.drawPerps();
    this.drawMarkers();
    this.events.onPerps?.();
  }

  /** Show a page of the latest history, replacing whatever was shown. */
  setHistory(candles: readonly Candle[]): void {
    this.book.reset(candles);
    this.setPrecision(pricePrecision(candles));
    this.redraw();
    this.fitShort();
  }

  /** Put older history in front (the view stays where it is); returns how many were new. */
  prepend(older: readonly Candle[]): number {
    const added = this.book.prepend(older);
    if (added > 0) this.redraw();
    return added;
  }

  /** A live `candle` (forming) or `close` (ended, or revised when its version is above 1). */
  applyLive(candle: Candle, closed: boolean): void {
    const before = this.book.last()?.open_time;
    const placement: Placement = this.book.apply(candle, closed);
    if (placement === "none") return;
    const digits = Math.max(decimalsOf(candle.open), decimalsOf(candle.high), decimalsOf(candle.low), decimalsOf(candle.close));
    if (digits > this.digits) this.setPrecision(Math.min(digits, 12));
    if (placement === "insert") {
      this.redraw();
      this.fitShort();
      return;
    }
    const historic = placement === "historic";
    this.candles.update(this.bar(candle), historic);
    this.volume.update(this.volumeBar(candle), historic);
    if (historic) return;
    if (candle.open_time !== before) this.fitShort();
    this.events.onLast(candle);
    // A new bar may be the one a signal or a perpetual's sample already received points at.
    if (candle.open_time !== before && this.panes) this.drawPerps();
    if (candle.open_time !== before && (this.signals.size > 0 || this.panes)) this.drawMarkers();
  }

  /** Add signals (history or live); each is marked on the bar that fired it. */
  addSignals(signals: readonly Signal[]): void {
    for (const signal of signals) this.signals.set(signalId(signal), signal);
    this.drawMarkers();
  }

  /** Whether `remove` was called: the chart and its series are gone. */
  get isRemoved(): boolean {
    return this.removed;
  }

  remove(): void {
    this.removed = true;
    this.needOlder = undefined;
    this.chart.unsubscribeCrosshairMove(this.onCrosshair);
    this.chart.timeScale().unsubscribeVisibleLogicalRangeChange(this.onRange);
    this.chart.remove();
  }

  private setPrecision(precision: number): void {
    this.digits = precision;
    this.candles.applyOptions({ priceFormat: { type: "price", precision, minMove: 10 ** -precision } });
  }

  /**
   * A short history at the usual bar spacing from the left edge: left to the library, a
   * few bars would sit squeezed against the right edge.
   */
  private fitShort(): void {
    const scale = this.chart.timeScale();
    const { barSpacing, rightOffset } = scale.options();
    const range = shortHistoryRange(this.book.candles.length, scale.width(), barSpacing, rightOffset);
    if (range) scale.setVisibleLogicalRange(range);
  }

  private redraw(): void {
    const all = this.book.candles;
    this.candles.setData(all.map((c) => this.bar(c)));
    this.volume.setData(all.map((c) => this.volumeBar(c)));
    if (this.panes) this.drawPerps();
    this.drawMarkers();
    this.events.onLast(this.book.last());
  }

  private bar(c: Candle): CandlestickData<Time> {
    const bar: CandlestickData<Time> = {
      time: seconds(c.open_time),
      open: Number(c.open),
      high: Number(c.high),
      low: Number(c.low),
      close: Number(c.close),
    };
    if (this.book.isRevised(c.open_time)) {
      bar.borderColor = REVISED;
      bar.wickColor = REVISED;
    }
    return bar;
  }

  private volumeBar(c: Candle): HistogramData<Time> {
    const up = Number(c.close) >= Number(c.open);
    return { time: seconds(c.open_time), value: Number(c.quote_volume), color: up ? UP_VOLUME : DOWN_VOLUME };
  }

  /** Markers for the signals whose bar is on the chart, in time order as the library needs. */
  private drawMarkers(): void {
    const markers: SeriesMarker<Time>[] = [];
    for (const [id, signal] of this.signals) {
      const openTime = barTimeOf(signal.time_ms, this.interval);
      if (!this.book.get(openTime)) continue;
      const up = signal.direction === "up";
      markers.push({
        id,
        time: seconds(openTime),
        position: up ? "belowBar" : "aboveBar",
        shape: up ? "arrowUp" : "arrowDown",
        color: up ? UP : DOWN,
        text: `${signal.name.replaceAll("_", " ")} ${signal.timeframe}`,
      });
    }
    if (this.panes) markers.push(...this.liquidationMarkers(this.panes.book));
    markers.sort((a, b) => (a.time as number) - (b.time as number));
    this.markers.setMarkers(markers);
  }

  /** One marker per side on each bar with liquidations, sized by the quote volume. */
  private liquidationMarkers(book: PerpBook): SeriesMarker<Time>[] {
    const markers: SeriesMarker<Time>[] = [];
    for (const [bar, sums] of book.liquidations) {
      if (!this.book.get(bar)) continue;
      const sides = [
        { side: "long", count: sums.longCount, volume: sums.long, position: "belowBar", color: PERP.longs },
        { side: "short", count: sums.shortCount, volume: sums.short, position: "aboveBar", color: PERP.shorts },
      ] as const;
      for (const { side, count, volume, position, color } of sides) {
        if (count === 0) continue;
        markers.push({
          id: `liq-${side}:${bar}`,
          time: seconds(bar),
          position,
          shape: "circle",
          color,
          size: markerSize(volume),
          text: `${side === "long" ? "L" : "S"} ${formatVolume(volume)}`,
        });
      }
    }
    return markers;
  }

  /**
   * The open-interest pane (an area, in the quote asset when the samples are valued, else
   * in contracts) and the funding pane (a bar per bar, coloured by sign, the settled rate
   * brighter), each under the candles.
   */
  private addPerpPanes(interval: Interval): PerpPanes {
    const openInterest = this.chart.addSeries(
      AreaSeries,
      {
        lineColor: PERP.oiLine,
        topColor: PERP.oiFill,
        bottomColor: PERP.oiFade,
        lineWidth: 2,
        priceFormat: { type: "volume" },
        priceLineVisible: false,
      },
      1,
    );
    const funding = this.chart.addSeries(
      HistogramSeries,
      {
        // Percent per funding interval: the axis reads 0.0100%, like the legend.
        priceFormat: { type: "custom", minMove: 0.0001, formatter: (pct: number) => `${pct.toFixed(4)}%` },
        priceLineVisible: false,
      },
      2,
    );
    const panes = this.chart.panes();
    panes[0].setStretchFactor(CANDLE_STRETCH);
    panes[1].setStretchFactor(1);
    panes[2].setStretchFactor(1);
    return { book: new PerpBook(interval), openInterest, funding };
  }

  /** The panes' points of the bars the chart holds (others would add times of their own). */
  private drawPerps(): void {
    const { book, openInterest, funding } = this.panes!;
    const times = (map: Map<number, unknown>) =>
      [...map.keys()].filter((time) => this.book.get(time)).sort((a, b) => a - b);
    const valued = [...book.openInterest.values()].some((p) => p.open_interest_value !== null);
    openInterest.setData(
      times(book.openInterest).map((time) => {
        const point = book.openInterest.get(time)!;
        const value = valued ? point.open_interest_value : point.open_interest;
        return value === null ? { time: seconds(time) } : { time: seconds(time), value: Number(value) };
      }),
    );
    funding.setData(
      times(book.funding).map((time) => {
        const { rate, settled } = book.funding.get(time)!;
        const pct = Number(rate) * 100;
        const color = settled ? (pct >= 0 ? PERP.settledUp : PERP.settledDown) : pct >= 0 ? PERP.fundingUp : PERP.fundingDown;
        return { time: seconds(time), value: pct, color };
      }),
    );
  }

  private readonly onCrosshair = (param: MouseEventParams<Time>): void => {
    const time = param.time as number | undefined;
    this.events.onHover(time === undefined ? undefined : this.book.get(time * 1000));
  };

  private readonly onRange = (range: LogicalRange | null): void => {
    if (range && range.from < OLDER_MARGIN_BARS) this.needOlder?.();
  };
}
