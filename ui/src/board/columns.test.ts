// How a moved cell flashes: prices by tick, changes by the sign they show, volumes neutral.
import assert from "node:assert/strict";
import { test } from "node:test";
import { cellFlash, COLUMN_BY_FIELD } from "./columns";

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
