// The ticket refuses what the exchange's filters would, with the filter's name, and sends
// exactly the fields an order type takes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkTicket, EMPTY_TICKET, type SymbolFilters, type TicketForm } from "./ticket";

const BTC: SymbolFilters = {
  exchange: "sim",
  market: "usdm",
  symbol: "BTCUSDT",
  base_asset: "BTC",
  quote_asset: "USDT",
  tick_size: "0.10",
  step_size: "0.001",
  min_qty: "0.001",
  max_qty: "1000",
  market_max_qty: "120",
  min_notional: "100",
};

const form = (change: Partial<TicketForm>): TicketForm => ({ ...EMPTY_TICKET, ...change });

test("a limit order on the tick and step goes out with its price and time in force", () => {
  const check = checkTicket(form({ amount: "0.010", price: "61807.1", timeInForce: "GTX" }), BTC);
  assert.deepEqual(check.errors, {});
  assert.deepEqual(check.body, { symbol: "BTCUSDT", side: "BUY", type: "limit", quantity: "0.010", price: "61807.1", time_in_force: "GTX" });
  assert.equal(check.notional, "618.071");
});

test("off-tick prices and off-step quantities are refused with the filter's name", () => {
  const check = checkTicket(form({ amount: "0.0105", price: "61807.15" }), BTC);
  assert.match(check.errors.amount!, /^Filter failure: LOT_SIZE/);
  assert.match(check.errors.price!, /^Filter failure: PRICE_FILTER/);
  assert.equal(check.body, null);
  assert.match(checkTicket(form({ amount: "2000", price: "1" }), BTC).errors.amount!, /at most 1000/);
  assert.match(checkTicket(form({ type: "market", amount: "121" }), BTC, "60000").errors.amount!, /^Filter failure: MARKET_LOT_SIZE/);
});

test("the minimum notional counts price × quantity, except for a reduce-only order", () => {
  const small = form({ amount: "0.001", price: "61807.1" });
  assert.match(checkTicket(small, BTC).errors.amount!, /^Filter failure: NOTIONAL .*100 USDT/);
  assert.deepEqual(checkTicket({ ...small, reduceOnly: true }, BTC).errors, {});
  // A market order is valued at the last price; unknown, the API decides.
  assert.match(checkTicket(form({ type: "market", amount: "0.001" }), BTC, "61807.1").errors.amount!, /NOTIONAL/);
  assert.deepEqual(checkTicket(form({ type: "market", amount: "0.001" }), BTC, null).errors, {});
});

test("each type takes its own fields: stops their trigger, market orders a quote amount", () => {
  const stop = checkTicket(form({ type: "stop_market", side: "SELL", amount: "0.01", stopPrice: "60000", trigger: "mark", price: "1" }), BTC);
  assert.deepEqual(stop.body, { symbol: "BTCUSDT", side: "SELL", type: "stop_market", quantity: "0.01", stop_price: "60000", trigger: "mark" });
  const quote = checkTicket(form({ type: "market", amountIn: "quote", amount: "250" }), BTC);
  assert.deepEqual(quote.body, { symbol: "BTCUSDT", side: "BUY", type: "market", quote_quantity: "250" });
  assert.match(checkTicket(form({ type: "stop_limit", amount: "0.01", price: "60000" }), BTC).errors.stopPrice!, /Enter a stop price/);
  // A limit order ignores a quote-amount choice: its amount is a quantity.
  assert.equal(checkTicket(form({ amountIn: "quote", amount: "250", price: "1" }), BTC).body?.quantity, "250");
});

test("spot orders never carry reduce-only or a mark trigger", () => {
  const spot: SymbolFilters = { ...BTC, market: "spot", min_notional: "5" };
  const check = checkTicket(form({ type: "stop_market", amount: "0.01", stopPrice: "60000", trigger: "mark", reduceOnly: true }), spot);
  assert.deepEqual(check.body, { symbol: "BTCUSDT", side: "BUY", type: "stop_market", quantity: "0.01", stop_price: "60000" });
  assert.match(checkTicket(form({ amount: "abc", price: "-1" }), spot).errors.amount!, /positive number/);
  assert.match(checkTicket(form({ amount: "", price: "" }), spot).errors.price!, /Enter a price/);
});
