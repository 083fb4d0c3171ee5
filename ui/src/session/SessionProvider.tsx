// The signed-in user (or none), their plan and board state, and the tab's live socket.
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { api, ApiError } from "../api/client";
import { LiveSocket, type ServerMessage } from "../live/socket";
import { applyChange } from "./state";
import type { Entitlements, Me, StateChange, UserState } from "./types";

export interface Session {
  me: Me | null;
  /** True until the first answer of /me: the UI does not flash "log in" at a signed-in user. */
  loading: boolean;
  entitlements: Entitlements | null;
  state: UserState | null;
  live: LiveSocket;
  /** After a login in this tab: reload the user and sign the live socket in. */
  signedIn(): Promise<void>;
  signOut(): Promise<void>;
  has(feature: string): boolean;
  /** Show a change made through REST at once (its `user_state` follows and is a no-op). */
  apply(change: StateChange): void;
}

const SessionContext = createContext<Session | null>(null);

let tabSocket: LiveSocket | null = null;

/** One socket per tab, made on first use (StrictMode renders twice; a ref would open two). */
function liveSocket(): LiveSocket {
  tabSocket ??= new LiveSocket();
  return tabSocket;
}

/** Set by the server beside the session cookies (which the page cannot read), cleared at
 * log-out: without it nobody is signed in, and asking would only log two 401s. */
function maybeSignedIn(): boolean {
  return document.cookie.split(";").some((part) => part.trim().startsWith("ts_signed_in="));
}

async function fetchMe(): Promise<Me | null> {
  if (!maybeSignedIn()) return null;
  try {
    return await api<Me>("/api/v1/me");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      // The session ended (expired, revoked, logged out elsewhere): stop asking.
      document.cookie = "ts_signed_in=; Max-Age=0; path=/; SameSite=Lax";
      return null;
    }
    throw error;
  }
}

/** A signed-in connection that lost its sign-in retries at most this often. */
const REAUTH_EVERY_MS = 60_000;

export function SessionProvider({ children }: { children: ReactNode }) {
  const live = liveSocket();
  const [me, setMe] = useState<Me | null>(null);
  const [loading, setLoading] = useState(true);
  const [entitlements, setEntitlements] = useState<Entitlements | null>(null);
  const [state, setStateValue] = useState<UserState | null>(null);
  // Messages are handled outside render, so they read the current state from here.
  const stateRef = useRef<UserState | null>(null);
  const meRef = useRef<Me | null>(null);
  const lastReauth = useRef(0);

  const setState = useCallback((next: UserState | null) => {
    stateRef.current = next;
    setStateValue(next);
  }, []);

  const reloadState = useCallback(async () => {
    try {
      setState(await api<UserState>("/api/v1/me/state"));
    } catch {
      // Signed out meanwhile, or the API is down: the next user_state or sign-in reloads.
    }
  }, [setState]);

  const load = useCallback(async () => {
    let user: Me | null = null;
    try {
      user = await fetchMe();
    } catch {
      // The API is unreachable: show the board anonymously; the status bar shows the socket.
    }
    const [plan, userState] = await Promise.all([
      api<Entitlements>("/api/v1/me/entitlements").catch(() => null),
      user ? api<UserState>("/api/v1/me/state").catch(() => null) : Promise.resolve(null),
    ]);
    meRef.current = user;
    setMe(user);
    setEntitlements(plan);
    setState(userState);
    setLoading(false);
  }, [setState]);

  useEffect(() => {
    void load();
  }, [load]);

  useEffect(() => {
    const onChange = (version: number, change: StateChange) => {
      const current = stateRef.current;
      if (!current || version <= current.version) return;
      if (version > current.version + 1) void reloadState();
      else setState({ ...applyChange(current, change), version });
    };
    return live.onMessage((message: ServerMessage) => {
      if (message.type === "user_state" || message.type === "ack") {
        onChange(message.version as number, message.change as StateChange);
      } else if (message.type === "authenticated") {
        const current = stateRef.current;
        if (!current || (message.version as number) > current.version) void reloadState();
      } else if (message.type === "error" && message.code === "unauthorized" && message.id === undefined) {
        // The handshake's access cookie had expired: refresh it (api does) and reconnect.
        const now = Date.now();
        if (meRef.current && now - lastReauth.current > REAUTH_EVERY_MS) {
          lastReauth.current = now;
          void fetchMe().then((user) => user && live.reconnect()).catch(() => undefined);
        }
      }
    });
  }, [live, reloadState, setState]);

  const signedIn = useCallback(async () => {
    await load();
    live.reconnect();
  }, [load, live]);

  const signOut = useCallback(async () => {
    await api("/api/v1/auth/logout", { method: "POST" }).catch(() => undefined);
    await load();
    live.reconnect();
  }, [load, live]);

  const apply = useCallback(
    (change: StateChange) => {
      const current = stateRef.current;
      if (current) setState(applyChange(current, change));
    },
    [setState],
  );

  const session = useMemo<Session>(
    () => ({
      me,
      loading,
      entitlements,
      state,
      live,
      signedIn,
      signOut,
      has: (feature) => entitlements?.features.includes(feature) ?? false,
      apply,
    }),
    [me, loading, entitlements, state, live, signedIn, signOut, apply],
  );
  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside <SessionProvider>");
  return session;
}
