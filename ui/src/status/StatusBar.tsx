// One fixed-height line: the live connection, whether the data is simulated or delayed, and
// who is signed in. Everything sits on that line, so nothing below moves when it changes.
import { useEffect, useState } from "react";
import { api } from "../api/client";
import { formatWait, isComplete } from "../board/warmup";
import type { ConnectionState } from "../live/socket";
import { useConnectionState } from "../live/useConnection";
import { followLink, navigate } from "../router";
import { useSession } from "../session/SessionProvider";
import { useBoardWarmup } from "./boardStatus";
import "./status.css";

/** What the connection is called: "open" read like a market that is open. */
const CONNECTION_LABELS: Record<ConnectionState, string> = {
  connecting: "connecting",
  open: "connected",
  reconnecting: "offline",
  closed: "offline",
};

const CONNECTION_TITLES: Record<ConnectionState, string> = {
  connecting: "Connecting to the live feed",
  open: "Live feed connected",
  reconnecting: "Live feed lost: reconnecting",
  closed: "Live feed closed",
};

/** The symbol directory is refreshed from ClickHouse while the server runs: look again. */
const SIM_CHECK_EVERY_MS = 60_000;

interface SymbolsAnswer {
  symbols: unknown[];
}

/**
 * Whether the server lists symbols of the simulator (exchange `sim`): its data must never
 * pass for an exchange's. Asked until the answer is yes; a server without a symbol
 * directory yet (503) is asked again later.
 */
function useSimulated(): boolean {
  const [simulated, setSimulated] = useState(false);
  useEffect(() => {
    if (simulated) return;
    const abort = new AbortController();
    const check = () =>
      api<SymbolsAnswer>("/api/v1/symbols", { query: { exchange: "sim" }, signal: abort.signal }).then(
        (answer) => setSimulated(answer.symbols.length > 0),
        () => undefined,
      );
    void check();
    const timer = window.setInterval(check, SIM_CHECK_EVERY_MS);
    return () => {
      abort.abort();
      window.clearInterval(timer);
    };
  }, [simulated]);
  return simulated;
}

function shortWallet(address: string): string {
  return `${address.slice(0, 6)}…${address.slice(-4)}`;
}

function UserMenu() {
  const session = useSession();
  const [leaving, setLeaving] = useState(false);
  const { me } = session;
  if (session.loading) return <span className="status-user" aria-hidden="true" />;
  if (!me) {
    return (
      <nav className="status-user" aria-label="Account">
        <a href="/login" onClick={followLink} data-testid="login-link">
          Log in
        </a>
        <a href="/signup" onClick={followLink} className="status-signup" data-testid="signup-link">
          Sign up
        </a>
      </nav>
    );
  }
  const logOut = async () => {
    setLeaving(true);
    try {
      await session.signOut();
      navigate("/");
    } finally {
      setLeaving(false);
    }
  };
  const name = me.email ?? (me.wallet_address ? shortWallet(me.wallet_address) : `user ${me.id}`);
  return (
    <nav className="status-user" aria-label="Account" data-testid="user-menu">
      <a href="/account" onClick={followLink} className="status-name" title={me.email ?? me.wallet_address ?? undefined}>
        {name}
      </a>
      <a href="/paper" onClick={followLink} data-testid="paper-menu-link">
        Paper
      </a>
      <a href="/billing" onClick={followLink}>
        Billing
      </a>
      <button type="button" className="status-logout" data-testid="logout" onClick={logOut} disabled={leaving}>
        Log out
      </button>
    </nav>
  );
}

/** "warming up" while the board's columns still wait for history, and until when. */
function WarmupFlag() {
  const warmup = useBoardWarmup();
  if (warmup === null || isComplete(warmup.summary)) return null;
  const { summary, nowMs } = warmup;
  const left = summary.doneAtMs === null ? null : summary.doneAtMs - nowMs;
  const title =
    `${summary.warming} of ${summary.rows} symbols still gather the history their columns need` +
    (left === null ? "" : `; the last column fills in ${formatWait(left)}`);
  return (
    <span className="status-flag warming" data-testid="status-warmup" title={title}>
      warming up{left === null ? "" : ` · ${formatWait(left)}`}
    </span>
  );
}

export function StatusBar() {
  const { entitlements, has } = useSession();
  const connection = useConnectionState(useSession().live);
  const simulated = useSimulated();
  const delayed = entitlements !== null && entitlements.delay_s > 0 && !has("live_board");
  return (
    <div className="status-bar">
      <span className={`status-connection ${connection}`} role="status" data-testid="status-connection" title={CONNECTION_TITLES[connection]}>
        <span className="status-dot" aria-hidden="true" />
        {CONNECTION_LABELS[connection]}
      </span>
      <WarmupFlag />
      {simulated && (
        <span className="status-flag sim" data-testid="sim-banner" title="The server runs the synthetic market (exchange sim), not a real exchange">
          Simulated data
        </span>
      )}
      {delayed && (
        <span className="status-flag delay" data-testid="delay-banner">
          Board delayed {entitlements.delay_s} s ·{" "}
          <a href="/billing" onClick={followLink}>
            go live
          </a>
        </span>
      )}
      <span className="status-spacer" />
      <UserMenu />
    </div>
  );
}
