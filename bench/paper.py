"""The paper engine process under a whole market: latency from a trade to its fill, CPU, RSS.

Runs `tickscan paper` as its own process against the embedded broker and a chDB store of
its own, with `--symbols` USDⓈ-M symbols (2,000) quoting `--quotes` times a second (10,000)
and trading `--trades` times a second (20,000) in total, each marked once a second, every
record stamped with the wall time it was published at. `--accounts` accounts (1,000) keep
`--orders` resting limit orders (10 each: 10,000) on one of the first `--active` symbols
(200) each, 5 to 50 ticks from its price; each order that fills is replaced by one on the
other side, so the book of paper orders stays full.

Measured, over `--seconds` of steady state after the orders rest:

- fills per second;
- market event → fill event: a fill's market time is the trade's publish time, so the
  delay to reading the `OrderFilled` off tr.events.v1 (as the API does) is the whole path
  through the broker, the engine, ClickHouse (the event is stored before it is published)
  and the broker again;
- market event → account view: to the first `AccountView` on tr.accounts.v1 that includes
  the fill (the browser's position and P&L update);
- where a fill's time goes: market event → published (the fill event's Kafka timestamp,
  set when the engine's output produced it, i.e. after the store) and published →
  received by the bench (``pub_*``, ``recv_*``); the first part split again by the
  event's ``tickscan-fetched-us`` header into the hop in (market event → the engine read
  it, ``in_*``) and the engine's own part (read → produced, ``in_engine_*``); the
  engine's status lines (printed at the end) split that into its stages;
- the engine process's CPU (cores) and RSS, and the CPU of the bench's own process and
  of the broker (all three share the machine; `--broker-cpu N` gives the broker a CPU
  of its own).

The last line is JSON: {"fills_per_s", "fill_p50_ms", "fill_p99_ms", "pub_p50_ms",
"pub_p99_ms", "recv_p50_ms", "recv_p99_ms", "in_p50_ms", "in_p99_ms",
"in_engine_p50_ms", "in_engine_p99_ms", "view_p50_ms", "view_p99_ms", "engine_cores",
"engine_rss_mb", "bench_cores", "broker_cores", "quotes_per_s", "trades_per_s",
"engine_alone_cores"}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import psutil
from confluent_kafka import Consumer, Producer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flows.sinks.symbols import SymbolWriter
from flows.sinks.trading.output import FETCHED_HEADER
from flows.trading.engine import PaperEngine
from flows.trading.settings import PaperSettings
from runtime.broker import EmbeddedBroker
from runtime.clickhouse import connect
from runtime.figures import percentile
from runtime.kafka import consumer_config, ensure_topics, producer_config
from runtime.migrate import migrate
from runtime.settings import EMBEDDED_PARTITIONS
from schemas import topics, trading
from schemas.perps import MarkPrice, encode_perp
from schemas.quotes import Quote, encode_quote
from schemas.symbols import SymbolInfo
from schemas.trades import Trade, encode_trade

EXCHANGE: Final = "bench"
MARKET: Final = "usdm"
TICK = Decimal("0.01")
STEP = Decimal("0.001")


def _now_us() -> int:
    return time.time_ns() // 1000


class Market:
    """Prices of every symbol, a random walk in ticks, shared by the publisher and the
    order placer (which rests orders a few ticks from the price)."""

    def __init__(self, symbols: int, seed: int) -> None:
        self.names = [f"S{i:04d}USDT" for i in range(symbols)]
        self.keys = [f"{EXCHANGE}:{MARKET}:{n}".encode() for n in self.names]
        self.ticks = [10_000] * symbols  # 100.00
        self.rng = random.Random(seed)

    def price(self, i: int) -> Decimal:
        return self.ticks[i] * TICK


def market_slice(
    market: Market, quotes: int, trades: int, marks: range, trade_id: int
) -> list[Quote | Trade | MarkPrice]:
    """The records of one slice of the market: `quotes` quotes and `trades` trades of random
    symbols (each trade walks its symbol's price a tick at most), and the marks of the
    symbols numbered in `marks` (modulo the symbol count), stamped with wall time."""
    rng = market.rng
    n = len(market.names)
    out: list[Quote | Trade | MarkPrice] = []
    for _ in range(quotes):
        i = rng.randrange(n)
        ticks = market.ticks[i]
        now = _now_us()
        out.append(Quote(EXCHANGE, MARKET, market.names[i], now, (ticks - 1) * TICK, Decimal(5),
                         (ticks + 1) * TICK, Decimal(5), now, now))  # fmt: skip
    for k in range(trades):
        i = rng.randrange(n)
        market.ticks[i] += rng.choice((-1, 0, 1))
        ticks = market.ticks[i] + rng.randint(-3, 3)
        qty = Decimal(rng.randint(1, 30)) / 1000
        out.append(Trade(EXCHANGE, MARKET, market.names[i], trade_id + k, ticks * TICK, qty,
                         _now_us(), rng.random() < 0.5))  # fmt: skip
    for j in marks:
        i = j % n
        now = _now_us()
        price = market.price(i)
        out.append(MarkPrice(
            exchange=EXCHANGE, market=MARKET, symbol=market.names[i], time_us=now,
            mark_price=price, index_price=price, estimated_settle_price=price,
            next_funding_time_us=(now // 28_800_000_000 + 1) * 28_800_000_000,
            received_us=now, funding_rate=Decimal("0.0001"),
        ))  # fmt: skip
    return out


ENCODE: dict[type, tuple[str, Any]] = {
    Quote: (topics.QUOTES, encode_quote),
    Trade: (topics.TRADES, encode_trade),
    MarkPrice: (topics.MARKS, encode_perp),
}


def publish_market(
    bootstrap: str, market: Market, quotes_per_s: float, trades_per_s: float,
    stop: threading.Event, counts: dict[str, int],
) -> None:  # fmt: skip
    """Publish quotes and trades at the given rates and every symbol's mark once a second,
    in 10 ms slices, stamped with wall time."""
    producer = Producer(producer_config(bootstrap, **{"linger.ms": 2}))
    n = len(market.names)
    started = time.monotonic()
    while not stop.is_set():
        elapsed = time.monotonic() - started
        quotes = max(0, int(elapsed * quotes_per_s) - counts["quotes"])
        trades = max(0, int(elapsed * trades_per_s) - counts["trades"])
        marks = range(counts["marks"], max(counts["marks"], int(elapsed * n)))
        for record in market_slice(market, quotes, trades, marks, counts["trades"]):
            topic, encoder = ENCODE[type(record)]
            producer.produce(topic, encoder(record), record.key)
        counts["quotes"] += quotes
        counts["trades"] += trades
        counts["marks"] += len(marks)
        producer.poll(0)
        time.sleep(0.01)
    producer.flush(10)


def engine_alone(args: argparse.Namespace) -> float:
    """CPU seconds the engine itself spends per second of this market (no Kafka, no
    store): the records of the symbols accounts need (as the process's key filter leaves
    them), each account valued once a second, the same accounts and orders."""
    market = Market(args.symbols, args.seed)
    infos = [
        SymbolInfo(EXCHANGE, MARKET, n, n[:-4], "USDT", "TRADING", "perpetual", TICK, STEP, 1)
        for n in market.names
    ]
    engine = PaperEngine(PaperSettings(), infos)
    accounts = [f"bench-{i:04d}" for i in range(args.accounts)]
    for record in market_slice(market, 0, 0, range(args.symbols), 0):
        engine.mark(record)  # type: ignore[arg-type]
    for account in accounts:
        engine.command(trading.OpenAccount(
            uuid.uuid4().hex, account, 0, owner="bench", name=account, market=MARKET,
            exchange=EXCHANGE, balances={"USDT": Decimal(10_000)},
        ))  # fmt: skip
        for k in range(args.orders):
            engine.command(_order(account, market, args.active, "BUY" if k % 2 else "SELL"))
    needed = {market.keys[i] for i in range(args.active)}
    feed = {Quote: engine.quote, Trade: engine.trade, MarkPrice: engine.mark}
    seconds = 5
    used = 0.0
    for second in range(seconds):
        records = market_slice(
            market, int(args.quotes), int(args.trades),
            range(second * args.symbols, (second + 1) * args.symbols), second * int(args.trades),
        )  # fmt: skip
        started = time.process_time()
        for record in records:
            if record.key.encode() in needed:
                for event in feed[type(record)](record):  # type: ignore[operator]
                    if isinstance(event, trading.OrderFilled) and not event.order.is_open:
                        side = "SELL" if event.fill.side == "BUY" else "BUY"
                        engine.command(_order(event.account_id, market, args.active, side))
        for account in accounts:
            engine.view(account)
        used += time.process_time() - started
    return used / seconds


def _order(account: str, market: Market, active: int, side: str) -> trading.PlaceOrder:
    # Each account trades one symbol (a ladder of orders around its price): one position.
    i = int(account.rsplit("-", 1)[1]) % active
    away = market.rng.randint(5, 50)
    ticks = market.ticks[i] - away if side == "BUY" else market.ticks[i] + away
    request = trading.OrderRequest(
        client_order_id=uuid.uuid4().hex[:20], exchange=EXCHANGE, market=MARKET,
        symbol=market.names[i], side=side, type="limit", quantity=Decimal("0.010"),  # type: ignore[arg-type]
        price=ticks * TICK,
    )  # fmt: skip
    return trading.PlaceOrder(uuid.uuid4().hex, account, _now_us(), order=request)


def pin_apart(broker_pid: int, cpu: int) -> None:
    """Pin every thread of the broker to `cpu`, and this process (whose children, the
    engine among them, inherit it) to the other CPUs."""
    others = set(range(os.cpu_count() or 1)) - {cpu}
    if not others:
        raise SystemExit("--broker-cpu needs at least two CPUs")
    for task in Path(f"/proc/{broker_pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), {cpu})
    os.sched_setaffinity(0, others)
    print(f"broker pinned to CPU {cpu}, the engine and the bench to {sorted(others)}")


def _latest(bootstrap: str, topic: str) -> Consumer:
    # Configured as the API's live feed reads (api/live/feed.py): fetches answered within
    # 10 ms, so the figures are what the API would see.
    consumer = Consumer(consumer_config(bootstrap, **{"fetch.wait.max.ms": 10}))
    assignment = []
    for p in range(len(consumer.list_topics(topic, timeout=10).topics[topic].partitions)):
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        assignment.append(TopicPartition(topic, p, high))
    consumer.assign(assignment)
    return consumer


def _fetched(consumer: Consumer) -> list[Any]:
    """What the consumer holds now, else the first record within 50 ms and what came with
    it (consume(n, timeout) would wait for n records or the whole timeout)."""
    messages = consumer.consume(2_000, 0)
    if not messages:
        messages = consumer.consume(1, 0.05)
        if messages:
            messages += consumer.consume(1_999, 0)
    return messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=2_000)
    parser.add_argument("--active", type=int, default=200)
    parser.add_argument("--quotes", type=float, default=10_000)
    parser.add_argument("--trades", type=float, default=20_000)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--orders", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--partitions", type=int, default=EMBEDDED_PARTITIONS,
        help="of every topic (default: as on the embedded broker)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", type=Path, help="Run the engine under cProfile, into this file."
    )
    parser.add_argument(
        "--broker-cpu", type=int, metavar="N",
        help="Pin the broker to CPU N and the engine and this bench to the others: the "
        "figures with a broker that does not share its cores.",
    )  # fmt: skip
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="paper-flow-bench-"))
    market = Market(args.symbols, args.seed)
    with EmbeddedBroker(work / "broker") as broker:
        bootstrap = broker.bootstrap
        if args.broker_cpu is not None:
            assert broker.pid is not None
            pin_apart(broker.pid, args.broker_cpu)
        ensure_topics(bootstrap, topics.ALL, args.partitions)
        dsn = f"chdb://{work / 'clickhouse'}"
        client = connect(dsn)
        migrate(client, "tickscan")
        infos = [
            SymbolInfo(EXCHANGE, MARKET, n, n[:-4], "USDT", "TRADING", "perpetual", TICK, STEP, 1)
            for n in market.names
        ]
        SymbolWriter(lambda: client, "tickscan").write(infos)
        client.close()  # one process per chDB directory: the engine's from here on

        env = {
            **os.environ,
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
            "TICKSCAN_KAFKA__BOOTSTRAP": bootstrap,
            "TICKSCAN_KAFKA__PARTITIONS": str(args.partitions),
            "TICKSCAN_CLICKHOUSE__DSN": dsn,
            "TICKSCAN_DATA_DIR": str(work),
        }
        engine = subprocess.Popen(
            [sys.executable, *(("-m", "cProfile", "-o", str(args.profile)) if args.profile else ()),
             "-m", "tickscan", "paper"], env=env,
            stdout=subprocess.DEVNULL, stderr=open(work / "engine.log", "wb"),  # noqa: SIM115
        )  # fmt: skip
        proc = psutil.Process(engine.pid)
        events = _latest(bootstrap, topics.EVENTS)
        views = _latest(bootstrap, topics.ACCOUNTS)
        commands = Producer(producer_config(bootstrap, **{"linger.ms": 2}))
        decode_event = trading.event_decoder().decode
        decode_view = trading.view_decoder().decode
        stop = threading.Event()
        counts = {"quotes": 0, "trades": 0, "marks": 0}
        fill_ms: list[float] = []
        pub_ms: list[float] = []  # market event -> fill event produced by the engine
        recv_ms: list[float] = []  # fill event produced -> read here
        in_ms: list[float] = []  # market event -> read by the engine (the hop in)
        engine_ms: list[float] = []  # read by the engine -> fill event produced
        view_ms: list[float] = []
        pending: dict[str, tuple[int, int]] = {}  # account -> (seq, fill time) awaiting a view
        # account -> (seq, read at) of its newest view: the two topics are read apart, so
        # the view may be read before the fill event it includes.
        viewed: dict[str, tuple[int, int]] = {}
        state = {"opened": 0, "accepted": 0, "fills": 0, "measuring": False}
        lock = threading.Lock()

        def send(command: Any) -> None:
            commands.produce(topics.ORDERS, trading.encode(command), command.account_id)

        def read_events() -> None:
            while not stop.is_set():
                for message in _fetched(events):
                    if message.error() is not None:
                        continue
                    event = decode_event(message.value())
                    now = _now_us()
                    if isinstance(event, trading.AccountOpened):
                        state["opened"] += 1
                    elif isinstance(event, trading.OrderAccepted):
                        state["accepted"] += 1
                    elif isinstance(event, trading.OrderFilled):
                        if state["measuring"]:
                            state["fills"] += 1
                            fill_ms.append((now - event.fill.time_us) / 1000)
                            produced_ms = message.timestamp()[1]
                            pub_ms.append(produced_ms - event.fill.time_us / 1000)
                            recv_ms.append(now / 1000 - produced_ms)
                            fetched = dict(message.headers() or ()).get(FETCHED_HEADER)
                            if fetched is not None:
                                in_ms.append((int(fetched) - event.fill.time_us) / 1000)
                                engine_ms.append(produced_ms - int(fetched) / 1000)
                            with lock:
                                seen = viewed.get(event.account_id)
                                if seen is not None and seen[0] >= event.seq:
                                    view_ms.append((seen[1] - event.fill.time_us) / 1000)
                                else:
                                    pending.setdefault(
                                        event.account_id, (event.seq, event.fill.time_us)
                                    )
                        if not event.order.is_open:
                            side = "SELL" if event.fill.side == "BUY" else "BUY"
                            send(_order(event.account_id, market, args.active, side))
                commands.poll(0)

        def read_views() -> None:
            while not stop.is_set():
                for message in _fetched(views):
                    if message.error() is not None:
                        continue
                    view: trading.AccountView = decode_view(message.value())
                    now = _now_us()
                    with lock:
                        viewed[view.account_id] = (view.seq, now)
                        waiting = pending.get(view.account_id)
                        if waiting is not None and view.seq >= waiting[0]:
                            del pending[view.account_id]
                            view_ms.append((now - waiting[1]) / 1000)

        readers = [threading.Thread(target=f, daemon=True) for f in (read_events, read_views)]
        for thread in readers:
            thread.start()
        accounts = [f"bench-{i:04d}" for i in range(args.accounts)]
        for account in accounts:
            opening = trading.OpenAccount(
                uuid.uuid4().hex, account, _now_us(), owner="bench", name=account, market=MARKET,
                exchange=EXCHANGE, balances={"USDT": Decimal(10_000)},
            )  # fmt: skip
            send(opening)
        commands.flush(30)
        deadline = time.monotonic() + 120
        while state["opened"] < args.accounts:
            if engine.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"engine did not open the accounts: see {work / 'engine.log'}")
            time.sleep(0.1)
        publisher = threading.Thread(
            target=publish_market,
            args=(bootstrap, market, args.quotes, args.trades, stop, counts),
            daemon=True,
        )
        publisher.start()
        time.sleep(2)
        for account in accounts:
            for k in range(args.orders):
                send(_order(account, market, args.active, "BUY" if k % 2 else "SELL"))
        commands.flush(30)
        while state["accepted"] < args.accounts * args.orders:
            if engine.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"engine did not accept the orders: see {work / 'engine.log'}")
            time.sleep(0.1)
        print(f"{args.accounts:,} accounts, {state['accepted']:,} orders resting; measuring")
        time.sleep(3)  # let the first burst of fills pass
        me = psutil.Process()
        assert broker.pid is not None
        tansu = psutil.Process(broker.pid)
        cpu0 = sum(proc.cpu_times()[:2])
        bench_cpu0, broker_cpu0 = sum(me.cpu_times()[:2]), sum(tansu.cpu_times()[:2])
        q0, t0 = counts["quotes"], counts["trades"]
        fill_ms.clear()
        pub_ms.clear()
        recv_ms.clear()
        in_ms.clear()
        engine_ms.clear()
        view_ms.clear()
        state["measuring"] = True
        started = time.monotonic()
        rss = 0
        while time.monotonic() - started < args.seconds:
            time.sleep(1)
            rss = max(rss, proc.memory_info().rss)
        state["measuring"] = False
        elapsed = time.monotonic() - started
        cores = (sum(proc.cpu_times()[:2]) - cpu0) / elapsed
        bench_cores = (sum(me.cpu_times()[:2]) - bench_cpu0) / elapsed
        broker_cores = (sum(tansu.cpu_times()[:2]) - broker_cpu0) / elapsed
        quotes_rate = (counts["quotes"] - q0) / elapsed
        trades_rate = (counts["trades"] - t0) / elapsed
        stop.set()
        publisher.join(30)
        engine.send_signal(signal.SIGTERM)
        engine.wait(60)
        for thread in readers:
            thread.join(5)
        events.close()
        views.close()
        for line in (work / "engine.log").read_text(errors="replace").splitlines():
            if "stages p50/p99/max" in line:
                print(line)

    alone = engine_alone(args)
    print(f"the engine alone (no Kafka, no store) at this market: {alone:.3f} CPU s per second")
    result = {
        "fills_per_s": round(state["fills"] / elapsed, 1),
        "fill_p50_ms": round(percentile(fill_ms, 0.5), 2),
        "fill_p99_ms": round(percentile(fill_ms, 0.99), 2),
        "pub_p50_ms": round(percentile(pub_ms, 0.5), 2),
        "pub_p99_ms": round(percentile(pub_ms, 0.99), 2),
        "recv_p50_ms": round(percentile(recv_ms, 0.5), 2),
        "recv_p99_ms": round(percentile(recv_ms, 0.99), 2),
        "in_p50_ms": round(percentile(in_ms, 0.5), 2),
        "in_p99_ms": round(percentile(in_ms, 0.99), 2),
        "in_engine_p50_ms": round(percentile(engine_ms, 0.5), 2),
        "in_engine_p99_ms": round(percentile(engine_ms, 0.99), 2),
        "view_p50_ms": round(percentile(view_ms, 0.5), 2),
        "view_p99_ms": round(percentile(view_ms, 0.99), 2),
        "engine_cores": round(cores, 3),
        "engine_rss_mb": round(rss / 1e6, 1),
        "bench_cores": round(bench_cores, 3),
        "broker_cores": round(broker_cores, 3),
        "quotes_per_s": round(quotes_rate),
        "trades_per_s": round(trades_rate),
        "engine_alone_cores": round(alone, 3),
    }
    print(
        f"{result['fills_per_s']:,} fills/s; market event -> fill event p50 "
        f"{result['fill_p50_ms']} ms, p99 {result['fill_p99_ms']} ms; -> account view p50 "
        f"{result['view_p50_ms']} ms, p99 {result['view_p99_ms']} ms; market -> produced "
        f"p50/p99 {result['pub_p50_ms']}/{result['pub_p99_ms']} ms, produced -> read "
        f"{result['recv_p50_ms']}/{result['recv_p99_ms']} ms; split: hop in "
        f"{result['in_p50_ms']}/{result['in_p99_ms']} ms, in the engine "
        f"{result['in_engine_p50_ms']}/{result['in_engine_p99_ms']} ms; engine "
        f"{result['engine_cores']} cores, {result['engine_rss_mb']} MB RSS; bench "
        f"{result['bench_cores']}, broker {result['broker_cores']} cores; published "
        f"{result['quotes_per_s']:,} quotes/s, {result['trades_per_s']:,} trades/s"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
