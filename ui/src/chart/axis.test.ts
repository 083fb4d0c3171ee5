// Chart labels per interval, short histories from the left, one precision per legend.
import assert from "node:assert/strict";
import { test } from "node:test";
import { crosshairLabel, fixed, shortHistoryRange, TICK, tickLabel } from "./axis";

const DAY = 86_400_000;
const T = Date.UTC(2026, 2, 7, 14, 5, 9) / 1000; // 7 Mar 2026 14:05:09 UTC
const MIDNIGHT = Date.UTC(2026, 2, 7) / 1000;

test("a daily chart labels its days with the month, never a bare day number", () => {
  assert.equal(tickLabel(MIDNIGHT, TICK.DayOfMonth, DAY), "7 Mar");
  assert.equal(tickLabel(MIDNIGHT, TICK.Month, DAY), "Mar 2026");
  assert.equal(tickLabel(MIDNIGHT, TICK.Year, DAY), "2026");
  assert.equal(crosshairLabel(MIDNIGHT, DAY), "7 Mar 2026");
});

test("intraday ticks give the time, the date at midnight, seconds for 1s bars", () => {
  assert.equal(tickLabel(T, TICK.Time, 60_000), "14:05");
  assert.equal(tickLabel(MIDNIGHT, TICK.Time, 300_000), "7 Mar");
  assert.equal(tickLabel(T, TICK.TimeWithSeconds, 1000), "14:05:09");
  assert.equal(crosshairLabel(T, 60_000), "7 Mar 2026 14:05");
  assert.equal(crosshairLabel(T, 1000), "7 Mar 2026 14:05:09");
});

test("a few bars are shown at their spacing from the left, many as the library places them", () => {
  assert.deepEqual(shortHistoryRange(5, 600, 6, 4), { from: -3, to: 97 });
  assert.equal(shortHistoryRange(200, 600, 6, 4), null);
});

test("every price of a legend has the same number of decimals, exactly", () => {
  assert.equal(fixed("61807.7", 2), "61807.70");
  assert.equal(fixed("0.00012345", 8), "0.00012345");
  assert.equal(fixed("42", 3), "42.000");
  assert.equal(fixed("1.23456789", 4), "1.2345");
});
