// A tiny History API router: the path and query as React state, and navigation.
import { useMemo, useSyncExternalStore, type MouseEvent } from "react";

const listeners = new Set<() => void>();

function notify(): void {
  for (const listener of listeners) listener();
}

function subscribe(listener: () => void): () => void {
  if (listeners.size === 0) window.addEventListener("popstate", notify);
  listeners.add(listener);
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0) window.removeEventListener("popstate", notify);
  };
}

const location = () => window.location.pathname + window.location.search;

/** Go to `path` (may carry a query) without a page load; `replace` keeps history as is. */
export function navigate(path: string, options: { replace?: boolean } = {}): void {
  if (path === location()) return;
  if (options.replace) window.history.replaceState(null, "", path);
  else window.history.pushState(null, "", path);
  notify();
}

export interface Route {
  path: string;
  query: URLSearchParams;
}

/** The current route; re-renders on navigate and on back/forward. */
export function useRoute(): Route {
  const href = useSyncExternalStore(subscribe, location);
  return useMemo(() => {
    const url = new URL(href, window.location.origin);
    return { path: url.pathname, query: url.searchParams };
  }, [href]);
}

/**
 * onClick of an in-app `<a href>`: navigate without a page load. Modified clicks
 * (new tab, new window) are left to the browser.
 */
export function followLink(event: MouseEvent<HTMLAnchorElement>): void {
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  const url = new URL(event.currentTarget.href);
  navigate(url.pathname + url.search);
}
