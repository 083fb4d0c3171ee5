"""Signals flow: rows/s, candles/s, quotes/s and memory per symbol, measured in one run.

The flow's per-record work is `flows.signals.scanner.PartitionScanner.fold` (decode,
metrics, signal rules, change detection); Bytewax adds a few microseconds per batch of
thousands of records on top. This bench times `fold` over encoded Kafka records:

1. memory: 2,000 fresh symbol states (rings allocated; tracemalloc counts numpy's
   buffers), and the same per symbol once a state holds a full day of history;
2. throughput at full history: N symbols (default 100) given 24 h of 1m candles and the
   last hour of 1s candles, then timed over 10 more minutes of 1s and 1m candles, so
   every window (1m .. 24h, RVOL, RSI, volatility, 24h high/low) is computed;
3. quotes: 100,000 book tickers of the same symbols;
4. perpetuals: the same symbols (up to 400) made perpetuals, each with a day of
   open-interest samples, timed over as many more seconds of candles with a mark per
   symbol per second (Binance's markPrice@1s), an open-interest sample a minute and a
   liquidation every 30 s between them; what the candles alone cost (2.) is taken off,
   leaving the cost of a perpetual's second: its mark, its share of the rest, and the
   perpetuals metrics of its row.

Prints what a live market of 2,000 symbols (1 candle/s each, 10,000 quotes/s) costs in
CPU, before and with the marks of 400 perpetuals at 1 Hz, and a last line of JSON:
{"rows_per_s": R, "candles_per_s": C, "quotes_per_s": Q, "kb_per_symbol": K,
 "core_share_2000_symbols": F, "perp_us_per_second": P,
 "core_share_2000_symbols_400_perps": G}
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
import tracemalloc
from decimal import Decimal

from flows.signals.perps import PerpState
from flows.signals.rules import default_rules
from flows.signals.scanner import PartitionScanner, ScanContext, ScannerOutput, SymbolScanner
from flows.signals.settings import SignalParams
from flows.sources.kafka import Record
from runtime.process import tune_for_streaming
from schemas import topics
from schemas.candles import Candle, encode_candle
from schemas.perps import Liquidation, MarkPrice, OpenInterest, encode_perp
from schemas.quotes import Quote, encode_quote

RULES = default_rules()

T0 = 1_723_248_000_000  # 2024-08-10 00:00 UTC
SECOND = 1_000
MINUTE = 60_000
LIVE_SYMBOLS = 2_000
LIVE_QUOTES_PER_S = 10_000
LIVE_PERPS = 400


def current_rss_mb() -> float:
    """Resident set size of this process now, from /proc (Linux)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


