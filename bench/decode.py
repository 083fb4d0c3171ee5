"""Decode speed of the Binance normaliser on the real 2024-08-08 USDⓈ-M capture."""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import msgspec

from flows.sources.binance.trades import BinanceDecoder
from flows.sources.files import ReadStats, read_trades

CAPTURE = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "data"
    / "binance-um-btcusdt-20240808"
    / "hftbacktest_usdm_btcusdt_20240808.gz"
)


def _best(fn, repeat: int) -> float:
    """Best wall time of `repeat` runs: the least disturbed by the rest of the machine."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    """Time the file reader, the decoder alone, and a bare msgspec parse as the ceiling."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--capture", type=Path, default=CAPTURE)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not args.capture.exists():
        sys.exit(f"capture not found: {args.capture}")

    with gzip.open(args.capture, "rb") as f:
        messages = [line.partition(b" ")[2] for line in f]
    trade_messages = [m for m in messages if b'"e":"trade"' in m]

    stats = ReadStats()
    list(read_trades(args.capture, market="usdm", stats=stats))
    n_trades = stats.trades

    def read_file() -> None:
        for _ in read_trades(args.capture, market="usdm"):
            pass

    def decode_all() -> None:
        decode = BinanceDecoder("usdm").decode
        for m in messages:
            decode(m)

    def decode_trades() -> None:
        decode = BinanceDecoder("usdm").decode
        for m in trade_messages:
            decode(m)

    def msgspec_ceiling() -> None:
        # Parse the same trade messages into untyped objects: what any decoder must pay.
        decode = msgspec.json.Decoder().decode
        for m in trade_messages:
            decode(m)

    t_file = _best(read_file, args.repeat)
    t_all = _best(decode_all, args.repeat)
    t_trades = _best(decode_trades, args.repeat)
    t_ceiling = _best(msgspec_ceiling, args.repeat)

    print(f"messages in capture        {len(messages):>10,}  ({n_trades:,} trades)")
    print(f"read_trades (gzip file)    {n_trades / t_file:>10,.0f} trades/s")
    print(f"decode, all messages       {len(messages) / t_all:>10,.0f} msgs/s")
    print(f"decode, trade messages     {len(trade_messages) / t_trades:>10,.0f} trades/s")
    print(f"msgspec parse, no typing   {len(trade_messages) / t_ceiling:>10,.0f} msgs/s")
    print(
        json.dumps(
            {
                "bench": "decode",
                "messages": len(messages),
                "trades": n_trades,
                "file_trades_per_s": round(n_trades / t_file),
                "file_messages_per_s": round(len(messages) / t_file),
                "decode_messages_per_s": round(len(messages) / t_all),
                "decode_trades_per_s": round(len(trade_messages) / t_trades),
                "msgspec_untyped_per_s": round(len(trade_messages) / t_ceiling),
                "decode_vs_untyped": round(t_ceiling / t_trades, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
