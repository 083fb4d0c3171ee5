// The board's filter and sort in the URL: written whole, read back the same.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ScanFilter } from "../session/types";
import { filterFromSearch, searchWithFilter } from "./urlView";

test("a filter written to the URL reads back the same, other parameters kept", () => {
  const filter: ScanFilter = {
    conditions: [{ metric: "change_pct", window: "5m", op: ">=", value: 3, value2: null }],
    quotes: ["USDT"],
    markets: ["usdm"],
    sort: "change_pct_5m",
    order: "asc",
    limit: 50,
  };
  const search = searchWithFilter("?ref=mail", filter, 5000);
  assert.match(search, /^\?ref=mail&filter=/);
  assert.deepEqual(filterFromSearch(search), filter);
});

test("parts the board does not know ride along; the default limit is left out", () => {
  const extended = { any: [{ conditions: [{ metric: "price", op: ">", other: "vwap_24h" }] }], sort: "rvol_5m", limit: 5000 };
  const search = searchWithFilter("", extended as ScanFilter, 5000);
  assert.deepEqual(filterFromSearch(search), { any: extended.any, sort: "rvol_5m" });
  assert.equal(searchWithFilter("?filter=%7B%7D", { limit: 5000 }, 5000), "", "nothing chosen: a clean URL");
});

test("a URL without a usable filter gives none", () => {
  assert.equal(filterFromSearch(""), null);
  assert.equal(filterFromSearch("?filter=not-json"), null);
  assert.equal(filterFromSearch("?filter=%5B1%5D"), null);
});
