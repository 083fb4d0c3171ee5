// The paper-trading API under /api/v1/paper: its JSON shapes (schemas/trading.py's wire
// forms: decimals as strings; an optional field may be left out or null) and one typed
// function per route.
import { api } from "../api/client";

export type Market = "spot" | "usdm";
export type Side = "BUY" | "SELL";
export type OrderType = "market" | "limit" | "stop_market" | "stop_limit" | "take_profit_market";
/** `GTX` is post-only: an order that would take liquidity is rejected. */
export type TimeInForce = "GTC" | "IOC" | "FOK" | "GTX";
export type TriggerPrice = "last" | "mark";
export type OrderStatus = "new" | "partially_filled" | "filled" | "canceled" | "rejected" | "expired";
export type MarginMode = "isolated" | "cross";

export const OPEN_STATUSES: ReadonlySet<OrderStatus> = new Set(["new", "partially_filled"]);

/** What the ticket asks for (OrderRequest without exchange and market). */
export interface OrderBody {
  client_order_id?: string | null;
  symbol: string;
  side: Side;
  type: OrderType;
  time_in_force?: TimeInForce;
  quantity?: string | null;
  quote_quantity?: string | null;
  price?: string | null;
  stop_price?: string | null;
  trigger?: TriggerPrice;
  reduce_only?: boolean;
}

export interface OrderRequest extends OrderBody {
  client_order_id: string;
  exchange: string;
  market: Market;
}

export interface Order {
  account_id: string;
  order_id: number;
  request: OrderRequest;
  status: OrderStatus;
  created_us: number;
  updated_us: number;
  filled_qty?: string | null;
  filled_quote?: string | null;
  fees?: string | null;
  fee_asset?: string | null;
  triggered?: boolean;
  /** The working quantity, price and stop price (an amend may change them). */
  quantity?: string | null;
  price?: string | null;
  stop_price?: string | null;
  reason?: string | null;
  code?: number | null;
}

export interface Fill {
  account_id: string;
  fill_id: number;
  order_id: number;
  client_order_id: string;
  exchange: string;
  market: Market;
  symbol: string;
  side: Side;
  price: string;
  qty: string;
  quote_qty: string;
  fee: string;
  fee_asset: string;
  liquidity: "maker" | "taker";
  time_us: number;
  reference_price?: string | null;
  slippage?: string | null;
  realized_pnl?: string | null;
  liquidation?: boolean;
}

export interface Position {
  exchange: string;
  symbol: string;
  qty: string;
  entry_price: string;
  leverage: number;
  margin_mode: MarginMode;
  isolated_margin?: string | null;
  mark_price?: string | null;
  unrealized_pnl?: string | null;
  realized_pnl?: string | null;
  fees?: string | null;
  funding?: string | null;
  maintenance_margin?: string | null;
  liquidation_price?: string | null;
}

export interface Balance {
  asset: string;
  free: string;
  locked?: string | null;
}

export interface AccountView {
  account_id: string;
  owner: string;
  name: string;
  market: Market;
  exchange: string;
  venue: "paper" | "binance";
  seq: number;
  time_us: number;
  balances: Balance[];
  positions: Position[];
  open_orders: Order[];
  equity: string;
  unrealized_pnl?: string | null;
  realized_pnl?: string | null;
  fees?: string | null;
  funding?: string | null;
  margin_balance?: string | null;
  maintenance_margin?: string | null;
  available?: string | null;
}

export interface EquityPoint {
  time_ms: number;
  equity: string;
}

/** A message of the live `trading` channel. */
export type TradingMessage =
  | { type: "order"; order: Order }
  | { type: "fill"; fill: Fill }
  | { type: "account"; account: AccountView }
  | { type: "funding" | "liquidation"; [field: string]: unknown };

/** The working quantity, price and stop price of an order (after amends). */
export const workingQuantity = (order: Order) => order.quantity ?? order.request.quantity ?? "0";
export const workingPrice = (order: Order) => order.price ?? order.request.price ?? undefined;
export const workingStop = (order: Order) => order.stop_price ?? order.request.stop_price ?? undefined;
export const isOpen = (order: Order) => OPEN_STATUSES.has(order.status);

const ROOT = "/api/v1/paper/accounts";
const account = (id: string) => `${ROOT}/${encodeURIComponent(id)}`;

/** A client order id: the idempotency key of a placement (1 to 36 characters). */
export function newClientOrderId(): string {
  return `ui-${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;
}

export const listAccounts = (signal?: AbortSignal) => api<AccountView[]>(ROOT, { signal });

export const getAccount = (id: string, signal?: AbortSignal) => api<AccountView>(account(id), { signal });

export const createAccount = (name: string, market: Market, balances?: Record<string, string>) =>
  api<AccountView>(ROOT, { method: "POST", body: { name, market, balances } });

export const resetAccount = (id: string, balances?: Record<string, string>) =>
  api<AccountView>(`${account(id)}/reset`, { method: "POST", body: { balances } });

/** Place an order; a rejection throws an ApiError whose message is Binance's reason. */
export const placeOrder = (id: string, order: OrderBody) =>
  api<Order>(`${account(id)}/orders`, { method: "POST", body: { client_order_id: newClientOrderId(), ...order } });

export const amendOrder = (id: string, clientOrderId: string, change: { price?: string; stop_price?: string; quantity?: string }) =>
  api<Order>(`${account(id)}/orders/${encodeURIComponent(clientOrderId)}`, { method: "PATCH", body: change });

export const cancelOrder = (id: string, clientOrderId: string) =>
  api<Order>(`${account(id)}/orders/${encodeURIComponent(clientOrderId)}`, { method: "DELETE" });

export const cancelAll = (id: string, symbol?: string) =>
  api<Order[]>(`${account(id)}/orders`, { method: "DELETE", query: { symbol } });

export const listOrders = (id: string, query: { status?: "open" | "all"; symbol?: string; limit?: number }, signal?: AbortSignal) =>
  api<Order[]>(`${account(id)}/orders`, { query, signal });

export const listFills = (id: string, query: { symbol?: string; limit?: number }, signal?: AbortSignal) =>
  api<Fill[]>(`${account(id)}/fills`, { query, signal });

export const listPositions = (id: string, signal?: AbortSignal) => api<Position[]>(`${account(id)}/positions`, { signal });

export const closePosition = (id: string, symbol: string) =>
  api<Order[]>(`${account(id)}/positions/${encodeURIComponent(symbol)}/close`, { method: "POST" });

export const closeAll = (id: string) => api<Order[]>(`${account(id)}/positions/close`, { method: "POST" });

export const setLeverage = (id: string, symbol: string, leverage: number, margin_mode: MarginMode) =>
  api<Position>(`${account(id)}/leverage/${encodeURIComponent(symbol)}`, { method: "PUT", body: { leverage, margin_mode } });

export const getEquity = (id: string, query: { from?: number; to?: number }, signal?: AbortSignal) =>
  api<EquityPoint[]>(`${account(id)}/equity`, { query, signal });
