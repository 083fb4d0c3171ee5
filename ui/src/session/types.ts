// The shapes the API sends: the account, its plan, its board state, and the board's rows.

/** GET /api/v1/me. */
export interface Me {
  id: number;
  email: string | null;
  email_verified: boolean;
  wallet_address: string | null;
  created_at: string;
}

/** How much per-user state the plan allows. */
export interface Limits {
  watchlists: number;
  watchlist_symbols: number;
  presets: number;
}

/** GET /api/v1/me/entitlements (anonymous callers get the free tier). */
export interface Entitlements {
  /** `self_hosted` (billing off: everything), `free`, or a paid plan's id. */
  plan: string;
  /** Of `live_board`, `candles_1s`, `signals`. */
  features: string[];
  limits: Limits;
  /** Seconds the caller's board runs behind the live one (0: live). */
  delay_s: number;
}

export type Window = "1m" | "5m" | "15m" | "1h" | "4h" | "24h";
export type Market = "spot" | "usdm";
export type SortOrder = "asc" | "desc";
export type ConditionOp = ">" | ">=" | "<" | "<=" | "between";

/** Another metric of the same row as a condition's right-hand side: factor × metric + offset. */
export interface MetricRef {
  metric: string;
  window?: Window | null;
  factor?: number;
  offset?: number;
}

/** One comparison of a filter: `change_pct` over `5m` `>=` 3, or `price` `>` `vwap_24h`. */
export interface Condition {
  metric: string;
  window?: Window | null;
  op: ConditionOp;
  value: number | MetricRef;
  value2?: number | MetricRef | null;
}

/** Conditions of which at least one must hold (an OR). */
export interface AnyGroup {
  any: Condition[];
}

/** Quote volume over one window between `min` and `max` (either open). */
export interface VolumeBand {
  window: Window;
  min?: number | null;
  max?: number | null;
}

/** The ScanFilter of GET /api/v1/scan and of a ranks subscription; every part optional. */
export interface ScanFilter {
  /** All must hold. */
  conditions?: Condition[];
  /** Each must hold: at least one of its conditions. */
  groups?: AnyGroup[];
  new_high?: boolean | null;
  new_low?: boolean | null;
  volume?: VolumeBand | null;
  quotes?: string[];
  markets?: Market[];
  exchanges?: string[];
  watch?: string[];
  ignore?: string[];
  sort?: string;
  order?: SortOrder;
  limit?: number;
}

export interface Watchlist {
  id: number;
  name: string;
  /** Bare symbols (`BTCUSDT`: every market) or keys (`binance:usdm:BTCUSDT`). */
  symbols: string[];
  updated_at: string;
}

export interface Preset {
  id: number;
  name: string;
  filter: ScanFilter;
  updated_at: string;
}

/** GET/PUT /api/v1/me/preferences: the board's view. Unknown fields are refused. */
export interface Preferences {
  columns: string[];
  sort: string;
  order: SortOrder;
  interval: string;
  theme: "system" | "light" | "dark";
  density: "comfortable" | "compact";
  watchlist: number | null;
  preset: number | null;
  /** The board's filter as last applied; null until the user applies one. */
  filter: ScanFilter | null;
  hide_ignored: boolean;
}

/** GET /api/v1/me/state: everything a board keeps for its user, as of `version`. */
export interface UserState {
  version: number;
  watchlists: Watchlist[];
  ignored: string[];
  presets: Preset[];
  preferences: Preferences;
}

/** One change of the user's state, as `user_state` and `ack` messages carry it. */
export type StateChange =
  | { kind: "watchlist"; watchlist?: Watchlist; deleted?: number }
  | { kind: "preset"; preset?: Preset; deleted?: number }
  | { kind: "ignored"; ignored: { symbols: string[] } }
  | { kind: "preferences"; preferences: Preferences };

/** One symbol's metrics (schemas/ranks.py RankRow); a metric is null until history covers it. */
export interface RankRow {
  exchange: string;
  market: Market;
  symbol: string;
  /** End of the second these metrics are as of (exchange time, ms). */
  time_ms: number;
  price: number;
  change_pct_1m: number | null;
  change_pct_5m: number | null;
  change_pct_15m: number | null;
  change_pct_1h: number | null;
  change_pct_4h: number | null;
  change_pct_24h: number | null;
  quote_volume_1m: number | null;
  quote_volume_5m: number | null;
  quote_volume_15m: number | null;
  quote_volume_1h: number | null;
  quote_volume_4h: number | null;
  quote_volume_24h: number | null;
  rvol_1m: number | null;
  rvol_5m: number | null;
  rvol_15m: number | null;
  rvol_1h: number | null;
  volatility_1h: number | null;
  rsi_14: number | null;
  vwap_24h: number | null;
  vwap_distance_pct: number | null;
  high_24h: number | null;
  low_24h: number | null;
  from_high_pct: number | null;
  from_low_pct: number | null;
  new_high: boolean;
  new_low: boolean;
  trades_per_min: number | null;
  bid: number | null;
  ask: number | null;
  spread_bps: number | null;
  /** Perpetuals (usdm rows; null on spot rows and until data): see schemas/ranks.py. */
  mark_price: number | null;
  index_price: number | null;
  basis_bps: number | null;
  /** Perp price over its spot pair's, bp (the API's board sets it). */
  premium_bps: number | null;
  funding_rate_pct: number | null;
  funding_last_pct: number | null;
  funding_annual_pct: number | null;
  /** Seconds from time_ms to the next funding time. */
  next_funding_s: number | null;
  open_interest: number | null;
  open_interest_value: number | null;
  oi_change_pct_5m: number | null;
  oi_change_pct_1h: number | null;
  oi_change_pct_4h: number | null;
  oi_change_pct_24h: number | null;
  /** Liquidation quote volume: Binance sends at most one per symbol per second, an undercount. */
  liq_long_5m: number | null;
  liq_long_1h: number | null;
  liq_long_24h: number | null;
  liq_short_5m: number | null;
  liq_short_1h: number | null;
  liq_short_24h: number | null;
  /** Open time of the oldest 1s candle of the unbroken history behind the metrics (null: unknown). */
  history_1s_from_ms: number | null;
  /** The same for 1m candles: with a metric's warm-up, when a null metric will have a value. */
  history_1m_from_ms: number | null;
}

/** The key of a row and of its live messages. */
export function rowKey(row: Pick<RankRow, "exchange" | "market" | "symbol">): string {
  return `${row.exchange}:${row.market}:${row.symbol}`;
}
