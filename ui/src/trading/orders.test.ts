// Live order updates merge in market-time order, whatever order they arrive in, and the
// chart's lines follow the account.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { AccountView, Order } from "./api";
import { LINE_COLOURS, stepPrice, tradeLines } from "./lines";
import { equityPoints, upsertOrder, withOrder } from "./orders";

const order = (id: number, change: Partial<Order> = {}): Order => ({
  account_id: "a1",
  order_id: id,
  request: { client_order_id: `c${id}`, exchange: "sim", market: "usdm", symbol: "AAAUSDT", side: "BUY", type: "limit", quantity: "2", price: "100.5" },
  status: "new",
  created_us: 1_000,
  updated_us: 1_000,
  ...change,
});

const view = (change: Partial<AccountView> = {}): AccountView => ({
  account_id: "a1",
  owner: "u1",
  name: "Perps 1",
  market: "usdm",
  exchange: "sim",
  venue: "paper",
  seq: 3,
  time_us: 2_000,
  balances: [{ asset: "USDT", free: "10000" }],
  positions: [],
  open_orders: [],
  equity: "10000",
  ...change,
});

test("an order update replaces its older self, never a later one", () => {
  const filled = order(1, { status: "filled", filled_qty: "2", updated_us: 1_000 });
  let orders = upsertOrder([], order(2));
  orders = upsertOrder(orders, order(1));
  assert.deepEqual(orders.map((o) => o.order_id), [2, 1]);
  orders = upsertOrder(orders, filled);
  assert.equal(orders[1].status, "filled");
  // The placement's answer (new, same market time) arriving after its fill changes nothing.
  assert.equal(upsertOrder(orders, order(1))[1].status, "filled");
  assert.equal(upsertOrder(orders, order(1, { status: "canceled", updated_us: 900 }))[1].status, "filled");
});

test("open orders follow status, and an update older than the view is ignored", () => {
  const resting = withOrder(view(), order(1, { updated_us: 2_000 }));
  assert.deepEqual(resting.open_orders.map((o) => o.order_id), [1]);
  const gone = withOrder(resting, order(1, { status: "canceled", updated_us: 2_500 }));
  assert.deepEqual(gone.open_orders, []);
  // The view at 2,000 no longer lists an order accepted at 1,000: it filled meanwhile.
  assert.deepEqual(withOrder(view(), order(1)).open_orders, []);
});

test("the chart draws the entry, the liquidation price and each resting price", () => {
  const account = view({
    positions: [{ exchange: "sim", symbol: "AAAUSDT", qty: "-3", entry_price: "101", leverage: 20, margin_mode: "isolated", unrealized_pnl: "-1.5", liquidation_price: "105.2" }],
    open_orders: [
      order(4, { request: { ...order(4).request, type: "stop_limit", side: "SELL", stop_price: "99", price: "98.5" } }),
      order(2),
      order(5, { request: { ...order(5).request, symbol: "BBBUSDT" } }),
    ],
  });
  const lines = tradeLines(account, "AAAUSDT");
  assert.deepEqual(
    lines.map((l) => [l.id, l.price, l.title]),
    [
      ["entry", "101", "Short 3 -1.50"],
      ["liq", "105.2", "Liq."],
      ["order:c2:price", "100.5", "Buy 2"],
      ["order:c4:stop", "99", "Sell stop 2"],
      ["order:c4:price", "98.5", "Sell 2"],
    ],
  );
  assert.equal(lines[0].color, LINE_COLOURS.entryShort);
  assert.equal(lines[2].amend?.field, "price");
  assert.equal(lines[3].amend?.field, "stop_price");
  assert.equal(lines[0].amend, undefined);
  // An amended order is drawn at its working price; a flat position draws nothing.
  const amended = view({ open_orders: [order(2, { price: "100.7" })], positions: [{ ...account.positions[0], qty: "0" }] });
  assert.deepEqual(tradeLines(amended, "AAAUSDT").map((l) => l.price), ["100.7"]);
});

test("the equity curve keeps the last point of each second, in time order", () => {
  const points = equityPoints([
    { time_ms: 61_500, equity: "10001.5" },
    { time_ms: 60_000, equity: "10000" },
    { time_ms: 61_900, equity: "10002" },
  ]);
  assert.deepEqual(points, [
    { time: 60, value: 10000 },
    { time: 61, value: 10002 },
  ]);
});

test("a line moved by keyboard steps on the tick grid and never to zero", () => {
  assert.equal(stepPrice("100.5", "0.1", 1), "100.6");
  assert.equal(stepPrice("100.55", "0.1", -10), "99.6"); // off-grid: lands back on it
  assert.equal(stepPrice("0.2", "0.1", -10), "0.2");
});
