// P&L reads signed and toned as it rounds: a gain green, a loss red, a rounded zero neither.
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatAmount, formatIn, formatMarketTime, formatNotional, formatPnl, pnlTone } from "./format";

test("P&L is signed, rounded half away from zero, and a missing value is zero", () => {
  assert.equal(formatPnl("12.345"), "+12.35");
  assert.equal(formatPnl("-0.505"), "-0.51");
  assert.equal(formatPnl("-0.004"), "0.00");
  assert.equal(formatPnl(undefined), "0.00");
  assert.equal(formatPnl("1234.5", 0), "+1235");
  assert.equal(formatPnl("0.000123", 6), "+0.000123");
});

test("the tone follows the rounded value", () => {
  assert.equal(pnlTone("0.01"), "up");
  assert.equal(pnlTone("-3"), "down");
  assert.equal(pnlTone("-0.001"), "");
  assert.equal(pnlTone(undefined), "");
});

test("amounts keep their digits, prices those of the tick", () => {
  assert.equal(formatAmount("10000"), "10000.00");
  assert.equal(formatAmount("9999.999"), "10000.00");
  assert.equal(formatAmount(undefined), "–");
  assert.equal(formatIn("61807.1", 2), "61807.10");
  assert.equal(formatMarketTime(Date.UTC(2026, 2, 7, 14, 5, 9) * 1000 + 123), "2026-03-07 14:05:09");
});

test("a notional under 1 keeps its significant digits", () => {
  assert.equal(formatNotional("1234.5678"), "1234.57");
  assert.equal(formatNotional("0.0017905"), "0.0017905");
  assert.equal(formatNotional("0.000000001"), "0");
});
