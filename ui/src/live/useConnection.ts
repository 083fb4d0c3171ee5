// The live socket's state as React state.
import { useEffect, useState } from "react";
import type { ConnectionState, LiveSocket } from "./socket";

export function useConnectionState(live: LiveSocket): ConnectionState {
  const [state, setState] = useState<ConnectionState>(live.state);
  useEffect(() => live.onState(setState), [live]);
  return state;
}
