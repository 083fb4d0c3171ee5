// Whether the window is phone-narrow: the board and the chart then take turns on the screen.
import { useSyncExternalStore } from "react";

const QUERY = "(max-width: 720px)";

function subscribe(listener: () => void): () => void {
  const media = window.matchMedia(QUERY);
  media.addEventListener("change", listener);
  return () => media.removeEventListener("change", listener);
}

export function useNarrow(): boolean {
  return useSyncExternalStore(subscribe, () => window.matchMedia(QUERY).matches);
}
