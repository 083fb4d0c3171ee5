// How a moved cell flashes: prices by tick, changes by the sign they show, volumes neutral.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { RankRow } from "../session/types";
import { cellFlash, cellValue, COLUMN_BY_FIELD } from "./columns";

const kind = (field: string) => COLUMN_BY_FIELD.get(field)!.flash;

test("a signed cell flashes in the colour of its sign, whichever way it moved", () => {
  assert.equal(cellFlash(kind("change_pct_5m"), "up", -0.01), "down", "a red -0.01% never flashes green");
  assert.equal(cellFlash(kind("change_pct_5m"), "down", 0.4), "up");
  assert.equal(cellFlash(kind("from_high_pct"), "down", -2), "down");
  assert.equal(cellFlash(kind("change_pct_1h"), "up", 0.001), "neutral", "reads 0.00%");
});

test("prices flash by tick, volumes and trade counts without a direction", () => {
  assert.equal(cellFlash(kind("price"), "up", 1), "up");
  assert.equal(cellFlash(kind("bid"), "down", 1), "down");
  for (const field of ["quote_volume_5m", "quote_volume_24h", "trades_per_min", "rvol_5m", "spread_bps"]) {
    assert.equal(cellFlash(kind(field), "down", 10), "neutral", field);
    assert.equal(cellFlash(kind(field), "up", 10), "neutral", field);
  }
  assert.equal(cellFlash(kind("price"), undefined, 1), null, "not moved: no flash");
});

test("perpetuals columns read as traders read them: bp, rate %, APR %, a countdown, compact volumes", () => {
  const format = (field: string, value: number | null) => COLUMN_BY_FIELD.get(field)!.format(value);
  assert.equal(format("basis_bps", 12.34), "+12.3 bp");
  assert.equal(format("premium_bps", -3.05), "-3.0 bp");
  assert.equal(format("premium_bps", 0.01), "0.0 bp");
  assert.equal(format("funding_rate_pct", 0.01), "+0.0100%");
  assert.equal(format("funding_last_pct", -0.0075), "-0.0075%");
  assert.equal(format("funding_annual_pct", 10.95), "+10.95%");
  assert.equal(format("next_funding_s", 3 * 3600 + 12 * 60 + 5), "3:12:05");
  assert.equal(format("next_funding_s", 59.9), "0:00:59");
  assert.equal(format("next_funding_s", -2), "0:00:00");
  assert.equal(format("open_interest_value", 1_234_567_890), "1.23B");
  assert.equal(format("liq_long_5m", 45_600), "45.60K");
  assert.equal(format("oi_change_pct_1h", 2.5), "+2.50%");
  for (const field of ["mark_price", "funding_rate_pct", "next_funding_s", "liq_short_24h"]) assert.equal(format(field, null), "–", field);
});

test("liquidation columns say that Binance's stream undercounts", () => {
  for (const field of ["liq_long_5m", "liq_long_1h", "liq_long_24h", "liq_short_5m", "liq_short_1h", "liq_short_24h"]) {
    assert.match(COLUMN_BY_FIELD.get(field)!.title, /at most one liquidation per symbol per second/, field);
  }
});

test("the funding countdown counts on from the row's time to the board's", () => {
  const column = COLUMN_BY_FIELD.get("next_funding_s")!;
  const row = { time_ms: 1_000_000, next_funding_s: 3600, price: 1 } as unknown as RankRow;
  assert.equal(cellValue(column, row, 1_000_000), 3600);
  assert.equal(cellValue(column, row, 1_065_000), 3535, "65 s later");
  assert.equal(cellValue(column, row, null), 3600, "no board time yet: the row's");
  assert.equal(cellValue(column, { ...row, next_funding_s: null }, 1_065_000), null);
  assert.equal(cellValue(COLUMN_BY_FIELD.get("price")!, row, 1_065_000), 1, "other columns are the row's");
});
