"""The funding derivation's state at start, rebuilt from ClickHouse.

The embedded broker loses its records on restart and Kafka retention is finite, so the
mark that stood for the coming funding time may be gone from the topic: ClickHouse is the
durable record. Per symbol, the newest ``marks_1s`` row of the last
`PerpStoreSettings.resume_lookback_s` seconds is the last mark seen, and the latest
``funding`` time (any source) is what is settled already, so a restart derives the
funding time it crossed exactly once and a rerun derives nothing twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flows.perps.funding import SymbolFunding
from schemas import topics
from schemas.perps import MarkPrice

logger = logging.getLogger(__name__)

_LAST_MARKS = """
SELECT exchange, market, symbol,
       toUnixTimestamp64Micro(max(event_time)) AS time_us,
       argMax(mark_price, event_time), argMax(index_price, event_time),
       argMax(estimated_settle_price, event_time), argMax(funding_rate, event_time),
       toUnixTimestamp64Micro(argMax(next_funding_time, event_time))
FROM {db:Identifier}.marks_1s
WHERE time >= fromUnixTimestamp64Milli({since_ms:Int64})
GROUP BY exchange, market, symbol
"""

_SETTLED = """
SELECT exchange, market, symbol, toUnixTimestamp64Micro(max(funding_time))
FROM {db:Identifier}.funding
GROUP BY exchange, market, symbol
"""


def load_funding_state(client: Any, database: str, since_us: int) -> dict[str, SymbolFunding]:
    """Each symbol's funding state as ClickHouse records it, by Kafka key.

    Args:
        client: A clickhouse-connect client.
        database: Database holding ``marks_1s`` and ``funding``.
        since_us: Only marks of seconds from this time on count (the newest per symbol).

    Returns:
        `SymbolFunding` by ``exchange:market:symbol``.
    """
    state: dict[str, SymbolFunding] = {}
    params = {"db": database, "since_ms": since_us // 1000}
    for exchange, market, symbol, time_us, mark, index, settle, rate, next_us in client.query(
        _LAST_MARKS, parameters=params
    ).result_rows:
        last = MarkPrice(
            exchange, market, symbol, time_us, mark, index, settle, next_us or 0, time_us, rate
        )
        state[last.key] = SymbolFunding(last)
    for exchange, market, symbol, settled_us in client.query(
        _SETTLED, parameters={"db": database}
    ).result_rows:
        key = topics.symbol_key(exchange, market, symbol)
        found = state.get(key)
        if found is None:
            state[key] = SymbolFunding(settled_us=settled_us)
        else:
            found.settled(settled_us)
    return state


@dataclass
class FundingSeeds:
    """The state ClickHouse holds, loaded once on first use and handed out per symbol.

    Attributes:
        client_factory: Returns the clickhouse-connect client to read with.
        database: Database holding ``marks_1s`` and ``funding``.
        lookback_s: How far back a symbol's newest mark may be.
        clock_us: Now, in microseconds (tests pass their own).
    """

    client_factory: Callable[[], Any]
    database: str
    lookback_s: int
    clock_us: Callable[[], int] = lambda: time.time_ns() // 1000
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _state: dict[str, SymbolFunding] | None = field(default=None, init=False, repr=False)

    def take(self, key: str) -> SymbolFunding:
        """The stored state of the symbol with this Kafka key (fresh when none), once."""
        with self._lock:
            if self._state is None:
                since_us = self.clock_us() - self.lookback_s * 1_000_000
                self._state = load_funding_state(self.client_factory(), self.database, since_us)
                logger.info(
                    "perpetuals store: funding state of %d symbols rebuilt from ClickHouse",
                    len(self._state),
                )
            found = self._state.pop(key, None)
        return found if found is not None else SymbolFunding()
