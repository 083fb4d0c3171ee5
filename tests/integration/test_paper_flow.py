"""The paper engine process on the real broker and ClickHouse, trading the shared USDⓈ-M capture.

A scripted USDⓈ-M account trades BTCUSDT while the capture is replayed in steps: a market
buy that walks three levels of the book, a resting limit sell that fills only on trades
through its price (partially, twice), a repeated client order id and a redelivered
command, a cancel, and a reduce-only market close. Every fill, fee and the final wallet
balance are computed here from the capture itself (the book as Binance's rules rebuild
it, the trades after the order rested), not by the engine's code. The engine is killed
right after it committed the first limit fill to its journal and before it published it
(ClickHouse never saw it); the restarted engine writes the journal through to
ClickHouse, restores the account from there, publishes that fill once, and the ledger
ends exactly where an uninterrupted run would.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Producer, TopicPartition

from flows.sinks.journal import Journal
from flows.sinks.symbols import SymbolWriter
from flows.sinks.trading.rows import StoredEvent
from flows.trading.flow import PaperFlow
from flows.trading.process import PaperTopics
from flows.trading.settings import PaperSettings
from runtime.clickhouse import connect
from runtime.kafka import (
    consumer_config,
    ensure_configured_topics,
    ensure_topics,
    producer_config,
)
from runtime.settings import ClickHouseSettings, KafkaSettings
from schemas import topics
from schemas.depth import BookDepth, encode_depth, watch_decoder
from schemas.quotes import Quote, encode_quote
from schemas.symbols import SymbolInfo
from schemas.topics import TradingTopics
from schemas.trades import Trade, encode_trade
from schemas.trading import (
    AccountEvent,
    CancelOrder,
    Command,
    OpenAccount,
    OrderFilled,
    OrderRequest,
    PlaceOrder,
    encode,
    event_decoder,
    view_decoder,
)
from tests.integration.paper_capture import EXCHANGE, MARKET, SYMBOL, MarketRecord, read_market
from tickscan.paper import run_paper
from tickscan.settings import PaperProcessSettings

pytestmark = pytest.mark.integration

PARTITIONS = 3
ACCOUNT = "acct-replay"
STEP = Decimal("0.001")
TICK = Decimal("0.1")
START = Decimal(10_000)
SETTINGS = PaperSettings()
TAKER, MAKER = SETTINGS.usdm_fees.taker, SETTINGS.usdm_fees.maker
BTCUSDT = SymbolInfo(
    EXCHANGE, MARKET, SYMBOL, "BTC", "USDT", "TRADING", "perpetual", TICK, STEP, 1,
    min_qty=STEP, max_qty=Decimal(1000), market_max_qty=Decimal(120), min_notional=Decimal(100),
)  # fmt: skip


# ---- the capture, and what it allows --------------------------------------------------


@pytest.fixture(scope="module")
def records() -> list[MarketRecord]:
    return list(read_market())


@dataclass
class BookView:
    """The book as the published records leave it: the newest quote and depth, and the
    top taken from whichever is newer (a newer quote hides depth levels at or better
    than its price)."""

    quote: Quote | None = None
    depth: BookDepth | None = None

    def see(self, record: MarketRecord) -> None:
        if isinstance(record, Quote):
            if self.quote is None or record.update_id >= self.quote.update_id:
                self.quote = record
        elif isinstance(record, BookDepth):
            self.depth = record

    def levels(self, side: str) -> list[tuple[Decimal, Decimal]]:
        """What an order on `side` takes from, best first."""
        assert self.quote is not None and self.depth is not None
        depth = self.depth.asks if side == "BUY" else self.depth.bids
        assert self.quote.time_us is not None and self.depth.time_us is not None
        if self.quote.time_us < self.depth.time_us:
            return [lv for lv in depth if lv[1] > 0]
        if side == "BUY":
            top = (self.quote.ask_price, self.quote.ask_qty)
            behind = [lv for lv in depth if lv[0] > self.quote.ask_price]
        else:
            top = (self.quote.bid_price, self.quote.bid_qty)
            behind = [lv for lv in depth if lv[0] < self.quote.bid_price]
        return [lv for lv in (top, *behind) if lv[1] > 0]


@dataclass(frozen=True)
class Expected:
    """One fill as the capture allows it."""

    side: str
    price: Decimal
    qty: Decimal
    fee: Decimal
    liquidity: str
    reference: Decimal | None = None


def book_until(records: Sequence[MarketRecord], end: int) -> BookView:
    book = BookView()
    for record in records[:end]:
        book.see(record)
    return book


def walk(levels: list[tuple[Decimal, Decimal]], side: str, qty: Decimal) -> list[Expected]:
    """A taker order of `qty` against `levels`: each level up to its size, at its price."""
    out = []
    left = qty
    for price, size in levels:
        take = min(size, left)
        out.append(Expected(side, price, take, price * take * TAKER, "taker", levels[0][0]))
        left -= take
        if not left:
            return out
    raise AssertionError("the book ran out")


def find_thin_book(records: Sequence[MarketRecord]) -> int:
    """A point after a quote where the two best asks hold little (so a market buy walks
    three levels for a few hundred dollars of margin)."""
    book = BookView()
    for i, record in enumerate(records):
        book.see(record)
        if book.depth is None or book.quote is None or not isinstance(record, Quote):
            continue
        asks = book.levels("BUY")
        if len(asks) >= 3 and asks[0][1] + asks[1][1] <= Decimal("0.3") and asks[2][1] >= STEP:
            return i + 1
    raise AssertionError("no thin book in the capture")


@dataclass(frozen=True)
class LimitPlan:
    price: Decimal
    first: int  # index of the first trade through it (just after it: the kill)
    second: int  # index of the second
    fills: tuple[Expected, Expected]


def plan_limit_sell(
    records: Sequence[MarketRecord], placed: int, qty: Decimal, best_bid: Decimal
) -> LimitPlan:
    """A limit sell price above the market that two trades go through (each filling part
    of `qty`) before any trade prints at exactly that price (queue position stays out of
    the numbers)."""
    trades = [(i, r) for i, r in enumerate(records) if i >= placed and isinstance(r, Trade)]
    for ticks in range(10, 2_000):
        price = best_bid + ticks * TICK
        through = []
        for i, trade in trades:
            if trade.price == price:
                break
            if trade.price > price:
                through.append((i, trade))
                if len(through) == 2:
                    break
        if len(through) < 2:
            continue
        (i1, t1), (i2, t2) = through
        if t1.qty + t2.qty >= qty:
            continue
        fills = tuple(
            Expected("SELL", price, t.qty, price * t.qty * MAKER, "maker") for t in (t1, t2)
        )
        return LimitPlan(price, i1 + 1, i2 + 1, fills)  # type: ignore[arg-type]
    raise AssertionError("no limit price fits the capture")


# ---- the engine and the broker --------------------------------------------------------


class Crash(Exception):
    """The engine dies here."""


class CrashAfterJournalingFirstMakerFill(Journal):
    """Commits like the real journal, then dies before the events reach Kafka (or
    ClickHouse, which is written after Kafka)."""

    def append(self, stored: Sequence[StoredEvent]) -> int:
        size = super().append(stored)
        if any(
            isinstance(s.event, OrderFilled) and s.event.fill.liquidity == "maker" for s in stored
        ):
            raise Crash("killed between the journal's write and the Kafka publish")
        return size


@dataclass
class Engine:
    flow: PaperFlow
    thread: threading.Thread
    error: list[BaseException] = field(default_factory=list)


class Desk:
    """The test's side of the broker: publishes the market and commands, reads events."""

    journal: Path  # the engines' journal file

    def __init__(self, bootstrap: str, names: PaperTopics, client: Client, database: str) -> None:
        self.bootstrap = bootstrap
        self.names = names
        self.client = client
        self.database = database
        self.producer = Producer(producer_config(bootstrap))
        self.published = 0
        self.events: dict[int, AccountEvent] = {}
        self.raw_events: list[AccountEvent] = []
        self._events = self._reader(names.trading.events)
        self._decode = event_decoder().decode
        self.engine: Engine | None = None

    def close(self) -> None:
        self._events.close()
        self.producer.flush(10)

    def _reader(self, topic: str) -> Consumer:
        consumer = Consumer(consumer_config(self.bootstrap))
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        return consumer

    def start_engine(self, journal: Callable[[Path], Journal] = Journal) -> Engine:
        flow = PaperFlow(
            SETTINGS,
            consumer=consumer_config(self.bootstrap),
            producer=producer_config(self.bootstrap),
            clickhouse=lambda: self.client,
            database=self.database,
            names=self.names,
            journal=self.journal,
        )
        assert flow.journal is not None
        flow.journal.close()
        flow.journal = journal(self.journal)
        engine = Engine(flow, threading.Thread(target=lambda: None))

        def body() -> None:
            try:
                flow.run()
            except BaseException as exc:
                engine.error.append(exc)

        engine.thread = threading.Thread(target=body, name="paper-test", daemon=True)
        engine.thread.start()
        self.engine = engine
        deadline = time.monotonic() + 60
        while not flow.ready.wait(0.1):
            assert not engine.error and time.monotonic() < deadline, engine.error
        self.published_since_start = 0
        return engine

    def market(self, records: Sequence[MarketRecord], engine: Engine, *, wait: bool = True) -> None:
        names = self.names
        topic = {Trade: names.trades, Quote: names.quotes, BookDepth: names.depth}
        for record in records:
            value = encode_depth(record) if isinstance(record, BookDepth) else (
                encode_quote(record) if isinstance(record, Quote) else encode_trade(record)
            )  # fmt: skip
            self.producer.produce(topic[type(record)], value, record.key)
        self.producer.flush(30)
        self.published_since_start += len(records)
        if wait:
            deadline = time.monotonic() + 60
            while engine.flow.counters.market < self.published_since_start:
                assert not engine.error, engine.error
                assert time.monotonic() < deadline, "the engine did not read the market"
                time.sleep(0.02)

    def send(self, command: Command) -> None:
        self.producer.produce(self.names.trading.orders, encode(command), command.account_id)
        self.producer.flush(30)

    def read_events(self, until: Callable[[], bool], timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not until():
            assert time.monotonic() < deadline, f"events did not come ({self.engine.error})"
            for message in self._events.consume(1000, 0.1):
                if message.error() is None:
                    event = self._decode(message.value())
                    self.raw_events.append(event)
                    self.events.setdefault(event.seq, event)

    def answer(self, command: Command) -> list[AccountEvent]:
        """Send a command and wait for its first event; every event of it read so far."""
        self.send(command)
        mine = lambda: [e for e in self.events.values() if e.command_id == command.command_id]  # noqa: E731
        self.read_events(lambda: bool(mine()))
        return sorted(mine(), key=lambda e: e.seq)

    def fills(self) -> list[OrderFilled]:
        return [e for _, e in sorted(self.events.items()) if isinstance(e, OrderFilled)]


def _cid() -> str:
    return uuid.uuid4().hex


def place(request: OrderRequest, command_id: str | None = None) -> PlaceOrder:
    return PlaceOrder(command_id or _cid(), ACCOUNT, 0, order=request)


def order(client_id: str, side: str, type_: str, qty: Decimal, **more: Any) -> OrderRequest:
    return OrderRequest(
        client_order_id=client_id, exchange=EXCHANGE, market=MARKET, symbol=SYMBOL,
        side=side, type=type_, quantity=qty, **more,  # type: ignore[arg-type]
    )  # fmt: skip


def _read_all(bootstrap: str, topic: str, decode: Callable[[bytes], Any]) -> list[Any]:
    """Every record a topic holds now, decoded, in offset order per partition."""
    consumer = Consumer(consumer_config(bootstrap))
    out = []
    try:
        ends = {}
        for p in range(PARTITIONS):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        deadline = time.monotonic() + 30
        while ends and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.2):
                if message.error() is None:
                    out.append(decode(message.value()))
                    if message.offset() + 1 >= ends.get(message.partition(), 0):
                        ends.pop(message.partition(), None)
    finally:
        consumer.close()
    return out


