// The order ticket's rules, pure: which fields an order type takes, and the symbol's
// filters (tick size, lot step, min and max quantity, min notional) checked before the
// order is sent, with Binance's filter names in the messages.
import type { Market, OrderBody, OrderType, Side, TimeInForce, TriggerPrice } from "./api";
import { compare, isDecimal, multiply, onStep } from "./decimal";

/** A symbol as GET /api/v1/symbols describes it (filters are null when the exchange sets none). */
export interface SymbolFilters {
  exchange: string;
  market: Market;
  symbol: string;
  base_asset: string;
  quote_asset: string;
  tick_size?: string | null;
  step_size?: string | null;
  min_qty?: string | null;
  max_qty?: string | null;
  market_max_qty?: string | null;
  min_notional?: string | null;
}

/** What the ticket holds while the trader types. */
export interface TicketForm {
  side: Side;
  type: OrderType;
  /** Whether `amount` is in the base asset (quantity) or the quote asset (market orders only). */
  amountIn: "base" | "quote";
  amount: string;
  price: string;
  stopPrice: string;
  trigger: TriggerPrice;
  timeInForce: TimeInForce;
  reduceOnly: boolean;
}

export const EMPTY_TICKET: TicketForm = {
  side: "BUY",
  type: "limit",
  amountIn: "base",
  amount: "",
  price: "",
  stopPrice: "",
  trigger: "last",
  timeInForce: "GTC",
  reduceOnly: false,
};

export const ORDER_TYPES: readonly { value: OrderType; label: string }[] = [
  { value: "limit", label: "Limit" },
  { value: "market", label: "Market" },
  { value: "stop_market", label: "Stop market" },
  { value: "stop_limit", label: "Stop limit" },
  { value: "take_profit_market", label: "Take profit" },
];

export const TIMES_IN_FORCE: readonly { value: TimeInForce; label: string }[] = [
  { value: "GTC", label: "GTC" },
  { value: "IOC", label: "IOC" },
  { value: "FOK", label: "FOK" },
  { value: "GTX", label: "Post only" },
];

/** Whether an order type takes a limit price, a stop price, a time in force, a quote amount. */
export const takesPrice = (type: OrderType) => type === "limit" || type === "stop_limit";
export const takesStop = (type: OrderType) => type === "stop_market" || type === "stop_limit" || type === "take_profit_market";
export const takesTimeInForce = takesPrice;
export const takesQuoteAmount = (type: OrderType) => type === "market";

export type TicketField = "amount" | "price" | "stopPrice";

export interface TicketCheck {
  /** Why a field cannot be sent, by field; empty when the order may go. */
  errors: Partial<Record<TicketField, string>>;
  /** The request to send, when there is no error. */
  body: OrderBody | null;
  /** Price × quantity in the quote asset, when both are known. */
  notional: string | null;
}

function positive(text: string): boolean {
  return isDecimal(text) && compare(text, "0") > 0;
}

/** Why `price` breaks the symbol's PRICE_FILTER, or null. */
function priceError(price: string, filters: SymbolFilters, what: string): string | null {
  if (price.trim() === "") return `Enter a ${what}.`;
  if (!positive(price)) return `The ${what} must be a positive number.`;
  const tick = filters.tick_size;
  if (tick && !onStep(price, tick)) return `Filter failure: PRICE_FILTER (the ${what} must be a multiple of the tick size ${tick}).`;
  return null;
}

/** Why a base quantity breaks LOT_SIZE (or MARKET_LOT_SIZE for a market order), or null. */
function quantityError(qty: string, filters: SymbolFilters, market: boolean): string | null {
  const step = filters.step_size;
  if (step && !onStep(qty, step)) return `Filter failure: LOT_SIZE (the quantity must be a multiple of the step size ${step}).`;
  if (filters.min_qty && compare(qty, filters.min_qty) < 0) return `Filter failure: LOT_SIZE (the quantity must be at least ${filters.min_qty}).`;
  if (filters.max_qty && compare(qty, filters.max_qty) > 0) return `Filter failure: LOT_SIZE (the quantity must be at most ${filters.max_qty}).`;
  if (market && filters.market_max_qty && compare(qty, filters.market_max_qty) > 0) {
    return `Filter failure: MARKET_LOT_SIZE (a market order's quantity must be at most ${filters.market_max_qty}).`;
  }
  return null;
}

/**
 * Check the ticket against the symbol's filters and build the request. `lastPrice` values
 * a market or stop order's notional (the exchange checks it against the price it fills
 * at); a reduce-only order is exempt from the minimum notional, as on Binance.
 */
export function checkTicket(form: TicketForm, filters: SymbolFilters, lastPrice?: string | null): TicketCheck {
  const errors: TicketCheck["errors"] = {};
  const { type } = form;
  const amount = form.amount.trim();
  const quote = form.amountIn === "quote" && takesQuoteAmount(type);
  const unit = quote ? filters.quote_asset : filters.base_asset;
  if (amount === "") errors.amount = `Enter an amount in ${unit}.`;
  else if (!positive(amount)) errors.amount = "The amount must be a positive number.";
  else if (!quote) errors.amount = quantityError(amount, filters, type === "market") ?? undefined;

  const price = form.price.trim();
  const stop = form.stopPrice.trim();
  if (takesPrice(type)) errors.price = priceError(price, filters, "price") ?? undefined;
  if (takesStop(type)) errors.stopPrice = priceError(stop, filters, "stop price") ?? undefined;

  let notional: string | null = null;
  if (!errors.amount && amount !== "") {
    if (quote) notional = amount;
    else {
      const at = takesPrice(type) ? (errors.price ? null : price) : takesStop(type) && !errors.stopPrice ? stop : lastPrice;
      if (at && isDecimal(at)) notional = multiply(amount, at);
    }
  }
  const exempt = form.reduceOnly && filters.market === "usdm";
  if (!errors.amount && notional !== null && filters.min_notional && !exempt && compare(notional, filters.min_notional) < 0) {
    errors.amount = `Filter failure: NOTIONAL (price × quantity must be at least ${filters.min_notional} ${filters.quote_asset}).`;
  }
  for (const key of Object.keys(errors) as TicketField[]) if (errors[key] === undefined) delete errors[key];
  if (Object.keys(errors).length > 0) return { errors, body: null, notional };

  const body: OrderBody = { symbol: filters.symbol, side: form.side, type };
  if (quote) body.quote_quantity = amount;
  else body.quantity = amount;
  if (takesPrice(type)) body.price = price;
  if (takesStop(type)) {
    body.stop_price = stop;
    if (filters.market === "usdm") body.trigger = form.trigger;
  }
  if (takesTimeInForce(type)) body.time_in_force = form.timeInForce;
  if (form.reduceOnly && filters.market === "usdm") body.reduce_only = true;
  return { errors, body, notional };
}
