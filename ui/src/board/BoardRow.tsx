// One row of the board; each cell re-renders only when its value or its flash changes.
import { memo, type MouseEvent } from "react";
import type { RankRow } from "../session/types";
import { cellFlash, cellValue, tone, type Column } from "./columns";
import type { Flashes } from "./useBoard";
import { formatWait, waitMs, type Warmups } from "./warmup";

/**
 * A metric cell. `flash` is the way its value moved in the latest update; the board
 * shows and fades every flash of an update at once (see Board), so a cell needs no
 * animation of its own: starting a CSS animation per changed cell cost more than all
 * the rest of an update. `wait` (ms, whole seconds) is how long until a dash has a value.
 */
const Cell = memo(function Cell({ column, value, flash, wait }: { column: Column; value: number | null; flash: "up" | "down" | undefined; wait: number | null }) {
  const sign = column.signed ? tone(value) : null;
  const flashed = cellFlash(column.flash, flash, value);
  if (wait !== null) {
    const left = formatWait(wait);
    return (
      <div role="gridcell" className="cell num warming" data-testid={`cell-${column.field}`} data-wait-ms={wait} title={`${column.title}: a value in ${left}, once the history it needs has been seen`}>
        in {left}
      </div>
    );
  }
  return (
    <div role="gridcell" className={`cell num${sign ? ` ${sign}` : ""}${flashed ? ` flash-${flashed}` : ""}`} data-testid={`cell-${column.field}`}>
      {column.format(value)}
    </div>
  );
});

export interface RowActions {
  select(key: string): void;
  open(key: string): void;
  watch(key: string): void;
  ignore(key: string): void;
}

interface Props {
  rowKey: string;
  row: RankRow;
  /** What the latest update moved in this row, if anything. */
  flashes: Flashes | undefined;
  columns: Column[];
  top: number;
  selected: boolean;
  open: boolean;
  stale: boolean;
  watched: boolean;
  ignored: boolean;
  actions: RowActions;
  /** Each metric's history need, to count down the dashes still waiting for it. */
  warmups: Warmups;
  /** The board's exchange time, the countdowns' now. */
  nowMs: number | null;
}

/** The whole seconds until `field` fills, or null (a value, or a dash that will not fill). */
function waitOf(row: RankRow, field: string, warmups: Warmups, nowMs: number | null): number | null {
  if (nowMs === null || warmups.size === 0) return null;
  const wait = waitMs(row, field, warmups, nowMs);
  return wait === null ? null : Math.ceil(wait / 1000) * 1000;
}

/** Buttons in a row must not also select it (the row's click) or open it (double-click). */
const act = (run: () => void) => (event: MouseEvent) => {
  event.stopPropagation();
  run();
};

/**
 * The symbol and market cells. Memoised apart from the row, like RowButtons: a row
 * re-renders every second for its values, and these seldom change.
 */
const Identity = memo(function Identity({ rowKey, symbol, market, newHigh, newLow, stale }: {
  rowKey: string;
  symbol: string;
  market: string;
  newHigh: boolean;
  newLow: boolean;
  stale: boolean;
}) {
  return (
    <>
      <div role="gridcell" className="cell symbol" data-testid="cell-symbol" title={rowKey}>
        <span className="symbol-name">{symbol}</span>
        {newHigh && <span className="flag flag-high" title="New 24h high">H</span>}
        {newLow && <span className="flag flag-low" title="New 24h low">L</span>}
        {stale && <span className="flag flag-stale" title="No update for over 60 s">stale</span>}
      </div>
      <div role="gridcell" className="cell market" data-testid="cell-market">
        {market === "usdm" ? "PERP" : "SPOT"}
      </div>
    </>
  );
});

const RowButtons = memo(function RowButtons({ rowKey, symbol, watched, ignored, actions }: {
  rowKey: string;
  symbol: string;
  watched: boolean;
  ignored: boolean;
  actions: RowActions;
}) {
  return (
    <div role="gridcell" className="cell actions">
      <button type="button" className="icon-button" title="Open chart (Enter)" aria-label={`Chart ${symbol}`} data-testid="row-chart" tabIndex={-1} onClick={act(() => actions.open(rowKey))}>
        ▤
      </button>
      <button type="button" className={`icon-button${watched ? " on" : ""}`} title={watched ? "Remove from watchlist" : "Add to watchlist"} aria-pressed={watched} data-testid="row-watch" tabIndex={-1} onClick={act(() => actions.watch(rowKey))}>
        {watched ? "★" : "☆"}
      </button>
      <button type="button" className={`icon-button${ignored ? " on" : ""}`} title={ignored ? "Stop ignoring" : "Ignore this symbol"} aria-pressed={ignored} data-testid="row-ignore" tabIndex={-1} onClick={act(() => actions.ignore(rowKey))}>
        ⊘
      </button>
    </div>
  );
});

export const BoardRow = memo(function BoardRow({ rowKey, row, flashes, columns, top, selected, open, stale, watched, ignored, actions, warmups, nowMs }: Props) {
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
      <Identity rowKey={rowKey} symbol={row.symbol} market={row.market} newHigh={row.new_high} newLow={row.new_low} stale={stale} />
      {columns.map((column) => (
        <Cell key={column.field} column={column} value={cellValue(column, row, nowMs)} flash={flashes?.[column.field]} wait={waitOf(row, column.field, warmups, nowMs)} />
      ))}
      <RowButtons rowKey={rowKey} symbol={row.symbol} watched={watched} ignored={ignored} actions={actions} />
    </div>
  );
});