@pytest.fixture
def names(kafka_bootstrap: str, fresh_topic: Callable[[str], str]) -> PaperTopics:
    names = PaperTopics(
        trades=fresh_topic("md.trades.v1"), quotes=fresh_topic("md.quotes.v1"),
        depth=fresh_topic("md.depth.v1"), marks=fresh_topic("md.marks.v1"),
        depth_watch=fresh_topic("md.depth_watch.v1"), dead_letters=fresh_topic("md.deadletter.v1"),
        trading=TradingTopics(
            orders=fresh_topic("tr.orders.v1"), events=fresh_topic("tr.events.v1"),
            accounts=fresh_topic("tr.accounts.v1"),
        ),
    )  # fmt: skip
    everything = [*names.market, names.depth_watch, names.dead_letters, names.trading.orders,
                  names.trading.events, names.trading.accounts]  # fmt: skip
    ensure_topics(kafka_bootstrap, everything, PARTITIONS)
    return names


@pytest.fixture
def client(clickhouse_dsn: str, database: str) -> Iterator[Client]:
    client = connect(clickhouse_dsn)
    SymbolWriter(lambda: client, database).write([BTCUSDT])
    yield client
    client.close()


@pytest.fixture
def desk(
    kafka_bootstrap: str, names: PaperTopics, client: Client, database: str, tmp_path: Path
) -> Iterator[Desk]:
    desk = Desk(kafka_bootstrap, names, client, database)
    desk.journal = tmp_path / "paper-events.journal"
    yield desk
    if desk.engine is not None:
        stop(desk.engine)
    desk.close()


