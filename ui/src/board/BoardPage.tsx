// The board page: toolbar, filter builder, the live grid and, when a row is opened, its chart.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { ChartPanel } from "../chart/ChartPanel";
import { useConnectionState } from "../live/useConnection";
import { navigate } from "../router";
import { useSession, type Session } from "../session/SessionProvider";
import { publishWarmup } from "../status/boardStatus";
import type { Preset, RankRow, ScanFilter } from "../session/types";
import { Board } from "./Board";
import type { RowActions } from "./BoardRow";
import { ColumnPicker } from "./ColumnPicker";
import { visibleColumns } from "./columns";
import { FilterBuilder } from "./FilterBuilder";
import { formatTime } from "./format";
import { entryFor, targetWatchlist, toggleIgnore, toggleWatch } from "./lists";
import { Lists } from "./Lists";
import { NoticeToast, noticeOf, SIGN_IN_NOTICE, useNotice } from "./notice";
import { Presets } from "./Presets";
import { useQuotes } from "./quotes";
import { useBoard, type BoardData, type BoardRequest } from "./useBoard";
import { useNarrow } from "./useNarrow";
import { searchWithFilter } from "./urlView";
import { BOARD_LIMIT, useBoardView } from "./useView";
import { useWarmups } from "./useWarmups";
import { defaultSort, isComplete, summarise } from "./warmup";
import "./board.css";

const PAGE_ROWS = 20;

/** Keys that move the selection, as a function of the index and the row count. */
const MOVES: Record<string, (index: number, count: number) => number> = {
  ArrowDown: (index) => index + 1,
  ArrowUp: (index) => index - 1,
  PageDown: (index) => index + PAGE_ROWS,
  PageUp: (index) => index - PAGE_ROWS,
  Home: () => 0,
  End: (_, count) => count - 1,
};

/** Whether the last board this browser saw was warm: the first request's default sort. */
const WARM_KEY = "tickscan.board.warm";

const typing = (target: EventTarget | null) =>
  target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName));

export function BoardPage() {
  const session = useSession();
  if (session.loading) return <div className="board-page board-empty">Loading…</div>;
  // A new user (log in, log out) starts from their own saved view.
  return <Scanner key={session.me?.id ?? "anonymous"} session={session} />;
}