class Market:
    """Random-walk prices of N symbols, as 1s and 1m candles in candle-flow order."""

    def __init__(self, symbols: int, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.names = [f"S{i:04d}USDT" for i in range(symbols)]
        self.price = {name: 10 + self.rng.random() * 100 for name in self.names}
        self.minute: dict[str, list[Candle]] = {name: [] for name in self.names}

    def second(self, name: str, t: int) -> Candle:
        """The symbol's 1s candle at `t`: a trade in most seconds, a flat one otherwise."""
        traded = self.rng.random() < 0.8
        if traded:
            self.price[name] *= 1 + self.rng.gauss(0, 0.0005)
        price = Decimal(f"{self.price[name]:.4f}")
        qty = Decimal(f"{self.rng.random() * 5:.3f}") if traded else Decimal(0)
        candle = self._candle(name, "1s", t, price, qty, self.rng.randint(1, 20) if traded else 0)
        self.minute[name].append(candle)
        return candle

    def close_minute(self, name: str, t: int) -> Candle:
        """The 1m candle rolled up from the symbol's seconds since the last one."""
        seconds = self.minute[name]
        self.minute[name] = []
        volume = sum((c.volume for c in seconds), Decimal(0))
        count = sum(c.count for c in seconds)
        return self._candle(name, "1m", t, seconds[-1].close, volume, count)

    def whole_minute(self, name: str, t: int) -> Candle:
        """A 1m candle with no seconds behind it (older history)."""
        self.price[name] *= 1 + self.rng.gauss(0, 0.003)
        price = Decimal(f"{self.price[name]:.4f}")
        return self._candle(name, "1m", t, price, Decimal(self.rng.randint(50, 500)), 300)

    @staticmethod
    def _candle(
        name: str, interval: str, t: int, price: Decimal, qty: Decimal, count: int
    ) -> Candle:
        step = SECOND if interval == "1s" else MINUTE
        return Candle(
            "sim", "spot", name, interval, t, t + step - 1,  # type: ignore[arg-type]
            price, price, price, price, qty, qty * price, count,
            Decimal(0), Decimal(0), None, None, 1,
        )  # fmt: skip

    def quote(self, name: str, update_id: int) -> Quote:
        mid = self.price[name]
        return Quote(
            "sim", "spot", name, update_id, Decimal(f"{mid * 0.9999:.4f}"), Decimal(1),
            Decimal(f"{mid * 1.0001:.4f}"), Decimal(1), 0,
        )  # fmt: skip


def warm(market: Market, scanner: PartitionScanner, params: SignalParams) -> int:
    """Give every symbol 24 h of 1m candles, the last hour with its 1s candles."""
    fed = 0
    for name in market.names:
        state: SymbolScanner | None = None
        for m in range(-1_445, 0):
            t = T0 + m * MINUTE
            if m < -61:
                candle = market.whole_minute(name, t)
            else:
                for s in range(60):
                    second = market.second(name, t + s * SECOND)
                    if state is None:
                        state = scanner.symbols[second.key] = SymbolScanner(second, params)
                    state.metrics.add_second(second)
                    fed += 1
                candle = market.close_minute(name, t)
            if state is None:
                state = scanner.symbols[candle.key] = SymbolScanner(candle, params)
            state.metrics.add_minute(candle)
            state.bars.add_minute(candle, RULES, params)
            fed += 1
    return fed


def live_records(market: Market, seconds: int) -> list[Record]:
    """`seconds` more seconds of every symbol, with 1m candles as minutes close."""
    records = []
    offset = 0
    for s in range(seconds):
        t = T0 + s * SECOND
        for name in market.names:
            for candle in [market.second(name, t)] + (
                [market.close_minute(name, t - 59 * SECOND)] if s % 60 == 59 else []
            ):
                records.append(
                    Record(topics.CANDLES, 0, offset, candle.key.encode(), encode_candle(candle))
                )
                offset += 1
    return records


def make_perpetual(scanner: PartitionScanner, key: str, rng: random.Random) -> None:
    """Give a symbol a perpetual's state: a day of open-interest samples, one a minute."""
    state = scanner.perps[key] = PerpState()
    contracts = 1_000_000 * rng.random()
    for m in range(-1_440, 0):
        contracts *= 1 + rng.gauss(0, 0.001)
        state.set_open_interest(T0 + m * MINUTE, contracts)
    scanner.symbols[key].metrics.perps = state


def perp_records(market: Market, names: list[str], start_s: int, seconds: int) -> list[Record]:
    """Candles of every symbol for `seconds` from `start_s`, and the perpetuals' records
    among them: a mark each per second, an open-interest sample each per minute, a
    liquidation each per 30 s (the bench's symbols keep their keys)."""
    records = []
    offset = 0
    perps = set(names)

    def add(topic: str, key: str, value: bytes) -> None:
        nonlocal offset
        records.append(Record(topic, 0, offset, key.encode(), value))
        offset += 1

    for s in range(start_s, start_s + seconds):
        t = T0 + s * SECOND
        for name in market.names:
            candle = market.second(name, t)
            add(topics.CANDLES, candle.key, encode_candle(candle))
            if s % 60 == 59:
                minute = market.close_minute(name, t - 59 * SECOND)
                add(topics.CANDLES, minute.key, encode_candle(minute))
            if name not in perps:
                continue
            price = Decimal(f"{market.price[name]:.4f}")
            us = (t + 999) * 1000
            mark = MarkPrice(
                "sim", "spot", name, us, price, price * Decimal("0.9999"), price,
                (T0 + 8 * 3_600_000) * 1000, us, Decimal("0.0001"),
            )  # fmt: skip
            add(topics.MARKS, mark.key, encode_perp(mark))
            if s % 60 == 0:
                sample = OpenInterest(
                    "sim", "spot", name, t * 1000, Decimal(market.rng.randint(10**5, 10**6)), "poll"
                )
                add(topics.OPEN_INTEREST, sample.key, encode_perp(sample))
            if s % 30 == 15:
                qty = Decimal(f"{market.rng.random():.3f}")
                liquidation = Liquidation(
                    "sim", "spot", name, t * 1000, "SELL" if s % 60 == 15 else "BUY", price,
                    price, qty, qty, qty, "FILLED", "LIMIT", "IOC", t * 1000, t * 1000,
                )  # fmt: skip
                add(topics.LIQUIDATIONS, liquidation.key, encode_perp(liquidation))
    return records


def timed_fold(
    scanner: PartitionScanner, records: list[Record], context: ScanContext
) -> tuple[float, ScannerOutput, int]:
    """CPU seconds to fold the records in batches of 5,000; the outputs; rows computed."""

    def reject(*_: object) -> None:
        raise AssertionError("the bench's records are all valid")

    out = ScannerOutput()
    rows = 0
    started = time.process_time()
    for i in range(0, len(records), 5_000):
        rows += scanner.fold(records[i : i + 5_000], context, out, reject).rows
    return time.process_time() - started, out, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=100, help="symbols with full history")
    parser.add_argument("--seconds", type=int, default=600, help="live seconds timed")
    parser.add_argument(
        "--perps", type=int, default=LIVE_PERPS, help="of the symbols, perpetuals (4.; 0: none)"
    )
    args = parser.parse_args()
    tune_for_streaming()
    params = SignalParams()
    context = ScanContext(params, RULES, topics.QUOTES)

    # 1. memory: fresh states for a whole exchange
    probe = Market(LIVE_SYMBOLS)
    rss_before = current_rss_mb()
    tracemalloc.start()
    fresh = [
        SymbolScanner(probe._candle(name, "1s", T0, Decimal(1), Decimal(1), 1), params)
        for name in probe.names
    ]
    allocated, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    fresh_kb = allocated / len(fresh) / 1024
    print(
        f"memory: {len(fresh):,} fresh symbol states allocate {allocated / 2**20:,.0f} MB "
        f"({fresh_kb:,.0f} KB per symbol; RSS +{current_rss_mb() - rss_before:,.0f} MB "
        "before the rings are written)"
    )
    del fresh

    # 2. throughput at full history
    market = Market(args.symbols)
    scanner = PartitionScanner()
    rss_before = current_rss_mb()
    tracemalloc.start()
    started = time.perf_counter()
    fed = warm(market, scanner, params)
    warm_s = time.perf_counter() - started
    full, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    full_kb = full / args.symbols / 1024
    print(
        f"warm-up: {args.symbols} symbols x 24 h ({fed:,} candles) in {warm_s:.1f} s; "
        f"{full_kb:,.0f} KB per symbol with a full day held "
        f"(RSS +{(current_rss_mb() - rss_before) / args.symbols * 1024:,.0f} KB per symbol)"
    )
    records = live_records(market, args.seconds)
    cpu_s, out, rows = timed_fold(scanner, records, context)
    rows_per_s = rows / cpu_s
    candles_per_s = len(records) / cpu_s
    print(
        f"live: {len(records):,} candles -> {rows:,} rows ({len(out.ranks):,} published, "
        f"{len(out.snapshots):,} snapshots, {len(out.signals):,} signals) in {cpu_s:.2f} CPU s: "
        f"{rows_per_s:,.0f} rows/s, {candles_per_s:,.0f} candles/s"
    )
    last = out.ranks[-1]
    assert last.change_pct_24h is not None and last.rsi_14 is not None, "history not full"

    # 3. quotes
    names = market.names
    quotes = [
        Record(topics.QUOTES, 0, i, b"", encode_quote(market.quote(names[i % len(names)], i)))
        for i in range(100_000)
    ]
    quote_cpu_s, _, _ = timed_fold(scanner, quotes, context)
    quotes_per_s = len(quotes) / quote_cpu_s
    print(f"quotes: {len(quotes):,} in {quote_cpu_s:.2f} CPU s: {quotes_per_s:,.0f} quotes/s")

    # a live exchange: 2,000 symbols, a 1s candle each per second (and a 1m a minute),
    # 10,000 quotes per second
    share = (LIVE_SYMBOLS * (1 + 1 / 60)) / candles_per_s + LIVE_QUOTES_PER_S / quotes_per_s
    print(
        f"a live market of {LIVE_SYMBOLS:,} symbols + {LIVE_QUOTES_PER_S:,} quotes/s: "
        f"{share:.2f} of a core; state {LIVE_SYMBOLS * full_kb / 1024:,.0f} MB"
    )
    figures = {
        "rows_per_s": round(rows_per_s),
        "candles_per_s": round(candles_per_s),
        "quotes_per_s": round(quotes_per_s),
        "kb_per_symbol": round(full_kb),
        "core_share_2000_symbols": round(share, 3),
    }

    # 4. perpetuals: marks at 1 Hz (with open interest and liquidations) on top
    perps = market.names[: min(args.perps, args.symbols)]
    if perps:
        rng = random.Random(11)
        for name in perps:
            make_perpetual(scanner, f"sim:spot:{name}", rng)
        mixed = perp_records(market, perps, args.seconds, args.seconds)
        marks = sum(r.topic() == topics.MARKS for r in mixed)
        perp_cpu_s, perp_out, _ = timed_fold(scanner, mixed, context)
        assert perp_out.ranks[-1].mark_price is not None or perp_out.ranks[-1].symbol not in perps
        candles_alone_s = (len(mixed) - sum(r.topic() != topics.CANDLES for r in mixed)) / (
            candles_per_s
        )
        perp_us = (perp_cpu_s - candles_alone_s) / (len(perps) * args.seconds) * 1e6
        with_perps = share + LIVE_PERPS * perp_us / 1e6
        print(
            f"perpetuals: {len(perps)} of them, {marks:,} marks (+ open interest, liquidations) "
            f"among {len(mixed):,} records in {perp_cpu_s:.2f} CPU s: {perp_us:,.1f} µs per "
            f"perpetual per second over its candle's cost"
        )
        print(
            f"with {LIVE_PERPS} perpetuals' marks at 1 Hz: {share:.3f} -> {with_perps:.3f} of a "
            "core (target: under 0.25)"
        )
        figures["perp_us_per_second"] = round(perp_us, 1)
        figures["core_share_2000_symbols_400_perps"] = round(with_perps, 3)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
