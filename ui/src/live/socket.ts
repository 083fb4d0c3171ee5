// One WebSocket to /api/v1/ws per tab: subscriptions that survive reconnects, and its state.

/** A server message: `type`, the subscription `id` it concerns, and its fields. */
export interface ServerMessage {
  type: string;
  id?: string;
  [field: string]: unknown;
}

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

type Handler = (message: ServerMessage) => void;

/** A live subscription: change its fields (a new filter) or end it. */
export interface LiveSubscription {
  readonly id: string;
  update(fields: Record<string, unknown>): void;
  close(): void;
}

interface Subscription {
  /** The `subscribe` op without its id (re-sent after every reconnect). */
  op: Record<string, unknown>;
  handler: Handler;
}

const PING_EVERY_MS = 20_000;
const BACKOFF_MAX_MS = 15_000;

/**
 * The live connection. `subscribe` returns an unsubscribe function; every subscription is
 * sent again after a reconnect, so the server sends it a fresh snapshot. Messages without
 * a subscription id (`user_state`, `authenticated`, errors of ops) go to `onMessage`
 * listeners. The browser sends the session cookie with the handshake, which signs the
 * connection in.
 */
export class LiveSocket {
  private socket: WebSocket | null = null;
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly listeners = new Set<Handler>();
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();
  private nextId = 1;
  private attempt = 0;
  private pinger: number | undefined;
  private stopped = false;
  state: ConnectionState = "connecting";

  constructor(private readonly url: string = LiveSocket.defaultUrl()) {
    this.connect();
  }

  static defaultUrl(): string {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${window.location.host}/api/v1/ws`;
  }

  /** Follow a channel (`ranks`, `candles`, `signals`) with these fields. */
  subscribe(channel: string, fields: Record<string, unknown>, handler: Handler): LiveSubscription {
    const id = `u${this.nextId++}`;
    const sub: Subscription = { op: { op: "subscribe", channel, ...fields }, handler };
    this.subscriptions.set(id, sub);
    this.send({ ...sub.op, id });
    return {
      id,
      update: (next) => {
        if (!this.subscriptions.has(id)) return;
        sub.op = { op: "subscribe", channel, ...next };
        if (channel === "ranks") {
          // A new filter on the same subscription: the server answers with a snapshot.
          this.send({ op: "filter", id, filter: next.filter ?? {}, watchlist: next.watchlist, ignored: next.ignored });
        } else {
          this.send({ op: "unsubscribe", id });
          this.send({ ...sub.op, id });
        }
      },
      close: () => {
        if (this.subscriptions.delete(id)) this.send({ op: "unsubscribe", id });
      },
    };
  }

  /** Send any op now (dropped while disconnected: subscriptions are re-sent on reconnect). */
  send(op: Record<string, unknown>): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(op));
  }

  onMessage(listener: Handler): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onState(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    listener(this.state);
    return () => this.stateListeners.delete(listener);
  }

  /** Sign the open connection in again (after a login in this tab). */
  reconnect(): void {
    this.socket?.close(1000, "reconnect");
  }

  close(): void {
    this.stopped = true;
    window.clearInterval(this.pinger);
    this.socket?.close(1000, "closed");
    this.setState("closed");
  }

  private connect(): void {
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      this.setState("open");
      for (const [id, sub] of this.subscriptions) socket.send(JSON.stringify({ ...sub.op, id }));
      this.pinger = window.setInterval(() => this.send({ op: "ping" }), PING_EVERY_MS);
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data as string) as ServerMessage;
      const sub = message.id === undefined ? undefined : this.subscriptions.get(message.id);
      if (sub) sub.handler(message);
      else for (const listener of this.listeners) listener(message);
    };
    socket.onclose = () => {
      window.clearInterval(this.pinger);
      if (this.stopped) return;
      this.setState("reconnecting");
      const delay = Math.min(BACKOFF_MAX_MS, 500 * 2 ** this.attempt++) * (0.5 + Math.random());
      window.setTimeout(() => this.connect(), delay);
    };
  }

  private setState(state: ConnectionState): void {
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }
}
