// The board's view (columns, sort, filter, watchlist): restored on load, saved as it changes.
import { useCallback, useEffect, useRef, useState } from "react";
import { api } from "../api/client";
import type { Session } from "../session/SessionProvider";
import type { Preferences, ScanFilter } from "../session/types";
import { COLUMN_BY_FIELD, DEFAULT_COLUMNS } from "./columns";
import { filterFromSearch } from "./urlView";

export interface BoardView {
  columns: string[];
  /**
   * The whole filter, order and limit included: what the subscription sends. Without a
   * `sort` the board picks one (see warmup.ts defaultSort).
   */
  filter: ScanFilter;
  /** Show only this watchlist of the user's. */
  watchlist: number | null;
  /** Leave the user's ignore-list off the board. */
  hideIgnored: boolean;
  /** The preset last applied, if the filter still is it. */
  preset: number | null;
}

/** Every listed symbol: the server's limit is 100 unless asked. */
export const BOARD_LIMIT = 5000;

const DEFAULT_VIEW: BoardView = {
  columns: DEFAULT_COLUMNS,
  filter: { limit: BOARD_LIMIT },
  watchlist: null,
  hideIgnored: true,
  preset: null,
};

const SAVE_AFTER_MS = 800;

function storageKey(session: Session): string {
  return `tickscan.board.${session.me?.id ?? "anonymous"}`;
}

function readLocal(key: string): BoardView | null {
  try {
    const text = window.localStorage.getItem(key);
    return text ? { ...DEFAULT_VIEW, ...(JSON.parse(text) as Partial<BoardView>) } : null;
  } catch {
    return null;
  }
}

/**
 * The preferences the server gives a user who never saved any
 * (api/accounts/user_state_models.py): three metric columns. They say nothing the user
 * chose, so the board's own, fuller defaults stand in for them.
 */
const FACTORY = JSON.stringify([["symbol", "price", "change_pct_5m", "change_pct_24h"], "change_pct_24h", "desc", null, null]);
const neverSaved = (prefs: Preferences) =>
  prefs.filter === null && JSON.stringify([prefs.columns, prefs.sort, prefs.order, prefs.watchlist, prefs.preset]) === FACTORY;

const sortable = (field: string | undefined) => field === "symbol" || (field !== undefined && COLUMN_BY_FIELD.has(field));

/**
 * The view to start with. The browser keeps the whole view (per user); a signed-in user's
 * preferences hold it too (columns, filter, sort, watchlist, preset) and win, so the view
 * follows the user to another browser; a link's filter (`?filter=`) wins over both.
 */
function initialView(session: Session): BoardView {
  const view = storedView(session);
  const linked = filterFromSearch(window.location.search);
  return linked ? { ...view, filter: { ...linked, limit: linked.limit ?? BOARD_LIMIT }, preset: null } : view;
}

function storedView(session: Session): BoardView {
  const local = readLocal(storageKey(session));
  const view = local ?? DEFAULT_VIEW;
  const state = session.state;
  if (!state || neverSaved(state.preferences)) return view;
  const prefs = state.preferences;
  const preset = state.presets.find((item) => item.id === prefs.preset) ?? null;
  const metrics = prefs.columns.filter((field) => COLUMN_BY_FIELD.has(field));
  const saved = prefs.filter ?? (preset ? preset.filter : null);
  const filter = saved ? { ...saved, limit: saved.limit ?? BOARD_LIMIT } : view.filter;
  // A saved filter holds the sort the user chose, or none (the board's default); the
  // separate sort field is only the fallback for a preset without one.
  const sorted = prefs.filter === null && !filter.sort && sortable(prefs.sort);
  return {
    ...view,
    columns: metrics.length > 0 ? metrics : view.columns,
    filter: sorted ? { ...filter, sort: prefs.sort, order: prefs.order } : filter,
    watchlist: state.watchlists.some((list) => list.id === prefs.watchlist) ? prefs.watchlist : null,
    preset: preset?.id ?? null,
    hideIgnored: prefs.hide_ignored,
  };
}

function preferencesOf(view: BoardView, current: Preferences): Preferences {
  return {
    ...current,
    // The server's column list names the fixed columns too.
    columns: ["symbol", "market", ...view.columns.filter((field) => COLUMN_BY_FIELD.has(field))],
    sort: view.filter.sort ?? current.sort,
    order: view.filter.order ?? current.order,
    watchlist: view.watchlist,
    preset: view.preset,
    filter: view.filter,
    hide_ignored: view.hideIgnored,
  };
}

/** The view and its setter; mount once the session has loaded (its key: the user). */
export function useBoardView(session: Session): [BoardView, (change: Partial<BoardView>) => void] {
  const [view, setView] = useState(() => initialView(session));
  const key = storageKey(session);
  // Read, not followed: saving when another session's preferences arrive would send ours
  // back to it, and two open boards would overwrite each other forever.
  const preferences = useRef<Preferences | null>(null);
  preferences.current = session.state?.preferences ?? null;
  const { apply } = session;

  useEffect(() => {
    window.localStorage.setItem(key, JSON.stringify(view));
  }, [key, view]);

  // The view as restored is already what was saved: only the user's changes are sent.
  const restored = useRef(view);
  useEffect(() => {
    const current = preferences.current;
    if (!current || view === restored.current) return;
    const next = preferencesOf(view, current);
    if (JSON.stringify(next) === JSON.stringify(current)) return;
    const timer = window.setTimeout(() => {
      api<Preferences>("/api/v1/me/preferences", { method: "PUT", body: next })
        .then((saved) => apply({ kind: "preferences", preferences: saved }))
        .catch(() => undefined); // kept in this browser; the next change tries again
    }, SAVE_AFTER_MS);
    return () => window.clearTimeout(timer);
  }, [view, apply]);

  const change = useCallback((next: Partial<BoardView>) => setView((current) => ({ ...current, ...next })), []);
  return [view, change];
}
