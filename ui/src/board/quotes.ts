// The quote currencies worth a toggle: the ones most symbols trade against.
import { useEffect, useState } from "react";
import { api } from "../api/client";

interface SymbolsResponse {
  symbols: { quote_asset: string }[];
}

/** Toggles shown at most: the long tail (TRY, BRL, ...) would wrap the filter bar. */
const SHOWN = 8;

/** The commonest quote assets, most symbols first; empty until /symbols answers. */
export function useQuotes(): string[] {
  const [quotes, setQuotes] = useState<string[]>([]);
  useEffect(() => {
    const abort = new AbortController();
    api<SymbolsResponse>("/api/v1/symbols", { signal: abort.signal })
      .then(({ symbols }) => {
        const counts = new Map<string, number>();
        for (const { quote_asset } of symbols) counts.set(quote_asset, (counts.get(quote_asset) ?? 0) + 1);
        setQuotes([...counts].sort((a, b) => b[1] - a[1]).slice(0, SHOWN).map(([quote]) => quote));
      })
      .catch(() => undefined); // no toggles: the board still shows every quote
    return () => abort.abort();
  }, []);
  return quotes;
}
