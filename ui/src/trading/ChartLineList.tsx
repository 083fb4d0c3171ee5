// The chart's paper-trading lines as text over its corner: what each line is and its
// price (the canvas cannot be read by a screen reader or a test), the price a dragged
// line is at, and why an amend was refused. A resting order's entry is also its keyboard
// handle: arrows move its price a tick (Shift: ten), Enter amends, Esc puts it back.
import { useState, type KeyboardEvent } from "react";
import { stepPrice, type TradeLine } from "./lines";
import type { DragState } from "./useChartLines";

interface Props {
  lines: readonly TradeLine[];
  drag: DragState | null;
  error: string | null;
  tick: string | null;
  amend(line: TradeLine, price: string): Promise<void>;
}

export function ChartLineList({ lines, drag, error, tick, amend }: Props) {
  const [editing, setEditing] = useState<{ id: string; price: string } | null>(null);
  if (lines.length === 0 && !error) return null;

  const onKey = (line: TradeLine, event: KeyboardEvent<HTMLLIElement>) => {
    if (!line.amend || !tick) return;
    const current = editing?.id === line.id ? editing.price : line.price;
    const ticks = event.shiftKey ? 10 : 1;
    if (event.key === "ArrowUp" || event.key === "ArrowDown") {
      setEditing({ id: line.id, price: stepPrice(current, tick, event.key === "ArrowUp" ? ticks : -ticks) });
    } else if (event.key === "Enter" && editing?.id === line.id) {
      const price = editing.price;
      setEditing(null);
      if (price !== line.price) amend(line, price).catch(() => undefined); // the error is shown
    } else if (event.key === "Escape" && editing?.id === line.id) {
      setEditing(null);
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
  };

  return (
    <div className="chart-lines" data-testid="chart-lines" aria-label="Orders and position on the chart">
      <ul>
        {lines.map((line) => {
          const price = drag?.id === line.id ? drag.price : editing?.id === line.id ? editing.price : line.price;
          const moving = drag?.id === line.id || editing?.id === line.id;
          const handle = line.amend && tick;
          return (
            <li
              key={line.id}
              data-testid={`chart-line-${line.kind}`}
              data-line={line.id}
              data-price={price}
              className={`${moving ? "moving" : ""}${handle ? " handle" : ""}`}
              tabIndex={handle ? 0 : undefined}
              aria-label={handle ? `${line.title} at ${price}: arrows move the price, Enter amends` : undefined}
              onKeyDown={handle ? (event) => onKey(line, event) : undefined}
              onBlur={() => setEditing((current) => (current?.id === line.id ? null : current))}
            >
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
