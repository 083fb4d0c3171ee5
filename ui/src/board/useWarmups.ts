// Each metric's history need, from GET /api/v1/scan/columns: asked once per page load.
import { useEffect, useState } from "react";
import { api } from "../api/client";
import { warmupsOf, type ScanColumns, type Warmups } from "./warmup";

const NONE: Warmups = new Map();
const RETRY_MS = 10_000;
let loaded: Warmups | null = null;

/** The warm-ups (empty until known: dashes then stay dashes). */
export function useWarmups(): Warmups {
  const [warmups, setWarmups] = useState<Warmups>(loaded ?? NONE);
  useEffect(() => {
    if (loaded) return;
    let timer: number | undefined;
    const abort = new AbortController();
    const load = () =>
      api<ScanColumns>("/api/v1/scan/columns", { signal: abort.signal }).then(
        (answer) => {
          loaded = warmupsOf(answer);
          setWarmups(loaded);
        },
        () => {
          if (!abort.signal.aborted) timer = window.setTimeout(load, RETRY_MS);
        },
      );
    void load();
    return () => {
      abort.abort();
      window.clearTimeout(timer);
    };
  }, []);
  return warmups;
}
