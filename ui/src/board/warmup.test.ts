// The warm-up countdown of a dash, and the board's warm-up summary.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { RankRow } from "../session/types";
import { defaultSort, formatWait, isComplete, summarise, waitMs, warmupsOf } from "./warmup";

const WARMUPS = warmupsOf({
  columns: [
    { name: "price", warmup: null },
    { name: "change_pct_5m", warmup: { resolution: "1s", history_ms: 301_000 } },
    { name: "quote_volume_24h", warmup: { resolution: "1m", history_ms: 86_400_000 } },
    { name: "trades_per_min", warmup: { resolution: "1s", history_ms: 60_000 } },
  ],
});
const NOW = 1_800_000_000_000;

function row(fields: Partial<RankRow>): RankRow {
  return {
    exchange: "sim", market: "spot", symbol: "SYM0001USDT", time_ms: NOW, price: 1,
    change_pct_5m: null, quote_volume_24h: null, trades_per_min: null,
    history_1s_from_ms: null, history_1m_from_ms: null, ...fields,
  } as RankRow;
}

test("a dash whose window is not yet covered counts down to it", () => {
  const started = row({ history_1s_from_ms: NOW - 108_800, history_1m_from_ms: NOW - 60_000 });
  assert.equal(waitMs(started, "change_pct_5m", WARMUPS, NOW), 192_200);
  assert.equal(formatWait(192_200), "3:13");
  assert.equal(waitMs(started, "change_pct_5m", WARMUPS, NOW + 1000), 191_200);
  assert.equal(waitMs(started, "quote_volume_24h", WARMUPS, NOW), 86_340_000);
  assert.equal(formatWait(86_340_000), "23h59m");
});

test("a dash that will not fill by waiting stays a dash", () => {
  const unknown = row({});
  assert.equal(waitMs(unknown, "change_pct_5m", WARMUPS, NOW), null, "no history field");
  const covered = row({ history_1s_from_ms: NOW - 400_000 });
  assert.equal(waitMs(covered, "change_pct_5m", WARMUPS, NOW), null, "window covered, still null");
  assert.equal(waitMs(covered, "price", WARMUPS, NOW), null, "needs no history");
  const valued = row({ history_1s_from_ms: NOW - 1000, change_pct_5m: -0.5 });
  assert.equal(waitMs(valued, "change_pct_5m", WARMUPS, NOW), null, "has a value");
});

test("countdowns read as minutes:seconds under an hour, hours and minutes above", () => {
  assert.equal(formatWait(1), "0:01");
  assert.equal(formatWait(59_000), "0:59");
  assert.equal(formatWait(3_599_000), "59:59");
  assert.equal(formatWait(3_600_001), "1h01m");
});

test("the board is warming while rows wait, complete with all but 1 % warm", () => {
  const warm = row({ history_1s_from_ms: NOW - 90_000_000, history_1m_from_ms: NOW - 90_000_000, change_pct_5m: 1, quote_volume_24h: 5, trades_per_min: 3 });
  const young = row({ history_1s_from_ms: NOW - 10_000, history_1m_from_ms: NOW - 10_000, trades_per_min: null });
  const mute = row({});
  const summary = summarise([warm, young, mute], WARMUPS, NOW);
  assert.deepEqual(summary, { rows: 3, warming: 2, doneAtMs: NOW - 10_000 + 86_400_000 });
  assert.equal(isComplete(summary), false);
  assert.equal(defaultSort(isComplete(summary)), "trades_per_min");

  const board = [...Array(100)].map(() => warm).concat([young]);
  assert.equal(isComplete(summarise(board, WARMUPS, NOW)), true, "one new listing in 101");
  assert.equal(defaultSort(isComplete(summarise(board, WARMUPS, NOW))), "quote_volume_24h");
  assert.equal(isComplete(summarise([], WARMUPS, NOW)), false, "no rows yet");
});
