// The candles of one chart, oldest first: history pages and live bars merged by open time,
// and which bars were revised after they closed.
import type { Candle, Interval } from "./candles";

/**
 * Where a live bar went: `last` (the forming bar or a new one after it), `historic` (an
 * older bar replaced in place), `insert` (an older bar the book did not hold: redraw all),
 * `none` (older than the history loaded: paging it in later brings its latest version).
 */
export type Placement = "last" | "historic" | "insert" | "none";

export class CandleBook {
  private bars: Candle[] = [];
  private readonly revised = new Set<number>();

  constructor(private readonly interval: Interval) {}

  get candles(): readonly Candle[] {
    return this.bars;
  }

  last(): Candle | undefined {
    return this.bars[this.bars.length - 1];
  }

  isRevised(openTime: number): boolean {
    return this.revised.has(openTime);
  }

  get(openTime: number): Candle | undefined {
    const index = this.indexOf(openTime);
    return index < 0 ? undefined : this.bars[index];
  }

  /** Start over from a page of the latest history. */
  reset(candles: readonly Candle[]): void {
    this.bars = [...candles];
    this.revised.clear();
    this.markStoredRevisions(candles);
  }

  /** Put older history in front; returns how many candles were new to the book. */
  prepend(older: readonly Candle[]): number {
    const first = this.bars[0]?.open_time ?? Number.POSITIVE_INFINITY;
    const fresh = older.filter((c) => c.open_time < first);
    this.bars = [...fresh, ...this.bars];
    this.markStoredRevisions(fresh);
    return fresh.length;
  }

  /**
   * Merge a live bar. A `close` with a version above 1 is a revision: a late trade changed
   * a bar after it closed (a bar closes at version 1, see api/live/candles.py Bar).
   */
  apply(candle: Candle, closed: boolean): Placement {
    const last = this.last();
    if (last && candle.open_time < this.bars[0].open_time) return "none";
    if (closed && candle.version > 1) this.revised.add(candle.open_time);
    if (!last || candle.open_time > last.open_time) {
      this.bars.push(candle);
      return "last";
    }
    const index = this.indexOf(candle.open_time);
    if (index === this.bars.length - 1) {
      this.bars[index] = candle;
      return "last";
    }
    if (index >= 0) {
      this.bars[index] = candle;
      return "historic";
    }
    const at = this.bars.findIndex((c) => c.open_time > candle.open_time);
    this.bars.splice(at, 0, candle);
    return "insert";
  }

  /**
   * Stored 1s and 1m candles count their revisions in `version`; a rolled-up interval's
   * version is a sum over its minutes, which says nothing about revisions.
   */
  private markStoredRevisions(candles: readonly Candle[]): void {
    if (this.interval !== "1s" && this.interval !== "1m") return;
    for (const c of candles) if (c.version > 1) this.revised.add(c.open_time);
  }

  /** Binary search by open time; -1 when absent. */
  private indexOf(openTime: number): number {
    let lo = 0;
    let hi = this.bars.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const t = this.bars[mid].open_time;
      if (t === openTime) return mid;
      if (t < openTime) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
}
