// The signed-in user's paper accounts on one market, the chosen one followed live: its
// view (balances, positions valued at the mark, open orders), its order history and its
// fills, from REST first, then the WebSocket's `trading` channel.
import { useCallback, useEffect, useMemo, useState } from "react";
import { ApiError } from "../api/client";
import { useReopened } from "../chart/useReopened";
import { follow } from "../live/follow";
import { useSession } from "../session/SessionProvider";
import {
  createAccount,
  getAccount,
  listAccounts,
  listFills,
  listOrders,
  resetAccount,
  type AccountView,
  type Fill,
  type Market,
  type Order,
  type TradingMessage,
} from "./api";
import { upsertOrder, withOrder } from "./orders";

/** Orders and fills of history loaded per account (the tables show the newest). */
export const HISTORY = 100;

export interface Paper {
  /** The user's accounts on this market; null while loading or when signed out. */
  accounts: AccountView[] | null;
  /** The chosen account, as of its latest update. */
  account: AccountView | null;
  /** Its orders, newest first: open ones and history. */
  orders: Order[];
  /** Its fills, newest first. */
  fills: Fill[];
  /** Why the accounts or the live updates cannot be shown, or null. */
  error: string | null;
  select(id: string): void;
  /** Open an account (on the hook's market, or on `market` when it follows every market). */
  create(name: string, balance: string, market?: Market): Promise<AccountView>;
  reset(balance: string): Promise<void>;
  /** Show an order the API answered with at once (its live update follows). */
  track(order: Order): void;
}

const STORE = "tickscan.paper.";

const reason = (error: unknown, fallback: string) => (error instanceof ApiError ? error.message : fallback);

/**
 * The user's paper accounts on `market` of `exchange` (null: every market; any exchange
 * when not given), the chosen one followed live.
 */
export function usePaper(market: Market | null, exchange?: string): Paper {
  const session = useSession();
  const { me, live } = session;
  const reopened = useReopened(live);
  const [accounts, setAccounts] = useState<AccountView[] | null>(null);
  const store = STORE + (market ?? "all");
  const [chosen, setChosen] = useState<string | null>(() => window.localStorage.getItem(store));
  const [account, setAccount] = useState<AccountView | null>(null);
  const [orders, setOrders] = useState<Order[]>([]);
  const [fills, setFills] = useState<Fill[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    setAccounts(null);
    if (!me) return;
    const abort = new AbortController();
    listAccounts(abort.signal).then(
      (all) => setAccounts(all.filter((a) => (market === null || a.market === market) && (exchange === undefined || a.exchange === exchange))),
      (failed: unknown) => {
        if (!abort.signal.aborted) setError(reason(failed, "Cannot load the paper accounts"));
      },
    );
    return () => abort.abort();
  }, [me, market, exchange, reopened]);

  // The chosen account if it is still one of the user's, else the first.
  const id = accounts === null ? null : (accounts.find((a) => a.account_id === chosen) ?? accounts[0])?.account_id ?? null;

  useEffect(() => {
    setAccount(null);
    setOrders([]);
    setFills([]);
    setError(null);
    if (!id) return;
    const apply = (message: TradingMessage) => {
      if (message.type === "account") {
        const view = message.account as AccountView;
        setAccount((current) => (current && current.seq > view.seq ? current : view));
      } else if (message.type === "order") {
        const order = message.order as Order;
        setOrders((current) => upsertOrder(current, order));
        setAccount((current) => (current ? withOrder(current, order) : current));
      } else if (message.type === "fill") {
        const fill = message.fill as Fill;
        setFills((current) => (current.some((f) => f.fill_id === fill.fill_id) ? current : [fill, ...current]));
      }
    };
    return follow(live, "trading", { account: id }, {
      load: (signal) => Promise.all([getAccount(id, signal), listOrders(id, { status: "all", limit: HISTORY }, signal), listFills(id, { limit: HISTORY }, signal)]),
      history: ([view, history, done]) => {
        setAccount(view);
        setOrders(history);
        setFills(done);
      },
      message: (message) => apply(message as unknown as TradingMessage),
      refused: setError,
      failed: (failed) => setError(reason(failed, "Cannot load the paper account")),
    });
  }, [id, live, reopened]);

  const select = useCallback(
    (next: string) => {
      window.localStorage.setItem(store, next);
      setChosen(next);
    },
    [store],
  );

  const create = useCallback(
    async (name: string, balance: string, on?: Market) => {
      const made = await createAccount(name, on ?? market ?? "spot", { USDT: balance });
      setAccounts((current) => [...(current ?? []), made]);
      select(made.account_id);
      return made;
    },
    [market, select],
  );

  const reset = useCallback(
    async (balance: string) => {
      if (!id) return;
      const view = await resetAccount(id, { USDT: balance });
      setAccount(view);
      setAccounts((current) => current?.map((a) => (a.account_id === id ? view : a)) ?? current);
    },
    [id],
  );

  const track = useCallback((order: Order) => {
    setOrders((current) => upsertOrder(current, order));
    setAccount((current) => (current ? withOrder(current, order) : current));
  }, []);

  return useMemo(
    () => ({ accounts, account: account?.account_id === id ? account : null, orders, fills, error, select, create, reset, track }),
    [accounts, account, id, orders, fills, error, select, create, reset, track],
  );
}
