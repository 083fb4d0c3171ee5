// The chart's paper-trading lines as text over its corner: what each line is and its
// price (the canvas cannot be read by a screen reader or a test), the price a dragged
// line is at, and why an amend was refused.
import type { TradeLine } from "./lines";
import type { DragState } from "./useChartLines";

export function ChartLineList({ lines, drag, error }: { lines: readonly TradeLine[]; drag: DragState | null; error: string | null }) {
  if (lines.length === 0 && !error) return null;
  return (
    <div className="chart-lines" data-testid="chart-lines" aria-label="Orders and position on the chart">
      <ul>
        {lines.map((line) => {
          const price = drag?.id === line.id ? drag.price : line.price;
          return (
            <li key={line.id} data-testid={`chart-line-${line.kind}`} data-line={line.id} data-price={price} className={drag?.id === line.id ? "dragging" : undefined}>
              <span className="chart-line-swatch" style={{ background: line.color }} aria-hidden="true" />
              {line.title} @ {price}
              {line.amend && <span className="chart-line-hint"> · drag to amend</span>}
            </li>
          );
        })}
      </ul>
      {error && (
        <p className="chart-lines-error" role="alert" data-testid="chart-lines-error">
          {error}
        </p>
      )}
    </div>
  );
}
