"""The soak's fake exchange, in a child process, and this side of its pipe."""

from __future__ import annotations

import asyncio
import bisect
import time
from multiprocessing.connection import Connection
from typing import Any

HISTORY_KEEP_S = 600.0  # trades the fake keeps for REST (repairs look back minutes)


def _trim_history(fake: Any, keep_s: float) -> None:
    """Forget the fake's trades older than `keep_s`.

    The fake keeps every trade it made, as ground truth for REST: ~390 bytes each, 14 GB
    in 30 minutes at 20k trades/s. Gap repair asks for ids seconds to minutes old, and
    the verifier needs only each symbol's next id, so older trades go.
    """
    cutoff = fake.now_ms() - int(keep_s * 1000)

    def trim() -> None:
        for sym in fake._symbols.values():
            n = bisect.bisect_left(sym.times, cutoff)
            if n:
                del sym.prints[:n], sym.times[:n], sym.firsts[:n]

    fake._apply(trim)


def _last_ids(fake: Any) -> dict[str, dict[str, int]]:
    """Each symbol's last id made so far (withheld ones included), the ids ingest follows;
    and the ids still to be withheld (a run that did not end before the market stopped
    leaves ids no later trade reveals as missing)."""
    last: dict[str, int] = {}
    withheld: dict[str, int] = {}

    def read() -> None:
        for name, sym in fake._symbols.items():
            last[name] = (sym.next_raw if fake.market == "spot" else sym.next_agg) - 1
            if sym.skip:
                withheld[name] = sym.skip

    fake._apply(read)
    return {"last": last, "withheld": withheld}


def exchange(
    market: str, symbols: int, rate: float, max_connection_s: float, conn: Connection
) -> None:
    """Child process: run the fake exchange and obey the commands sent over `conn`."""
    from tests.fakes.binance import FakeBinance

    fake = FakeBinance(market, symbols=symbols, rate=rate, seed=1)  # type: ignore[arg-type]
    fake.max_connection_s = max_connection_s
    fake.start_in_thread()
    try:
        conn.send((fake.rest_url, fake.ws_url, fake.symbols))
        next_trim = time.monotonic() + 60.0
        while True:
            if conn.poll(max(0.0, next_trim - time.monotonic())):
                cmd, arg = conn.recv()
                result: Any = None
                if cmd == "stop":
                    conn.send(None)
                    return
                if cmd == "drop":
                    fake.drop_connections()
                elif cmd == "shutdown":
                    fake.server_shutdown()
                elif cmd == "skip":
                    fake.skip_ids(*arg)
                elif cmd == "freeze":
                    fake._apply(lambda: setattr(fake, "rate", 0.0))
                elif cmd == "truth":
                    result = _last_ids(fake)
                else:
                    result = f"unknown command {cmd!r}"
                conn.send(result)
            if time.monotonic() >= next_trim:
                _trim_history(fake, HISTORY_KEEP_S)
                next_trim += 60.0
    finally:
        fake.stop_in_thread()


class Exchange:
    """This side of the exchange child's pipe; one command at a time, off the event loop."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()

    async def call(self, cmd: str, arg: Any = None) -> Any:
        def roundtrip() -> Any:
            self._conn.send((cmd, arg))
            if not self._conn.poll(60):
                raise RuntimeError(f"the fake exchange did not answer {cmd!r}")
            return self._conn.recv()

        async with self._lock:
            return await asyncio.to_thread(roundtrip)
