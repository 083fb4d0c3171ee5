"""What the API's live feed pays for the perpetuals' topics: a mark price per perpetual per
second, most of it for symbols no chart follows.

Builds a minute of `md.marks.v1` records for N perpetuals (1 Hz each, the funding
estimate changing once a minute, as on Binance) and times, in one run, the feed's decode
of them (`LiveFeed._decode`) plus the hub's delivery (`Hub.deliver`) with none, one and
every perpetual followed. The first two are what an API process costs on a live whole
exchange; `ratio_all` is the cost had the feed decoded everything.

Prints a line per case, and a last line of JSON:
{"perps": N, "records": R, "none_us_per_record": ..., "one_us_per_record": ...,
 "all_us_per_record": ..., "one_core_share": ..., "ratio_all": ...}
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.live.board import Board
from api.live.feed import LiveFeed, LiveTopics
from api.live.hub import Hub
from api.settings import ApiSettings
from flows.sources.kafka import Record
from schemas.perps import MarkPrice, encode_perp
from schemas.ranks import RankRow

T0_US = 1_723_161_600_000_000


class Fetched(Record):
    """A fetched record as the feed reads it (`error()` as a confluent-kafka Message)."""

    def error(self) -> None:
        return None


def marks(perps: int, seconds: int, topic: str) -> list[Fetched]:
    """`seconds` of a mark price per perpetual per second, in time order."""
    records = []
    for second in range(seconds):
        for n in range(perps):
            symbol = f"PERP{n:04d}USDT"
            t = T0_US + second * 1_000_000
            mark = MarkPrice(
                "binance", "usdm", symbol, t, Decimal("100.5") + n, Decimal("100.4") + n,
                Decimal("100.5") + n, T0_US + 8 * 3_600_000_000, t,
                Decimal("0.0001") + Decimal(second // 60) / 100_000,
            )  # fmt: skip
            records.append(Fetched(topic, n % 6, second, mark.key.encode(), encode_perp(mark)))
    return records


def run(perps: int, records: list[Fetched], followed: int, topics: LiveTopics) -> float:
    """Seconds to decode and deliver `records` with the first `followed` perpetuals
    followed by one client each."""
    hub = Hub(ApiSettings(client_queue=100_000), Board())
    hub.board.apply(
        [RankRow("binance", "usdm", f"PERP{n:04d}USDT", T0_US // 1000, 1.0) for n in range(perps)]
    )
    for n in range(followed):
        client = hub.connect("ws")
        hub.subscribe_perps(client, "p", f"binance:usdm:PERP{n:04d}USDT")
    feed = LiveFeed("unused:9092", topics, hub.deliver, perp_keys=lambda: hub.perps.keys)
    start = time.perf_counter()
    for at in range(0, len(records), 5_000):  # the feed's fetch size
        batch = feed._decode(records[at : at + 5_000])
        if batch.perps:
            hub.deliver(batch)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--perps", type=int, default=400, help="perpetuals (default 400)")
    parser.add_argument("--seconds", type=int, default=60, help="seconds of marks (default 60)")
    args = parser.parse_args(argv)
    topics = LiveTopics.with_prefix("")
    records = marks(args.perps, args.seconds, topics.marks)
    cases = {"none": 0, "one": 1, "all": args.perps}
    us: dict[str, float] = {}
    for name, followed in cases.items():
        best = min(run(args.perps, records, followed, topics) for _ in range(3))
        us[name] = best / len(records) * 1e6
        print(f"{name:>4} followed: {best * 1000:8.1f} ms for {len(records):,} records, "
              f"{us[name]:.3f} us/record")  # fmt: skip
    share = us["one"] * args.perps / 1e6  # a second of marks, per second
    print(f"one chart open: {share:.4f} of a core for {args.perps} perpetuals at 1 Hz")
    result = {
        "perps": args.perps,
        "records": len(records),
        "none_us_per_record": round(us["none"], 3),
        "one_us_per_record": round(us["one"], 3),
        "all_us_per_record": round(us["all"], 3),
        "one_core_share": round(share, 5),
        "ratio_all": round(us["all"] / us["one"], 2),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
