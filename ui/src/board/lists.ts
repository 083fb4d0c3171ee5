// Watchlist and ignore-list actions on a row (signed in), through REST; the session shows them at once.
import { api } from "../api/client";
import type { Session } from "../session/SessionProvider";
import type { RankRow, Watchlist } from "../session/types";
import { rowKey } from "../session/types";

/** The entry of `symbols` that names this row: its key, or its bare symbol (every market). */
export function entryFor(symbols: readonly string[], row: RankRow): string | undefined {
  const key = rowKey(row);
  return symbols.find((entry) => entry === key || entry === row.symbol);
}

const NEW_WATCHLIST = "Watchlist";

/**
 * The list a row's star adds to: the one the board shows, else the user's first; the
 * first star of a user without any creates one.
 */
export function targetWatchlist(session: Session, shown: number | null): Watchlist | null {
  const lists = session.state?.watchlists ?? [];
  return lists.find((list) => list.id === shown) ?? lists[0] ?? null;
}

/** Add the row to the target watchlist, or take it out if it is in. Throws ApiError. */
export async function toggleWatch(session: Session, shown: number | null, row: RankRow): Promise<void> {
  const list = targetWatchlist(session, shown);
  const path = "/api/v1/me/watchlists";
  let saved: Watchlist;
  if (!list) {
    saved = await api<Watchlist>(path, { method: "POST", body: { name: NEW_WATCHLIST, symbols: [rowKey(row)] } });
  } else {
    const entry = entryFor(list.symbols, row);
    saved = entry
      ? await api<Watchlist>(`${path}/${list.id}/symbols`, { method: "DELETE", query: { symbol: entry } })
      : await api<Watchlist>(`${path}/${list.id}/symbols`, { method: "POST", body: { symbol: rowKey(row) } });
  }
  session.apply({ kind: "watchlist", watchlist: saved });
}

/** Put the row on the ignore-list, or take it off. Throws ApiError. */
export async function toggleIgnore(session: Session, row: RankRow): Promise<void> {
  const current = session.state?.ignored ?? [];
  const entry = entryFor(current, row);
  const symbols = entry ? current.filter((item) => item !== entry) : [...current, rowKey(row)];
  const saved = await api<{ symbols: string[] }>("/api/v1/me/ignored", { method: "PUT", body: { symbols } });
  session.apply({ kind: "ignored", ignored: saved });
}

const WATCHLISTS = "/api/v1/me/watchlists";

/** A new, empty watchlist. Throws ApiError (a taken name, the plan's limit). */
export async function createWatchlist(session: Session, name: string): Promise<Watchlist> {
  const saved = await api<Watchlist>(WATCHLISTS, { method: "POST", body: { name, symbols: [] } });
  session.apply({ kind: "watchlist", watchlist: saved });
  return saved;
}

/** The list under a new name, its symbols kept. Throws ApiError. */
export async function renameWatchlist(session: Session, list: Watchlist, name: string): Promise<void> {
  const saved = await api<Watchlist>(`${WATCHLISTS}/${list.id}`, { method: "PUT", body: { name, symbols: list.symbols } });
  session.apply({ kind: "watchlist", watchlist: saved });
}

export async function deleteWatchlist(session: Session, list: Watchlist): Promise<void> {
  await api(`${WATCHLISTS}/${list.id}`, { method: "DELETE" });
  session.apply({ kind: "watchlist", deleted: list.id });
}

/** Take one entry (a key or a bare symbol) off the ignore-list. Throws ApiError. */
export async function unignore(session: Session, entry: string): Promise<void> {
  const symbols = (session.state?.ignored ?? []).filter((item) => item !== entry);
  const saved = await api<{ symbols: string[] }>("/api/v1/me/ignored", { method: "PUT", body: { symbols } });
  session.apply({ kind: "ignored", ignored: saved });
}
