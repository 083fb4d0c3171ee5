// Keeps a chart's paper-trading lines in step with the account, and sends a dragged order
// line's new price as an amend.
import { useEffect, useRef, useState } from "react";
import type { ChartView } from "../chart/chartView";
import { ChartLines } from "./chartLines";
import type { TradeLine } from "./lines";

export interface DragState {
  id: string;
  price: string;
}

/**
 * Draw `lines` on `view`; dragging an order's line calls `amend` with the new price
 * (snapped to `tick`) and puts the line back if it rejects. Returns the line being
 * dragged and its price, for the list beside the chart.
 */
export function useChartLines(
  view: ChartView | null,
  element: HTMLElement | null,
  lines: readonly TradeLine[],
  tick: string | null,
  amend: (line: TradeLine, price: string) => Promise<void>,
): DragState | null {
  const [drag, setDrag] = useState<DragState | null>(null);
  const drawer = useRef<ChartLines | null>(null);
  const latest = useRef(amend);
  latest.current = amend;

  useEffect(() => {
    if (!view || !element) return;
    const host = { series: view.priceSeries, element, setScrollable: (on: boolean) => view.setScrollable(on), alive: () => !view.isRemoved };
    const made = new ChartLines(host, (line, price) => latest.current(line, price), (id, price) => setDrag(id && price ? { id, price } : null));
    drawer.current = made;
    return () => {
      made.remove();
      drawer.current = null;
    };
  }, [view, element]);

  useEffect(() => {
    drawer.current?.set(lines, tick);
  }, [view, element, lines, tick]);

  return drag;
}
