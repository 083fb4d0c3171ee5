// A paper account's lines on a lightweight-charts series, and dragging a resting order's
// line to amend its price: the line follows the pointer snapped to the tick size, the
// amend is sent on release, and the line goes back where it was if the venue refuses it.
import { LineStyle, type IPriceLine, type ISeriesApi, type SeriesType } from "lightweight-charts";
import { snapNumber } from "./decimal";
import type { TradeLine } from "./lines";

/** How close (px) the pointer must be to a line to grab it. */
const GRAB_PX = 6;

export interface LineHost {
  series: ISeriesApi<SeriesType>;
  /** The element holding the chart (pointer coordinates are relative to it). */
  element: HTMLElement;
  /** Let the chart pan and zoom with the pointer, or not (while a line is dragged). */
  setScrollable(on: boolean): void;
  /** Whether the chart is still there (a removed chart took its lines with it). */
  alive(): boolean;
}

/** Send the amend of a dragged line to `price`; rejects when the venue refuses it. */
export type Amend = (line: TradeLine, price: string) => Promise<void>;

interface Drawn {
  spec: TradeLine;
  line: IPriceLine;
}

export class ChartLines {
  private readonly drawn = new Map<string, Drawn>();
  /** Prices of lines dragged and not yet answered: updates do not move them back meanwhile. */
  private readonly pending = new Map<string, string>();
  private dragging: { id: string; from: string; price: string } | null = null;
  private tick: string | null = null;

  constructor(
    private readonly host: LineHost,
    private readonly amend: Amend,
    /** Told the price a dragged line is at while it moves (null once released). */
    private readonly onDrag: (id: string | null, price: string | null) => void = () => undefined,
  ) {
    host.element.addEventListener("pointerdown", this.onDown, true);
    host.element.addEventListener("mousedown", this.swallow, true);
    host.element.addEventListener("touchstart", this.swallow, true);
    host.element.addEventListener("pointermove", this.onHover);
  }

  /** Draw `lines` (in place of the previous ones); dragged prices snap to `tick`. */
  set(lines: readonly TradeLine[], tick: string | null): void {
    this.tick = tick;
    const keep = new Set(lines.map((l) => l.id));
    for (const [id, drawn] of this.drawn) {
      if (keep.has(id)) continue;
      this.host.series.removePriceLine(drawn.line);
      this.drawn.delete(id);
      this.pending.delete(id);
    }
    for (const spec of lines) {
      const held = this.dragging?.id === spec.id ? this.dragging.price : this.pending.get(spec.id);
      if (held === undefined) this.pending.delete(spec.id);
      const options = {
        price: Number(held ?? spec.price),
        color: spec.color,
        lineWidth: 1 as const,
        lineStyle: spec.dashed ? LineStyle.Dashed : LineStyle.Solid,
        axisLabelVisible: true,
        title: spec.title,
      };
      const drawn = this.drawn.get(spec.id);
      if (drawn) {
        drawn.spec = spec;
        drawn.line.applyOptions(options);
      } else {
        this.drawn.set(spec.id, { spec, line: this.host.series.createPriceLine(options) });
      }
    }
  }

  remove(): void {
    const { element } = this.host;
    element.removeEventListener("pointerdown", this.onDown, true);
    element.removeEventListener("mousedown", this.swallow, true);
    element.removeEventListener("touchstart", this.swallow, true);
    element.removeEventListener("pointermove", this.onHover);
    this.stopDrag();
    if (this.host.alive()) for (const { line } of this.drawn.values()) this.host.series.removePriceLine(line);
    this.drawn.clear();
  }

  private y(event: PointerEvent): number {
    return event.clientY - this.host.element.getBoundingClientRect().top;
  }

  /** The draggable line nearest the pointer, within grabbing distance. */
  private grabbable(y: number): Drawn | null {
    let best: Drawn | null = null;
    let distance = GRAB_PX + 1;
    for (const drawn of this.drawn.values()) {
      if (!drawn.spec.amend || this.pending.has(drawn.spec.id)) continue;
      const at = this.host.series.priceToCoordinate(drawn.line.options().price);
      if (at === null) continue;
      const d = Math.abs(at - y);
      if (d < distance) {
        best = drawn;
        distance = d;
      }
    }
    return best;
  }

  private readonly swallow = (event: Event): void => {
    if (this.dragging) event.stopPropagation();
  };

  private readonly onHover = (event: PointerEvent): void => {
    if (this.dragging) return;
    this.host.element.classList.toggle("line-grab", this.grabbable(this.y(event)) !== null);
  };

  private readonly onDown = (event: PointerEvent): void => {
    if (event.button !== 0) return;
    const grabbed = this.grabbable(this.y(event));
    if (!grabbed) return;
    // The chart must not pan with this gesture: its own handlers never see it.
    event.stopPropagation();
    event.preventDefault();
    const from = grabbed.spec.price;
    this.dragging = { id: grabbed.spec.id, from, price: from };
    this.host.setScrollable(false);
    this.host.element.classList.add("line-dragging");
    window.addEventListener("pointermove", this.onMove);
    window.addEventListener("pointerup", this.onUp);
    window.addEventListener("pointercancel", this.onCancel);
  };

  private readonly onMove = (event: PointerEvent): void => {
    const drag = this.dragging;
    const drawn = drag && this.drawn.get(drag.id);
    if (!drag || !drawn) return;
    const raw = this.host.series.coordinateToPrice(this.y(event));
    if (raw === null || raw <= 0) return;
    drag.price = this.tick ? snapNumber(raw, this.tick) : String(raw);
    drawn.line.applyOptions({ price: Number(drag.price) });
    this.onDrag(drag.id, drag.price);
  };

  private readonly onUp = (): void => {
    const drag = this.dragging;
    this.stopDrag();
    const drawn = drag && this.drawn.get(drag.id);
    if (!drag || !drawn || Number(drag.price) === Number(drag.from)) {
      if (drawn && drag) drawn.line.applyOptions({ price: Number(drag.from) });
      return;
    }
    this.pending.set(drag.id, drag.price);
    this.amend(drawn.spec, drag.price).then(
      () => this.pending.delete(drag.id),
      () => {
        this.pending.delete(drag.id);
        // Refused: back to the price the order still has.
        const now = this.drawn.get(drag.id);
        now?.line.applyOptions({ price: Number(now.spec.price) });
      },
    );
  };

  private readonly onCancel = (): void => {
    const drag = this.dragging;
    this.stopDrag();
    const drawn = drag && this.drawn.get(drag.id);
    if (drag && drawn) drawn.line.applyOptions({ price: Number(drag.from) });
  };

  private stopDrag(): void {
    if (this.dragging) this.onDrag(null, null);
    this.dragging = null;
    if (this.host.alive()) this.host.setScrollable(true);
    this.host.element.classList.remove("line-dragging");
    window.removeEventListener("pointermove", this.onMove);
    window.removeEventListener("pointerup", this.onUp);
    window.removeEventListener("pointercancel", this.onCancel);
  }
}
