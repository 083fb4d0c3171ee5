// A perpetual's data per bar: samples land on their bar, the settled rate stands, a
// liquidation counts once, and the legend's numbers keep their decimals.
import assert from "node:assert/strict";
import { test } from "node:test";
import { barOf, formatFunding, markerSize, PerpBook } from "./perps";

const T0 = Date.UTC(2026, 2, 7, 8, 0, 0);
const MIN = 60_000;

test("a sample lands on the bar holding it, the latest sample of a bar wins", () => {
  assert.equal(barOf(T0 + 59_999, "1m"), T0);
  assert.equal(barOf(T0 + MIN, "1m"), T0 + MIN);
  assert.equal(barOf(T0 + 3 * 3_600_000, "4h"), T0); // 08:00 opens a 4h bar (UTC)
  const book = new PerpBook("1m");
  book.addOpenInterest({ time_ms: T0 + 5_000, open_interest: "100.5", open_interest_value: "1000" });
  book.addOpenInterest({ time_ms: T0 + 30_000, open_interest: "101", open_interest_value: "1010" });
  assert.deepEqual(book.at(T0).openInterest, { time_ms: T0, open_interest: "101", open_interest_value: "1010" });
  // Every bar's contracts with the same digits: enough for each sample seen.
  assert.equal(book.contracts(book.at(T0).openInterest!), "101.0");
});

test("the rate settled in a bar stands over the estimates published in it", () => {
  const book = new PerpBook("1h");
  book.addEstimate(T0 + 10 * MIN, "0.0002");
  book.addSettled(T0, "0.00011");
  book.addEstimate(T0 + 20 * MIN, "0.0003");
  book.addEstimate(T0 + 20 * MIN, null); // a delivery contract has none: nothing changes
  assert.deepEqual(book.at(T0).funding, { rate: "0.00011", settled: true });
  book.addEstimate(T0 + 61 * MIN, "0.0003");
  assert.deepEqual(book.latestAt(T0 + 2 * 3_600_000).funding, { rate: "0.0003", settled: false });
  assert.equal(book.latestAt(T0 - 1).funding, undefined);
});

test("a liquidation seen in history and live counts once, longs and shorts apart", () => {
  const book = new PerpBook("1m");
  const long = { time_ms: T0 + 1_000, side: "SELL" as const, quote_volume: "200" };
  book.addLiquidation(long);
  book.addLiquidation(long);
  book.addLiquidation({ time_ms: T0 + 2_000, side: "SELL", quote_volume: "50.5" });
  book.addLiquidation({ time_ms: T0 + 2_000, side: "BUY", quote_volume: "10" });
  assert.deepEqual(book.at(T0).liquidations, { long: 250.5, short: 10, longCount: 2, shortCount: 1 });
});

test("funding reads as a percentage with four decimals, markers grow with the volume", () => {
  assert.equal(formatFunding("0.0001"), "0.0100%");
  assert.equal(formatFunding("-0.000075"), "-0.0075%");
  assert.equal(formatFunding("-0.0000001"), "0.0000%");
  assert.equal(markerSize(5_000), 1);
  assert.equal(markerSize(100_000), 2);
  assert.equal(markerSize(1e9), 3);
});
