// Follow a live channel from its history: subscribe first, load the history, and apply
// the live messages that came meanwhile after it, so nothing falls between the two.
import type { LiveSocket, ServerMessage } from "./socket";

export interface Follower<H> {
  /** Load the history (aborted when following stops). */
  load(signal: AbortSignal): Promise<H>;
  /** Show the history; the live messages held meanwhile are applied next. */
  history(history: H): void;
  /** Apply one live message. */
  message(message: ServerMessage): void;
  /** The channel refused the subscription: its `error` message's text. */
  refused(message: string): void;
  /** The history failed to load. */
  failed(reason: unknown): void;
}

/** Follow `channel` with `fields`; returns the function that stops following. */
export function follow<H>(live: LiveSocket, channel: string, fields: Record<string, unknown>, follower: Follower<H>): () => void {
  const abort = new AbortController();
  let waiting: ServerMessage[] | null = [];
  const sub = live.subscribe(channel, fields, (message) => {
    if (message.type === "error") follower.refused(String(message.message));
    else if (waiting) waiting.push(message);
    else follower.message(message);
  });
  follower.load(abort.signal).then(
    (history) => {
      follower.history(history);
      const early = waiting ?? [];
      waiting = null;
      early.forEach((message) => follower.message(message));
    },
    (reason: unknown) => {
      if (!abort.signal.aborted) follower.failed(reason);
    },
  );
  return () => {
    abort.abort();
    sub.close();
  };
}
