// The board's filter (sort included) in the page's URL, so a board can be shared as a link:
// `?filter=` holds the whole filter as the API's JSON, the same as GET /api/v1/scan?filter=.
import type { ScanFilter } from "../session/types";

export const FILTER_PARAM = "filter";

/** The filter a URL's query carries, or null when it carries none (or none that parses as an object). */
export function filterFromSearch(search: string): ScanFilter | null {
  const text = new URLSearchParams(search).get(FILTER_PARAM);
  if (!text) return null;
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as ScanFilter) : null;
  } catch {
    return null;
  }
}

/**
 * `search` with `filter` in it, other parameters kept. The whole object is written, so
 * parts the board does not know (yet) ride along; only a `limit` equal to `defaultLimit`
 * is left out, and an empty filter leaves no parameter at all.
 */
export function searchWithFilter(search: string, filter: ScanFilter, defaultLimit: number): string {
  const params = new URLSearchParams(search);
  const { limit, ...rest } = filter;
  const shared: ScanFilter = limit === undefined || limit === defaultLimit ? rest : { ...rest, limit };
  if (Object.keys(shared).length === 0) params.delete(FILTER_PARAM);
  else params.set(FILTER_PARAM, JSON.stringify(shared));
  const query = params.toString();
  return query ? `?${query}` : "";
}