def stop(engine: Engine) -> None:
    engine.flow.stop.set()
    engine.thread.join(60)
    assert not engine.thread.is_alive()


def test_a_scripted_account_trades_the_capture_through_a_crash_to_the_cent(
    records: list[MarketRecord],
    desk: Desk,
    names: PaperTopics,
    kafka_bootstrap: str,
    client: Client,
    database: str,
) -> None:
    engine = desk.start_engine()
    opened = OpenAccount(_cid(), ACCOUNT, 0, owner="u1", name="replay", market=MARKET,
                         exchange=EXCHANGE, balances={"USDT": START})  # fmt: skip
    assert [type(e).__name__ for e in desk.answer(opened)] == ["AccountOpened"]

    # A market buy into a thin book walks three levels.
    at = find_thin_book(records)
    desk.market(records[:at], engine)
    book = book_until(records, at)
    asks = book.levels("BUY")
    qty = asks[0][1] + asks[1][1] + STEP
    buy = place(order("buy-1", "BUY", "market", qty))
    expected = walk(asks, "BUY", qty)
    assert len(expected) == 3
    answer = desk.answer(buy)
    desk.read_events(lambda: len(desk.fills()) == 3)
    # (The symbol's default leverage is set on the account's first order there.)
    accepted = next(e for e in answer if type(e).__name__ != "LeverageChanged")
    assert type(accepted).__name__ == "OrderAccepted"

    # The same client order id again places nothing; the same command again does nothing.
    repeat = desk.answer(place(order("buy-1", "BUY", "market", qty)))
    assert [type(e).__name__ for e in repeat] == ["OrderRepeated"]
    desk.send(buy)

    # A resting limit sell above the market, for the whole position.
    best_bid = book.levels("SELL")[0][0]
    plan = plan_limit_sell(records, at, qty, best_bid)
    sell = desk.answer(place(order("sell-1", "SELL", "limit", qty, price=plan.price)))
    assert [type(e).__name__ for e in sell] == ["OrderAccepted"]
    # A far buy limit, canceled.
    far = desk.answer(place(order("far-1", "BUY", "limit", STEP * 200, price=best_bid - 2_000)))
    assert [type(e).__name__ for e in far] == ["OrderAccepted"]
    canceled = desk.answer(CancelOrder(_cid(), ACCOUNT, 0, client_order_id="far-1"))
    assert [(type(e).__name__, e.order.status) for e in canceled] == [("OrderUpdated", "canceled")]  # type: ignore[union-attr]
    watch = _read_all(kafka_bootstrap, names.depth_watch, watch_decoder().decode)
    assert any(
        w.symbols == [SYMBOL] and (w.exchange, w.market) == (EXCHANGE, MARKET) for w in watch
    )
    assert len(desk.fills()) == 3  # the redelivered buy did not fill again

    # Trades until the first one through the limit: the engine journals that fill and dies.
    crashing = desk.start_engine  # the same desk, a new engine after the crash
    stop(engine)
    engine = crashing(CrashAfterJournalingFirstMakerFill)
    desk.market(records[at : plan.first], engine, wait=False)
    engine.thread.join(60)
    assert engine.error and isinstance(engine.error[0], Crash)
    stored = client.query(
        "SELECT count() FROM {db:Identifier}.paper_events FINAL WHERE kind = 'fill'",
        parameters={"db": database},
    ).result_rows[0][0]
    journaled = [s.event for s in Journal(desk.journal).entries()]
    assert stored == 3 and len(desk.fills()) == 3  # neither stored nor published
    assert isinstance(journaled[-1], OrderFilled) and journaled[-1].fill.liquidity == "maker"

    # The restarted engine writes the journaled fill through, publishes it once, goes on.
    engine = desk.start_engine()
    desk.read_events(lambda: len(desk.fills()) == 4)
    assert Journal(desk.journal).entries() == []  # ClickHouse holds it all now
    stored = client.query(
        "SELECT count() FROM {db:Identifier}.paper_events FINAL WHERE kind = 'fill'",
        parameters={"db": database},
    ).result_rows[0][0]
    assert stored == 4
    desk.market(records[plan.first : plan.second], engine)
    desk.read_events(lambda: len(desk.fills()) == 5)
    canceled = desk.answer(CancelOrder(_cid(), ACCOUNT, 0, client_order_id="sell-1"))
    [update] = canceled
    assert update.order.status == "canceled"  # type: ignore[union-attr]
    assert update.order.filled_qty == plan.fills[0].qty + plan.fills[1].qty  # type: ignore[union-attr]

    # A reduce-only market close for more than is left sells exactly what is left.
    pad = next(i for i in range(plan.second, len(records)) if isinstance(records[i], BookDepth))
    pad = next(i for i in range(pad, len(records)) if isinstance(records[i], Quote)) + 1
    desk.market(records[plan.second : pad], engine)
    left = qty - plan.fills[0].qty - plan.fills[1].qty
    close = place(order("close-1", "SELL", "market", qty, reduce_only=True))
    closing = walk(book_until(records, pad).levels("SELL"), "SELL", left)
    desk.answer(close)
    want = [*expected, *plan.fills, *closing]
    desk.read_events(lambda: len(desk.fills()) == len(want))
    stop(engine)

    # Every fill, at the capture's prices, with its fee.
    got = desk.fills()
    assert [(f.fill.side, f.fill.price, f.fill.qty, f.fill.fee, f.fill.liquidity) for f in got] == [
        (e.side, e.price, e.qty, e.fee, e.liquidity) for e in want
    ]
    assert [f.fill.reference_price for f in got[:3]] == [asks[0][0]] * 3
    assert [f.fill.fill_id for f in got] == list(range(1, len(want) + 1))

    # The wallet: start + realised P&L (against the average entry) - every fee.
    entry = sum((e.price * e.qty for e in expected), Decimal(0)) / qty
    realized = sum(((e.price - entry) * e.qty for e in want[3:]), Decimal(0))
    fees = sum((e.fee for e in want), Decimal(0))
    wallet = START + realized - fees
    ledger = client.query(
        "SELECT balance_after FROM {db:Identifier}.paper_ledger FINAL "
        "WHERE account_id = {a:String} AND kind != 'valuation' ORDER BY time, seq, idx",
        parameters={"db": database, "a": ACCOUNT},
    ).result_rows
    # The average entry is a repeating decimal: the engine and this test round it at
    # Decimal's 28 digits in different places, nowhere near a cent.
    assert abs(ledger[-1][0] - wallet) < Decimal("1e-12")
    assert sum(f.fill.realized_pnl for f in got) - realized < Decimal("1e-12")

    # The log: one gapless sequence, each event published once, fills stored once.
    seqs = [row[0] for row in client.query(
        "SELECT seq FROM {db:Identifier}.paper_events FINAL "
        "WHERE account_id = {a:String} ORDER BY seq",
        parameters={"db": database, "a": ACCOUNT},
    ).result_rows]  # fmt: skip
    assert seqs == list(range(1, len(seqs) + 1)) == sorted(desk.events)
    assert len(desk.raw_events) == len(desk.events)
    fill_rows = client.query(
        "SELECT fill_id, price, qty, fee FROM {db:Identifier}.paper_fills FINAL "
        "WHERE account_id = {a:String} ORDER BY fill_id",
        parameters={"db": database, "a": ACCOUNT},
    ).result_rows
    assert [(p, q, fee) for _, p, q, fee in fill_rows] == [(e.price, e.qty, e.fee) for e in want]
    orders = client.query(
        "SELECT client_order_id, status, filled_qty FROM {db:Identifier}.paper_orders FINAL "
        "WHERE account_id = {a:String} ORDER BY order_id",
        parameters={"db": database, "a": ACCOUNT},
    ).result_rows
    assert orders == [
        ("buy-1", "filled", qty),
        ("sell-1", "canceled", qty - left),
        ("far-1", "canceled", 0),
        ("close-1", "filled", left),
    ]
    views = _read_all(kafka_bootstrap, names.trading.accounts, view_decoder().decode)
    assert views[-1].seq == seqs[-1] and not views[-1].positions