function Scanner({ session }: { session: Session }) {
  const [view, setView] = useBoardView(session);
  const [notice, notify] = useNotice();
  const [selectedKey, setSelectedKey] = useState<string | null>(null);
  const [openKey, setOpenKey] = useState<string | null>(null);
  const filters = useRef<HTMLFormElement>(null);
  const quotes = useQuotes();
  const columns = useMemo(() => visibleColumns(view.columns), [view.columns]);
  const state = session.state;

  const narrow = useNarrow();
  const [filtersOpen, setFiltersOpen] = useState(false);
  const connection = useConnectionState(session.live);
  const warmups = useWarmups();
  const [warm, setWarm] = useState(() => window.localStorage.getItem(WARM_KEY) === "1");
  // A sort the user chose is theirs; otherwise the board's own (warmup.ts defaultSort).
  const sort = view.filter.sort ?? defaultSort(warm);
  const order = view.filter.order ?? "desc";
  const sortedFilter = useMemo(() => ({ ...view.filter, sort, order }), [view.filter, sort, order]);

  const shownList = state?.watchlists.find((list) => list.id === view.watchlist) ?? null;
  // An empty watchlist is an empty board (to the server, an empty list would be all symbols).
  const emptyList = shownList !== null && shownList.symbols.length === 0;
  const request = useMemo<BoardRequest>(
    () => ({
      filter: sortedFilter,
      watchlist: emptyList ? undefined : shownList?.id,
      ignored: state && view.hideIgnored ? "mine" : undefined,
    }),
    [sortedFilter, shownList?.id, emptyList, state, view.hideIgnored],
  );
  // The server reads the lists when a filter arrives: their changes must resend it.
  const revision = JSON.stringify([shownList?.symbols ?? null, request.ignored ? state?.ignored : null]);
  const live = useBoard(session.live, request, revision);
  const board = useMemo<BoardData>(
    () => (emptyList ? { ...live, rows: new Map(), flashes: new Map(), order: [], ready: true, error: null } : live),
    [emptyList, live],
  );

  const summary = useMemo(
    () => (board.ready && board.asOfMs !== null ? summarise(board.rows.values(), warmups, board.asOfMs) : null),
    // A new board object per update: its rows map is changed in place.
    [board, warmups],
  );
  useEffect(() => {
    if (summary === null || summary.rows === 0) return;
    const complete = isComplete(summary);
    setWarm(complete);
    window.localStorage.setItem(WARM_KEY, complete ? "1" : "0");
  }, [summary]);
  useEffect(() => {
    publishWarmup(summary && board.asOfMs !== null ? { summary, nowMs: board.asOfMs } : null);
  }, [summary, board.asOfMs]);
  useEffect(() => () => publishWarmup(null), []);

  // The filter and sort in the URL: a board shared as a link opens the same.
  useEffect(() => {
    const search = searchWithFilter(window.location.search, view.filter, BOARD_LIMIT);
    navigate(window.location.pathname + search, { replace: true });
  }, [view.filter]);

  const setFilter = useCallback((filter: ScanFilter) => setView({ filter, preset: null }), [setView]);
  const applyPreset = useCallback((preset: Preset) => setView({ filter: preset.filter, preset: preset.id }), [setView]);
  // A new sort keeps the preset: preferences keep the sort beside it, and restore both.
  const onSort = useCallback(
    (field: string) =>
      setView({ filter: { ...view.filter, sort: field, order: field === sort ? (order === "desc" ? "asc" : "desc") : field === "symbol" ? "asc" : "desc" } }),
    [setView, view.filter, sort, order],
  );
  const showList = useCallback((id: number | null) => setView({ watchlist: id }), [setView]);
  const columnFields = useMemo(() => columns.map((column) => column.field), [columns]);
  const setColumns = useCallback((fields: string[]) => setView({ columns: fields }), [setView]);

  const target = state ? targetWatchlist(session, view.watchlist) : null;
  const isWatched = useCallback((row: RankRow) => target !== null && entryFor(target.symbols, row) !== undefined, [target]);
  const ignored = state?.ignored;
  const isIgnored = useCallback((row: RankRow) => ignored !== undefined && entryFor(ignored, row) !== undefined, [ignored]);

  // Row callbacks stay the same object, so memoised rows do not re-render for them.
  const latest = useRef({ session, watchlist: view.watchlist, rows: board.rows });
  latest.current = { session, watchlist: view.watchlist, rows: board.rows };
  const actions = useMemo<RowActions>(() => {
    const run = (key: string, change: (current: Session, row: RankRow) => Promise<void>) => {
      const current = latest.current.session;
      if (!current.me) return notify(SIGN_IN_NOTICE);
      const row = latest.current.rows.get(key);
      if (row) change(current, row).catch((error: unknown) => notify(noticeOf(error)));
    };
    return {
      select: setSelectedKey,
      open: (key) => {
        setSelectedKey(key);
        setOpenKey(key);
      },
      watch: (key) => run(key, (current, row) => toggleWatch(current, latest.current.watchlist, row)),
      ignore: (key) => run(key, (current, row) => toggleIgnore(current, row)),
    };
  }, [notify]);

  const closeChart = useCallback(() => setOpenKey(null), []);

  const keys = useRef({ order: board.order, selectedKey });
  keys.current = { order: board.order, selectedKey };
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.altKey || event.ctrlKey || event.metaKey) return;
      if (typing(event.target)) {
        if (event.key === "Escape") (event.target as HTMLElement).blur();
        return;
      }
      const { order: rows, selectedKey: selected } = keys.current;
      const move = MOVES[event.key];
      if (event.key === "/") {
        filters.current?.querySelector<HTMLElement>('[data-testid="filter-value"], [data-testid="filter-add"]')?.focus();
      } else if (event.key === "Escape") {
        setOpenKey(null);
      } else if (event.key === "Enter" && selected !== null && !(event.target instanceof HTMLButtonElement)) {
        setOpenKey(selected);
      } else if (move && rows.length > 0) {
        const index = selected === null ? -1 : rows.indexOf(selected);
        setSelectedKey(rows[Math.max(0, Math.min(rows.length - 1, move(index, rows.length)))]);
      } else {
        return;
      }
      event.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  const delay = session.entitlements?.delay_s ?? 0;
  // Once the board has shown rows, a lost connection leaves them as they were: say so.
  const offline = connection !== "open" && board.asOfMs !== null;
  const selectedQuotes = view.filter.quotes;
  const shownQuotes = useMemo(
    () => [...quotes, ...(selectedQuotes ?? []).filter((quote) => !quotes.includes(quote))],
    [quotes, selectedQuotes],
  );
  // On a phone an open chart is a view of its own: the board's controls make way for it.
  const chartView = narrow && openKey !== null;
  return (
    <div className="board-page">
      <div className="toolbar" hidden={chartView}>
        <Lists session={session} shown={shownList} onShow={showList} notify={notify} />
        <label className="check" title={state ? "Leave your ignore-list off the board" : "Log in to keep an ignore-list"}>
          <input type="checkbox" data-testid="hide-ignored" disabled={!state} checked={state !== null && view.hideIgnored} onChange={(event) => setView({ hideIgnored: event.target.checked })} />
          Hide ignored
        </label>
        <Presets filter={view.filter} current={view.preset} onApply={applyPreset} notify={notify} />
        <ColumnPicker columns={columnFields} onChange={setColumns} />
        <div className="board-meta" aria-live="off">
          <span className={`pending${board.ready ? "" : " on"}`} aria-hidden={board.ready}>
            updating…
          </span>
          {board.error && board.order.length > 0 && <span className="error-text">{board.error.message}</span>}
          <span>
            <span data-testid="board-count">{board.order.length}</span> symbols
          </span>
          <span title="Exchange time of the board's latest update (UTC)">
            as of <time data-testid="board-as-of">{board.asOfMs === null ? "–" : formatTime(board.asOfMs)}</time>
            {delay > 0 && <span className="delayed"> · {delay} s delayed</span>}
          </span>
        </div>
      </div>
      {narrow && !chartView && (
        <button type="button" className="button filters-toggle" data-testid="filters-toggle" aria-expanded={filtersOpen} onClick={() => setFiltersOpen(!filtersOpen)}>
          {filtersOpen ? "Hide filters" : "Filters"}
        </button>
      )}
      {(!narrow || (filtersOpen && !chartView)) && <FilterBuilder ref={filters} filter={view.filter} quotes={shownQuotes} onChange={setFilter} />}
      {offline && (
        <div className="offline-banner" role="alert" data-testid="board-offline">
          The server cannot be reached: the values are as of {board.asOfMs === null ? "the last update" : `${formatTime(board.asOfMs)} UTC`}. Reconnecting…
        </div>
      )}
      <div className={`split${openKey ? " with-chart" : ""}${narrow ? " narrow" : ""}`}>
        <Board
          board={board}
          columns={columns}
          sort={sort}
          order={order}
          onSort={onSort}
          selectedKey={selectedKey}
          openKey={openKey}
          actions={actions}
          isWatched={isWatched}
          isIgnored={isIgnored}
          warmups={warmups}
          offline={offline}
          emptyText={emptyList ? `“${shownList.name}” has no symbols yet: star rows of “All symbols” to add them.` : shownList ? `No symbol of “${shownList.name}” matches; star rows to add them.` : "No symbol matches this filter."}
        />
        {openKey && (
          <aside className="chart-pane">
            <ChartPanel key={openKey} symbolKey={openKey} onClose={closeChart} asView={narrow} />
          </aside>
        )}
      </div>
      <NoticeToast notice={notice} onClose={() => notify(null)} />
    </div>
  );
}
