// The live board of one ranks subscription: snapshot, then diffs merged in order of seq.
import { useEffect, useRef, useState } from "react";
import type { LiveSocket, LiveSubscription, ServerMessage } from "../live/socket";
import { rowKey, type RankRow, type ScanFilter } from "../session/types";

/** What a ranks subscription asks: the filter and the user's lists (signed in only). */
export interface BoardRequest {
  filter: ScanFilter;
  watchlist?: number;
  ignored?: "mine";
}

/** The direction each numeric field of a row moved, by field. */
export type Flashes = Readonly<Record<string, "up" | "down">>;

export interface BoardData {
  /** Rows by key; a row object is replaced only when it changed, so memoised rows skip. */
  rows: ReadonlyMap<string, RankRow>;
  /**
   * What the latest update moved, by row key (rows it did not move are absent): a new map
   * per update, so the board knows when to flash, and a row whose flashes ended re-renders.
   */
  flashes: ReadonlyMap<string, Flashes>;
  /** Keys in the server's order. */
  order: readonly string[];
  asOfMs: number | null;
  /** False until the first snapshot of the current request. */
  ready: boolean;
  error: { code: string; message: string } | null;
}

const EMPTY: BoardData = { rows: new Map(), flashes: new Map(), order: [], asOfMs: null, ready: false, error: null };

type DiffRow = Partial<RankRow> & { key: string };

/** The numeric fields of `fields` that moved from `before`, and which way; null if none. */
function moves(before: RankRow, fields: Partial<RankRow>): Flashes | null {
  let moved: Record<string, "up" | "down"> | null = null;
  const old = before as unknown as Record<string, unknown>;
  for (const [field, value] of Object.entries(fields)) {
    const previous = old[field];
    if (typeof value !== "number" || typeof previous !== "number" || value === previous) continue;
    (moved ??= {})[field] = value > previous ? "up" : "down";
  }
  return moved;
}

/**
 * The rows as received, changed in place: copying 2,000 entries every second for an
 * immutable update would cost more than the render. A changed row gets a new object, so
 * memoised rows still see what changed.
 */
class Rows {
  rows = new Map<string, RankRow>();
  flashes = new Map<string, Flashes>();
  order: string[] = [];
  asOfMs: number | null = null;

  snapshot(message: ServerMessage): void {
    // A resync or a new filter: rows still shown flash what moved meanwhile.
    const previous = this.rows;
    this.rows = new Map();
    this.flashes = new Map();
    for (const row of message.rows as RankRow[]) {
      const key = rowKey(row);
      this.rows.set(key, row);
      const before = previous.get(key);
      const moved = before ? moves(before, row) : null;
      if (moved) this.flashes.set(key, moved);
    }
    this.order = message.order as string[];
    this.asOfMs = message.as_of_ms as number | null;
  }

  diff(message: ServerMessage): void {
    this.flashes = new Map();
    for (const change of message.upsert as DiffRow[]) {
      const { key, ...fields } = change;
      const existing = this.rows.get(key);
      this.rows.set(key, existing ? { ...existing, ...fields } : (fields as RankRow));
      const moved = existing ? moves(existing, fields) : null;
      if (moved) this.flashes.set(key, moved);
    }
    const removed = message.remove as string[];
    for (const key of removed) this.rows.delete(key);
    if (message.order) this.order = message.order as string[];
    else if (removed.length > 0) this.order = this.order.filter((key) => this.rows.has(key));
    this.asOfMs = message.as_of_ms as number;
  }

  view(ready: boolean, error: BoardData["error"]): BoardData {
    return { rows: this.rows, flashes: this.flashes, order: this.order, asOfMs: this.asOfMs, ready, error };
  }
}

/**
 * Follow the board for `request` on the tab's socket. `revision` forces the filter to be
 * sent again although the request looks the same: the server reads a watchlist's symbols
 * and the ignore-list only when a filter arrives, so a change of them needs a resend.
 */
export function useBoard(live: LiveSocket, request: BoardRequest, revision: string): BoardData {
  const [board, setBoard] = useState<BoardData>(EMPTY);
  const subscription = useRef<LiveSubscription | null>(null);
  const requestRef = useRef(request);
  requestRef.current = request;
  const sent = useRef("");

  useEffect(() => {
    const store = new Rows();
    let seq = -1;
    const resync = () => subscription.current?.update({ ...requestRef.current });
    const sub = live.subscribe("ranks", { ...requestRef.current }, (message) => {
      switch (message.type) {
        case "snapshot":
          seq = message.seq as number;
          store.snapshot(message);
          setBoard(store.view(true, null));
          break;
        case "diff":
          // A gap means updates were lost: the rows cannot be trusted until a new snapshot.
          if (seq >= 0 && message.seq !== seq + 1) {
            seq = -1;
            resync();
            return;
          }
          seq = message.seq as number;
          store.diff(message);
          setBoard((current) => store.view(current.ready, current.error));
          break;
        case "error":
          setBoard(store.view(true, { code: message.code as string, message: message.message as string }));
          break;
      }
    });
    subscription.current = sub;
    sent.current = JSON.stringify([requestRef.current, revision]);
    return () => {
      sub.close();
      subscription.current = null;
    };
    // The subscription lives as long as the socket; request changes go through `update`.
  }, [live]);

  const wanted = JSON.stringify([request, revision]);
  useEffect(() => {
    if (wanted === sent.current || !subscription.current) return;
    sent.current = wanted;
    setBoard((current) => ({ ...current, ready: false, error: null }));
    subscription.current.update({ ...requestRef.current });
  }, [wanted]);

  return board;
}
