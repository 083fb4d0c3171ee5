// The scanner grid: a sticky sortable header over virtualised rows of fixed height.
import { useVirtualizer } from "@tanstack/react-virtual";
import { memo, useEffect, useLayoutEffect, useRef, type CSSProperties, type MouseEvent } from "react";
import type { RankRow, SortOrder } from "../session/types";
import { BoardRow, type RowActions } from "./BoardRow";
import { gridTemplate, type Column } from "./columns";
import type { BoardData } from "./useBoard";
import type { Warmups } from "./warmup";

const ROW_HEIGHT = 24;
const HEADER_HEIGHT = 28;
/** A row whose last update is this much older than the board's is marked stale. */
const STALE_AFTER_MS = 60_000;
/**
 * How an update's flashes fade: the board's `data-flash` steps to each value at its time
 * after the update (board.css tints the changed cells by it) and is removed at the last.
 * Two steps repaint only the changed cells twice; a CSS animation per changed cell cost
 * a compositor layer each and more main-thread time than the rest of the update.
 */
const FLASH_FADE: readonly [number, string | null][] = [
  [300, "2"],
  [700, null],
];

interface Props {
  board: BoardData;
  columns: Column[];
  sort: string;
  order: SortOrder;
  onSort(field: string): void;
  selectedKey: string | null;
  openKey: string | null;
  actions: RowActions;
  isWatched(row: RankRow): boolean;
  isIgnored(row: RankRow): boolean;
  /** What an empty board says (no match, an empty watchlist). */
  emptyText: string;
  /** Each metric's history need: dashes still waiting for it count down. */
  warmups: Warmups;
  /** The live connection is down: the values shown are as of its last update. */
  offline: boolean;
}

const Header = memo(function Header({ field, label, title, sort, order, onSort, numeric }: {
  field: string;
  label: string;
  title: string;
  sort: string;
  order: SortOrder;
  onSort(field: string): void;
  numeric: boolean;
}) {
  const sorted = field === sort;
  return (
    <div
      role="columnheader"
      className={`head${numeric ? " num" : ""}${sorted ? " sorted" : ""}`}
      data-testid={`col-${field}`}
      aria-sort={sorted ? (order === "asc" ? "ascending" : "descending") : "none"}
      title={title}
      onClick={() => onSort(field)}
    >
      <button type="button" className="head-button">
        {label}
        <span className="sort-mark" aria-hidden="true">{sorted ? (order === "asc" ? "▲" : "▼") : ""}</span>
      </button>
    </div>
  );
});

/**
 * A click on a header or row button leaves the focus where it was: on a focused button,
 * Enter would press it again instead of opening the selected row's chart.
 */
function keepFocus(event: MouseEvent) {
  if (event.target instanceof Element && event.target.closest("button")) event.preventDefault();
}

export function Board({ board, columns, sort, order, onSort, selectedKey, openKey, actions, isWatched, isIgnored, emptyText, warmups, offline }: Props) {
  const scroller = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: board.order.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    // Rows out of sight still render, lay out and update every second: only a few.
    overscan: 4,
    scrollPaddingStart: HEADER_HEIGHT,
    // Items keyed by index (the default): every row has the same size, and a new
    // getItemKey per update would recompute the layout of all 2,000 rows.
  });

  const selectedIndex = selectedKey === null ? -1 : board.order.indexOf(selectedKey);
  useEffect(() => {
    if (selectedIndex >= 0) virtualizer.scrollToIndex(selectedIndex, { align: "auto" });
  }, [selectedIndex, virtualizer]);

  // Set on the element, not rendered: a step must not re-render the board.
  useLayoutEffect(() => {
    const element = scroller.current;
    if (!element || board.flashes.size === 0) return;
    element.dataset.flash = "1";
    const timers = FLASH_FADE.map(([at, step]) =>
      window.setTimeout(() => {
        if (step) element.dataset.flash = step;
        else delete element.dataset.flash;
      }, at),
    );
    return () => {
      for (const timer of timers) window.clearTimeout(timer);
      delete element.dataset.flash;
    };
  }, [board.flashes]);

  const style = { "--board-columns": gridTemplate(columns) } as CSSProperties;
  const asOf = board.asOfMs;
  const header = (label: string, field: string, title: string, numeric = true) => (
    <Header key={field} field={field} label={label} title={title} sort={sort} order={order} onSort={onSort} numeric={numeric} />
  );

  return (
    <div
      ref={scroller}
      className={`board${offline ? " offline" : ""}`}
      data-testid="board"
      data-offline={offline || undefined}
      role="grid"
      aria-rowcount={board.order.length}
      aria-busy={!board.ready}
      style={style}
      onMouseDown={keepFocus}
    >
      <div role="row" className="board-head">
        {header("Symbol", "symbol", "Symbol", false)}
        <div role="columnheader" className="head" title="Spot or USDⓈ-M perpetual">
          Mkt
        </div>
        {columns.map((column) => header(column.label, column.field, column.title))}
        <div role="columnheader" className="head" aria-label="Actions" />
      </div>
      <div className="board-body" style={{ height: virtualizer.getTotalSize() }}>
        {virtualizer.getVirtualItems().map((item) => {
          const key = board.order[item.index];
          const row = board.rows.get(key);
          if (!row) return null;
          return (
            <BoardRow
              key={key}
              rowKey={key}
              row={row}
              flashes={board.flashes.get(key)}
              columns={columns}
              top={item.start}
              selected={key === selectedKey}
              open={key === openKey}
              stale={asOf !== null && asOf - row.time_ms > STALE_AFTER_MS}
              watched={isWatched(row)}
              ignored={isIgnored(row)}
              actions={actions}
              warmups={warmups}
              // Only rows that say where their history begins, or when their next funding
              // is, count down: the others need no re-render when the board's time moves on.
              nowMs={row.history_1s_from_ms == null && row.history_1m_from_ms == null && row.next_funding_s == null ? null : asOf}
            />
          );
        })}
      </div>
      {board.order.length === 0 && (
        <div className="board-empty" role="status">
          {board.error ? board.error.message : board.ready ? emptyText : "Loading the board…"}
        </div>
      )}
    </div>
  );
}
