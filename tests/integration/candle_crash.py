"""A candle flow and trade store in a process of their own, for crash tests (SIGKILL).

`python -m tests.integration.candle_crash run BOOTSTRAP DSN DATABASE TRADES CANDLES DEADLETTER`
runs both stages as `tickscan run` does (the candle flow resuming from ClickHouse) and
prints its progress as a JSON line every 0.1 s until SIGTERM; `check DSN DATABASE` prints
a JSON line of what the store holds. chDB opens a directory in one process at a time, so
the test reads the store through `check` once `run` has ended.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bytewax.testing import run_main

from flows.candles import trade_store
from flows.candles.flow import FlowCounters
from runtime.clickhouse import connect
from runtime.migrate import migrate
from tests.integration.candle_flow import past_candle_flow

# Minutes holding real 1s candles whose 1m candle is missing or unlike their roll-up, per
# exchange, market and symbol (a simulated perpetual shares its spot twin's name).
UNLIKE = """
SELECT s_market, s_symbol, toUnixTimestamp(s_minute) * 1000, m.count, s_count
FROM (
    SELECT exchange AS s_exchange, market AS s_market, symbol AS s_symbol,
           toStartOfMinute(open_time) AS s_minute,
           argMin(open, open_time) AS s_open, max(high) AS s_high, min(low) AS s_low,
           argMax(close, open_time) AS s_close, sum(volume) AS s_volume,
           sum(quote_volume) AS s_quote_volume, sum(count) AS s_count,
           sum(taker_buy_volume) AS s_tbv, sum(taker_buy_quote_volume) AS s_tbqv,
           min(first_trade_id) AS s_first, max(last_trade_id) AS s_last
    FROM {db:Identifier}.candles_1s FINAL WHERE count > 0
    GROUP BY s_exchange, s_market, s_symbol, s_minute
) AS s
LEFT JOIN (SELECT * FROM {db:Identifier}.candles_1m FINAL) AS m
    ON s_exchange = m.exchange AND s_market = m.market AND s_symbol = m.symbol
    AND s_minute = m.open_time
WHERE s_minute < toDateTime64({upto:Int64} / 1000, 3)
  AND (m.count != s_count OR m.open != s_open OR m.high != s_high OR m.low != s_low
       OR m.close != s_close OR m.volume != s_volume OR m.quote_volume != s_quote_volume
       OR m.taker_buy_volume != s_tbv OR m.taker_buy_quote_volume != s_tbqv
       OR m.first_trade_id != s_first OR m.last_trade_id != s_last)
ORDER BY s_market, s_symbol, s_minute
"""


def run(bootstrap: str, dsn: str, database: str, trades: str, candles: str, dead: str) -> None:
    """Run the candle flow and the trade store until SIGTERM, printing progress."""
    client = connect(dsn)
    migrate(client, database)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    counters = FlowCounters()
    flow, writer = past_candle_flow(
        bootstrap,
        client,
        database,
        "beginning",
        (trades, candles, dead),
        counters,
        stop=stop,
        resume_from_store=True,
    )
    store_flow, store_writer = trade_store.build_kafka_flow(
        trade_store.TradeStoreSettings(),
        bootstrap=bootstrap,
        clickhouse=lambda: client,
        database=database,
        start="beginning",
        trades_topic=trades,
        dead_letter_topic=dead,
        stop=stop,
    )
    threads = [threading.Thread(target=run_main, args=(f,)) for f in (flow, store_flow)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        progress = {
            "trades": counters.trades,
            "candles_1s": writer.written["1s"],
            "candles_1m": writer.written["1m"],
            "stored_trades": store_writer.written[trade_store.TABLE],
        }
        print(json.dumps(progress), flush=True)
        time.sleep(0.1)
    client.close()


def check(dsn: str, database: str, upto: int) -> dict[str, Any]:
    """What the store holds: minutes unlike their 1s, trades in candles and in `trades`."""
    client = connect(dsn)
    try:
        unlike = client.query(UNLIKE, parameters={"db": database, "upto": upto}).result_rows
        in_candles = client.query(
            "SELECT sum(count) FROM {db:Identifier}.candles_1s FINAL",
            parameters={"db": database},
        ).result_rows[0][0]
        in_minutes = client.query(
            "SELECT count(), sum(count) FROM {db:Identifier}.candles_1m FINAL",
            parameters={"db": database},
        ).result_rows[0]
        stored = client.query(
            "SELECT count() FROM {db:Identifier}.trades FINAL", parameters={"db": database}
        ).result_rows[0][0]
    finally:
        client.close()
    return {
        "unlike": [list(row) for row in unlike],
        "trades_in_1s": int(in_candles),
        "minutes": int(in_minutes[0]),
        "trades_in_1m": int(in_minutes[1]),
        "stored_trades": int(stored),
    }


def check_apart(dsn: str, database: str, upto: int) -> dict[str, Any]:
    """`check`, run in a process of its own (chDB opens a directory in one process at a time).

    Args:
        dsn: The ClickHouse DSN of the store.
        database: The database holding the candle and trade tables.
        upto: Minutes from this time (Unix ms) on are not compared.

    Returns:
        What `check` returns.
    """
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-m", "tests.integration.candle_crash", "check", dsn, database, str(upto)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(*sys.argv[2:8])
    else:
        print(json.dumps(check(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
