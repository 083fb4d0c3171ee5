// One lightweight-charts chart: candlesticks, quote volume beneath, revised bars in their own
// colour and signals as markers. Imperative on purpose: live bars go to `series.update`
// without a React render of the whole series.
import {
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
import { barTimeOf, INTERVAL_MS, pricePrecision, type Candle, type Interval, type Signal } from "./candles";

const UP = "#26a69a";
const DOWN = "#ef5350";
const UP_VOLUME = "rgba(38, 166, 154, 0.45)";
const DOWN_VOLUME = "rgba(239, 83, 80, 0.45)";
/** Wick and border of a bar revised after it closed (chart.css .swatch-revised matches). */
const REVISED = "#f5a623";
const GRID = "#161c23";
const AXIS = "#222a33";

/** Fewer bars than this left of the view asks for older history. */
const OLDER_MARGIN_BARS = 30;

export interface ChartViewEvents {
  /** The last bar changed: the header shows its close. */
  onLast(candle: Candle | undefined): void;
  /** The crosshair moved over a bar, or off the bars (undefined). */
  onHover(candle: Candle | undefined): void;
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
  private digits = 2;

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
    // A new bar may be the one a signal already received points at.
    if (candle.open_time !== before && this.signals.size > 0) this.drawMarkers();
  }

  /** Add signals (history or live); each is marked on the bar that fired it. */
  addSignals(signals: readonly Signal[]): void {
    for (const signal of signals) this.signals.set(signalId(signal), signal);
    this.drawMarkers();
  }

  remove(): void {
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
    markers.sort((a, b) => (a.time as number) - (b.time as number));
    this.markers.setMarkers(markers);
  }

  private readonly onCrosshair = (param: MouseEventParams<Time>): void => {
    const time = param.time as number | undefined;
    this.events.onHover(time === undefined ? undefined : this.book.get(time * 1000));
  };

  private readonly onRange = (range: LogicalRange | null): void => {
    if (range && range.from < OLDER_MARGIN_BARS) this.needOlder?.();
  };
}