def test_tickscan_paper_answers_a_command_on_the_default_topics(
    kafka_bootstrap: str, client: Client, database: str, tmp_path: Any
) -> None:
    """The stage as `tickscan paper` and `tickscan run` start it: its own settings, the
    topics of `schemas.topics`; an account opened is answered, viewed and stored."""
    settings = PaperProcessSettings(
        data_dir=tmp_path,
        kafka=KafkaSettings(bootstrap=kafka_bootstrap, partitions=PARTITIONS),
        clickhouse=ClickHouseSettings(dsn="chdb://unused", database=database),
    )
    ensure_configured_topics(kafka_bootstrap, topics.ALL, settings.kafka)
    account = f"acct-{uuid.uuid4().hex[:8]}"
    stop = threading.Event()
    runner = threading.Thread(
        target=run_paper,
        args=(settings,),
        kwargs={"bootstrap": kafka_bootstrap, "client": client, "stop": stop},
        daemon=True,
    )
    runner.start()
    try:
        producer = Producer(producer_config(kafka_bootstrap))
        opened = OpenAccount(_cid(), account, 0, owner="u1", name="cli", market="spot",
                             exchange="sim", balances={"USDT": Decimal(500)})  # fmt: skip
        producer.produce(topics.ORDERS, encode(opened), account)
        producer.flush(10)
        deadline = time.monotonic() + 60
        events: list[Any] = []
        views: list[Any] = []
        while not (events and views):
            assert runner.is_alive() and time.monotonic() < deadline
            time.sleep(0.2)
            events = [e for e in _read_all(kafka_bootstrap, topics.EVENTS, event_decoder().decode)
                      if e.account_id == account]  # fmt: skip
            views = [v for v in _read_all(kafka_bootstrap, topics.ACCOUNTS, view_decoder().decode)
                     if v.account_id == account]  # fmt: skip
        assert [type(e).__name__ for e in events] == ["AccountOpened"]
        assert views[-1].equity == Decimal(500)
        stored = client.query(
            "SELECT kind FROM {db:Identifier}.paper_events FINAL WHERE account_id = {a:String}",
            parameters={"db": database, "a": account},
        ).result_rows
        assert stored == [("opened",)]
    finally:
        stop.set()
        runner.join(60)
    assert not runner.is_alive()
