// One row of the board; each cell re-renders only when its value changes, and then flashes.
import { memo, useState, type MouseEvent } from "react";
import type { RankRow } from "../session/types";
import type { Column } from "./columns";

type Direction = "up" | "down";

/**
 * The flash class of a value that changed: up or down, alternating between two
 * identical animations so that a second change in a row restarts it (a class that stays
 * the same would not). Derived state during render: no effect, no extra commit.
 */
function useFlash(value: number | null): string {
  const [seen, setSeen] = useState<{ value: number | null; direction: Direction | null; turn: number }>({
    value,
    direction: null,
    turn: 0,
  });
  if (seen.value !== value) {
    const direction = value === null || seen.value === null || value === seen.value ? null : value > seen.value ? "up" : "down";
    setSeen({ value, direction, turn: 1 - seen.turn });
  }
  return seen.direction ? `flash-${seen.direction}-${seen.turn}` : "";
}

const Cell = memo(function Cell({ column, value }: { column: Column; value: number | null }) {
  const flash = useFlash(value);
  // By the digits shown: a -0.001% that reads 0.00% is not painted red.
  const tone = column.signed && value !== null && Math.abs(value) >= 0.005 ? (value > 0 ? " up" : " down") : "";
  return (
    <div role="gridcell" className={`cell num${tone} ${flash}`} data-testid={`cell-${column.field}`}>
      {column.format(value)}
    </div>
  );
});

export interface RowActions {
  select(key: string): void;
  open(key: string): void;
  watch(row: RankRow): void;
  ignore(row: RankRow): void;
}

interface Props {
  rowKey: string;
  row: RankRow;
  columns: Column[];
  top: number;
  selected: boolean;
  open: boolean;
  stale: boolean;
  watched: boolean;
  ignored: boolean;
  actions: RowActions;
}

/** Buttons in a row must not also select it (the row's click) or open it (double-click). */
const act = (run: () => void) => (event: MouseEvent) => {
  event.stopPropagation();
  run();
};

export const BoardRow = memo(function BoardRow({ rowKey, row, columns, top, selected, open, stale, watched, ignored, actions }: Props) {
  const classes = ["board-row", selected && "selected", open && "open", stale && "stale", ignored && "ignored"];
  return (
    <div
      role="row"
      aria-selected={selected}
      className={classes.filter(Boolean).join(" ")}
      data-testid="board-row"
      data-key={rowKey}
      data-stale={stale || undefined}
      style={{ transform: `translateY(${top}px)` }}
      onClick={() => actions.select(rowKey)}
      onDoubleClick={() => actions.open(rowKey)}
    >
      <div role="gridcell" className="cell symbol" data-testid="cell-symbol" title={rowKey}>
        <span className="symbol-name">{row.symbol}</span>
        {row.new_high && <span className="flag flag-high" title="New 24h high">H</span>}
        {row.new_low && <span className="flag flag-low" title="New 24h low">L</span>}
        {stale && <span className="flag flag-stale" title="No update for over 60 s">stale</span>}
      </div>
      <div role="gridcell" className="cell market" data-testid="cell-market">
        {row.market === "usdm" ? "PERP" : "SPOT"}
      </div>
      {columns.map((column) => (
        <Cell key={column.field} column={column} value={row[column.field]} />
      ))}
      <div role="gridcell" className="cell actions">
        <button type="button" className="icon-button" title="Open chart (Enter)" aria-label={`Chart ${row.symbol}`} data-testid="row-chart" tabIndex={-1} onClick={act(() => actions.open(rowKey))}>
          ▤
        </button>
        <button type="button" className={`icon-button${watched ? " on" : ""}`} title={watched ? "Remove from watchlist" : "Add to watchlist"} aria-pressed={watched} data-testid="row-watch" tabIndex={-1} onClick={act(() => actions.watch(row))}>
          {watched ? "★" : "☆"}
        </button>
        <button type="button" className={`icon-button${ignored ? " on" : ""}`} title={ignored ? "Stop ignoring" : "Ignore this symbol"} aria-pressed={ignored} data-testid="row-ignore" tabIndex={-1} onClick={act(() => actions.ignore(row))}>
          ⊘
        </button>
      </div>
    </div>
  );
});
