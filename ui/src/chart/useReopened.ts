// Counts the times the live socket came back after a drop: what was missed meanwhile
// (closed bars, signals) is only in history, so feeds reload when this changes.
import { useEffect, useState } from "react";
import type { LiveSocket } from "../live/socket";

export function useReopened(live: LiveSocket): number {
  const [reopened, setReopened] = useState(0);
  useEffect(() => {
    let previous = live.state;
    const stop = live.onState((state) => {
      if (state === "open" && previous === "reconnecting") setReopened((n) => n + 1);
      previous = state;
    });
    return () => {
      stop();
    };
  }, [live]);
  return reopened;
}
