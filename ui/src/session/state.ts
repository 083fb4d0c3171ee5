// Applying one change of the user's state (a `user_state`/`ack` message or a REST answer).
import type { StateChange, UserState } from "./types";

function upsert<T extends { id: number }>(items: T[], item: T): T[] {
  const at = items.findIndex((existing) => existing.id === item.id);
  if (at < 0) return [...items, item];
  const next = items.slice();
  next[at] = item;
  return next;
}

/**
 * The state after `change`. Each change carries the whole new object (or the deleted id),
 * so applying the same change twice — a REST answer, then its `user_state` — is harmless.
 */
export function applyChange(state: UserState, change: StateChange): UserState {
  switch (change.kind) {
    case "watchlist":
      if (change.watchlist) return { ...state, watchlists: upsert(state.watchlists, change.watchlist) };
      return { ...state, watchlists: state.watchlists.filter((list) => list.id !== change.deleted) };
    case "preset":
      if (change.preset) return { ...state, presets: upsert(state.presets, change.preset) };
      return { ...state, presets: state.presets.filter((preset) => preset.id !== change.deleted) };
    case "ignored":
      return { ...state, ignored: change.ignored.symbols };
    case "preferences":
      return { ...state, preferences: change.preferences };
  }
}
