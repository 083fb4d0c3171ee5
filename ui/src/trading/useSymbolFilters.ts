// A symbol's trading filters (tick and lot sizes, quantity bounds, minimum notional) as
// GET /api/v1/symbols gives them.
import { useEffect, useState } from "react";
import { api } from "../api/client";
import type { Market } from "./api";
import type { SymbolFilters } from "./ticket";

/** The filters of `exchange:market:symbol`; null until known (or when the API has none). */
export function useSymbolFilters(exchange: string, market: Market, symbol: string): SymbolFilters | null {
  const [filters, setFilters] = useState<SymbolFilters | null>(null);
  useEffect(() => {
    setFilters(null);
    const abort = new AbortController();
    api<{ symbols: SymbolFilters[] }>("/api/v1/symbols", { query: { exchange, market }, signal: abort.signal })
      .then(({ symbols }) => setFilters(symbols.find((s) => s.symbol === symbol) ?? null))
      .catch(() => undefined); // the ticket says the symbol is unknown
    return () => abort.abort();
  }, [exchange, market, symbol]);
  return filters;
}
