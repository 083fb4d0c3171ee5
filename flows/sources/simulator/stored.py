"""Where each simulated symbol's stored candles end, so its history and trading go on there."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class StoredSymbol:
    """Where a symbol's stored candles end.

    Attributes:
        close: Close of its newest candle.
        last_trade_id: Its highest stored trade id (None: only flat candles).
        end_ms: End of its newest candle (its close time + 1 ms).
    """

    close: Decimal
    last_trade_id: int | None
    end_ms: int


def read_stored(client: Any, database: str, exchange: str, market: str) -> dict[str, StoredSymbol]:
    """Where each symbol of `exchange`/`market` ends in candles_1m and candles_1s.

    The newer of its last 1m and 1s candle gives the close (a revision's highest
    version wins), and 1s candles within its last stored minute give where it ends; the
    highest trade id of either table (or of raw `trades`) the last id.

    Args:
        client: A clickhouse-connect client.
        database: Database holding the candle tables.
        exchange: e.g. ``sim``.
        market: e.g. ``spot``.

    Returns:
        By symbol; empty when nothing is stored.
    """
    found: dict[str, StoredSymbol] = {}
    since_ms = 0
    for table in ("candles_1m", "candles_1s"):
        rows = client.query(
            "SELECT symbol, toUnixTimestamp64Milli(max(close_time)) + 1, "
            "toString(argMax(close, (open_time, version))), max(last_trade_id) "
            "FROM {db:Identifier}.{table:Identifier} "
            "WHERE exchange = {exchange:String} AND market = {market:String} "
            "AND open_time >= fromUnixTimestamp64Milli({since:Int64}) "
            "GROUP BY symbol",
            parameters={
                "db": database,
                "table": table,
                "exchange": exchange,
                "market": market,
                "since": since_ms,
            },
        ).result_rows
        for (
            symbol,
            end_ms,
            close,
            last_id,
        ) in rows:
            known = found.get(symbol)
            ids: list[int] = [last_id] if last_id is not None else []
            if known is not None and known.last_trade_id is not None:
                ids.append(known.last_trade_id)
            top = max(ids, default=None)
            # 1s candles inside the newest stored minute say where trading really ended: a
            # clean stop writes the minute it was in as a partial 1m candle ending with
            # the minute, and resuming at its end would leave the market silent until then.
            finer = (
                table == "candles_1s" and known is not None and end_ms > known.end_ms - MINUTE_MS
            )
            if known is None or end_ms > known.end_ms or finer:
                found[symbol] = StoredSymbol(Decimal(close), top, end_ms)
            else:
                found[symbol] = StoredSymbol(known.close, top, known.end_ms)
        if not found:
            return found
        # 1s candles newer than a symbol's last minute: only the last minutes matter, and
        # candles_1s holds far more rows than candles_1m.
        since_ms = min(s.end_ms for s in found.values()) - MINUTE_MS
    # Raw trades stored ahead of their candles (a trade store flushes on its own) hold
    # ids too: a resumed symbol must not print them again.
    rows = client.query(
        "SELECT symbol, max(ifNull(last_trade_id, trade_id)) FROM {db:Identifier}.trades "
        "WHERE exchange = {exchange:String} AND market = {market:String} "
        "AND time >= fromUnixTimestamp64Milli({since:Int64}) GROUP BY symbol",
        parameters={"db": database, "exchange": exchange, "market": market, "since": since_ms},
    ).result_rows
    for symbol, last_id in rows:
        known = found.get(symbol)
        if known is not None and (known.last_trade_id is None or last_id > known.last_trade_id):
            found[symbol] = StoredSymbol(known.close, int(last_id), known.end_ms)
    return found
