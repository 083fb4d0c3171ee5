"""The paper engine catches up on the market it missed while down, on the real broker and
chDB: a resting bid fills at its own price on the trades that went through it, each
funding time that passed is paid at its own mark and rate, once; from the topics when
they still hold that time, from ClickHouse when the broker came back empty, and the same
after a crash in the middle of the catch-up.

The market is a USDⓈ-M BTCUSDT a few minutes in the past (the catch-up reaches back at
most `catchup_max_h`). Worked by hand (fees 0.05 % taker, 0.02 % maker):

- before the stop: long 1 @ 100.0 (fee 0.05), a bid of 0.5 @ 95.0 resting, a mark of
  101.0 announcing funding time F1 at 0.0002;
- while down: a trade of 0.3 @ 94.9 (the bid fills 0.3 @ 95.0, fee 0.0057); one of 2 @
  97.0 (above the bid: nothing); a mark past
  F1 (funding −1.3 × 101.0 × 0.0002 = −0.02626; it announces F2 at 0.0003 and 102.0); a
  trade of 1 @ 94.0 (the bid's last 0.2 @ 95.0, fee 0.0038); a mark past F2 (funding
  −1.5 × 102.0 × 0.0003 = −0.0459).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal as D
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Producer

from flows.candles.trade_store import trade_row, trade_writer
from flows.sinks.journal import Journal
from flows.sinks.perps import PerpWriter
from flows.sinks.symbols import SymbolWriter
from flows.sinks.trading.rows import StoredEvent
from flows.trading.flow import PaperFlow
from flows.trading.process import PaperTopics
from flows.trading.resume import load_events
from flows.trading.settings import PaperSettings
from runtime.clickhouse import connect
from runtime.kafka import consumer_config, ensure_topics, producer_config
from schemas.perps import MarkPrice, encode_perp
from schemas.quotes import Quote, encode_quote
from schemas.symbols import SymbolInfo
from schemas.topics import TradingTopics
from schemas.trades import Market as MarketKind
from schemas.trades import Trade, encode_trade
from schemas.trading import (
    AccountEvent,
    Command,
    FundingPaid,
    OpenAccount,
    OrderFilled,
    OrderRequest,
    PlaceOrder,
    encode,
)
from tests.integration.databases import migrated_database

pytestmark = pytest.mark.integration

EX, SYMBOL = "binance", "BTCUSDT"
MARKET: MarketKind = "usdm"
ACCOUNT = "acct-catchup"
SETTINGS = PaperSettings()
S = 1_000_000
MINUTE = 60 * S
BTCUSDT = SymbolInfo(
    EX, MARKET, SYMBOL, "BTC", "USDT", "TRADING", "perpetual", D("0.1"), D("0.001"), 1,
    min_qty=D("0.001"), max_qty=D(1000), market_max_qty=D(120), min_notional=D(5),
)  # fmt: skip


class Crash(Exception):
    """The engine dies here."""


class CrashBeforeJournalingFills(Journal):
    """Dies before the first batch holding a fill is committed: the catch-up's events are
    lost with the engine."""

    def append(self, stored: Sequence[StoredEvent]) -> int:
        if any(isinstance(s.event, OrderFilled) for s in stored):
            raise Crash("killed before the catch-up's events were committed")
        return super().append(stored)


@dataclass
class Market:
    """The market's records, at times a few minutes before now."""

    base: int

    @property
    def f1(self) -> int:
        return self.base + 2 * MINUTE

    @property
    def f2(self) -> int:
        return self.base + 4 * MINUTE

    def quote(self) -> Quote:
        return Quote(
            exchange=EX, market=MARKET, symbol=SYMBOL, update_id=1, bid_price=D("99.9"),
            bid_qty=D(5), ask_price=D("100.0"), ask_qty=D(5), received_us=self.base,
            time_us=self.base,
        )  # fmt: skip

    def mark(self, at: int, price: str, rate: str, next_funding: int) -> MarkPrice:
        return MarkPrice(
            exchange=EX, market=MARKET, symbol=SYMBOL, time_us=at, mark_price=D(price),
            index_price=D(price), estimated_settle_price=D(price),
            next_funding_time_us=next_funding, received_us=at, funding_rate=D(rate),
        )  # fmt: skip

    def trade(self, trade_id: int, at: int, price: str, qty: str) -> Trade:
        return Trade(
            exchange=EX, market=MARKET, symbol=SYMBOL, trade_id=trade_id, price=D(price),
            qty=D(qty), time_us=at, buyer_is_maker=True,
        )  # fmt: skip

    def before(self) -> list[MarkPrice]:
        return [
            self.mark(self.base, "100.0", "0.0001", self.f1),
            self.mark(self.base + S, "101.0", "0.0002", self.f1),
        ]

    def while_down(self) -> list[Trade | MarkPrice]:
        return [
            self.trade(1, self.base + 30 * S, "94.9", "0.3"),
            self.trade(2, self.base + 40 * S, "97.0", "2"),  # above the bid: not replayed
            self.mark(self.f1 + S, "102.0", "0.0003", self.f2),
            self.trade(3, self.base + 3 * MINUTE, "94.0", "1"),
            self.mark(self.f2 + S, "100.0", "0.0001", self.f2 + 2 * MINUTE),
        ]


@dataclass
class Desk:
    """Runs engines on one database and journal, and publishes to their topics."""

    bootstrap: str
    client: Client
    database: str
    journal: Path
    flow: PaperFlow | None = None
    thread: threading.Thread | None = None
    errors: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.producer = Producer(producer_config(self.bootstrap))

    def topics(self, partitions: int) -> PaperTopics:
        """Fresh, empty topics (as a broker that came back empty has)."""
        prefix = f"t{uuid.uuid4().hex[:8]}-"
        names = PaperTopics(
            trades=prefix + "trades", quotes=prefix + "quotes", depth=prefix + "depth",
            marks=prefix + "marks", depth_watch=prefix + "depth_watch",
            dead_letters=prefix + "dead", trading=TradingTopics(
                orders=prefix + "orders", events=prefix + "events", accounts=prefix + "accounts"
            ),
        )  # fmt: skip
        every = [*names.market, names.depth_watch, names.dead_letters, names.trading.orders,
                 names.trading.events, names.trading.accounts]  # fmt: skip
        ensure_topics(self.bootstrap, every, partitions)
        return names

    def start(self, names: PaperTopics, journal: Callable[[Path], Journal] = Journal) -> PaperFlow:
        flow = PaperFlow(
            SETTINGS, consumer=consumer_config(self.bootstrap),
            producer=producer_config(self.bootstrap), clickhouse=lambda: self.client,
            database=self.database, names=names, journal=self.journal,
        )  # fmt: skip
        assert flow.journal is not None
        flow.journal.close()
        flow.journal = journal(self.journal)
        self.errors = []

        def body() -> None:
            try:
                flow.run()
            except BaseException as exc:
                self.errors.append(exc)

        self.flow, self.thread = flow, threading.Thread(target=body, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not flow.ready.wait(0.1):
            assert not self.errors and time.monotonic() < deadline, self.errors
        return flow

    def stop(self) -> None:
        assert self.flow is not None and self.thread is not None
        self.flow.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive()
        self.flow = self.thread = None

    def died(self) -> list[BaseException]:
        assert self.thread is not None
        self.thread.join(60)
        assert not self.thread.is_alive()
        self.flow = self.thread = None
        return self.errors

    def publish(self, names: PaperTopics, records: Sequence[Trade | Quote | MarkPrice]) -> None:
        for record in records:
            if isinstance(record, Trade):
                self.producer.produce(names.trades, encode_trade(record), record.key)
            elif isinstance(record, Quote):
                self.producer.produce(names.quotes, encode_quote(record), record.key)
            else:
                self.producer.produce(names.marks, encode_perp(record), record.key)
        self.producer.flush(30)

    def send(self, names: PaperTopics, command: Command) -> None:
        self.producer.produce(names.trading.orders, encode(command), command.account_id)
        self.producer.flush(30)

    def wait(self, until: Callable[[PaperFlow], bool]) -> None:
        deadline = time.monotonic() + 60
        while self.flow is None or not until(self.flow):
            assert not self.errors, self.errors
            assert time.monotonic() < deadline, "the engine did not get there"
            time.sleep(0.05)

    def store(self, records: Sequence[Trade | MarkPrice]) -> None:
        """What the trade store and the perps flow write (``trades``, ``marks_1s``)."""
        client = lambda: self.client  # noqa: E731
        trades = trade_writer(client, self.database)
        trades.add(trade_row(r) for r in records if isinstance(r, Trade))
        trades.flush()
        marks = PerpWriter(client, self.database)
        marks.add([r for r in records if isinstance(r, MarkPrice)])
        marks.flush()

    def events(self) -> list[AccountEvent]:
        return [e for e in load_events(self.client, self.database) if e.account_id == ACCOUNT]


@pytest.fixture
def desk(kafka_bootstrap: str, clickhouse_dsn: str, tmp_path: Path) -> Iterator[Desk]:
    with migrated_database(clickhouse_dsn, "paper_catchup") as database:
        client = connect(clickhouse_dsn)
        SymbolWriter(lambda: client, database).write([BTCUSDT])
        desk = Desk(kafka_bootstrap, client, database, tmp_path / "paper.journal")
        try:
            yield desk
        finally:
            if desk.thread is not None:
                desk.stop()
            client.close()


def _minutes_ago(minutes: int) -> int:
    return (time.time_ns() // 1_000_000 - minutes * 60_000) * 1000


def trade_before_the_stop(desk: Desk, names: PaperTopics, market: Market) -> int:
    """Open the account, go long 1, rest the bid, see the mark of 1 s; stop. Returns how
    many events the account has."""
    desk.start(names)
    desk.publish(names, [market.quote(), market.before()[0]])
    desk.wait(lambda f: f.counters.market >= 2)
    opened = OpenAccount("open", ACCOUNT, 0, owner="u1", name="catchup", market=MARKET,
                         exchange=EX, balances={"USDT": D(10_000)})  # fmt: skip
    desk.send(names, opened)
    request = OrderRequest(client_order_id="long", exchange=EX, market=MARKET, symbol=SYMBOL,
                           side="BUY", type="market", quantity=D(1))  # fmt: skip
    desk.send(names, PlaceOrder("long", ACCOUNT, 0, order=request))
    bid = OrderRequest(client_order_id="bid", exchange=EX, market=MARKET, symbol=SYMBOL,
                       side="BUY", type="limit", price=D("95.0"), quantity=D("0.5"))  # fmt: skip
    desk.send(names, PlaceOrder("bid", ACCOUNT, 0, order=bid))
    desk.wait(lambda f: (a := f.engine.account(ACCOUNT)) is not None and len(a.orders) == 1)  # type: ignore[union-attr]
    desk.publish(names, [market.before()[1]])
    desk.wait(lambda f: f.counters.market >= 3)
    desk.stop()
    # the marks the perps flow stored meanwhile (the funding time F1 is announced by them)
    desk.store(market.before())
    stored = desk.client.query(
        "SELECT toUnixTimestamp64Micro(max(time)) FROM {db:Identifier}.paper_clock",
        parameters={"db": desk.database},
    ).result_rows[0][0]
    assert stored == market.base + S  # the market time, past the log's last event
    events = desk.events()
    assert [e.fill.qty for e in events if isinstance(e, OrderFilled)] == [D(1)]
    return len(events)


def assert_caught_up(events: list[AccountEvent], market: Market) -> None:
    """The missed market's events, each once, with the hand-worked numbers."""
    fills = [e.fill for e in events if isinstance(e, OrderFilled)]
    funding = [e for e in events if isinstance(e, FundingPaid)]
    assert [(f.client_order_id, f.price, f.qty, f.fee, f.liquidity) for f in fills] == [
        ("bid", D("95.0"), D("0.3"), D("0.0057"), "maker"),
        ("bid", D("95.0"), D("0.2"), D("0.0038"), "maker"),
    ]
    assert [(e.funding_time_us, e.mark_price, e.rate, e.entry.amount) for e in funding] == [
        (market.f1, D("101.0"), D("0.0002"), D("-0.02626")),
        (market.f2, D("102.0"), D("0.0003"), D("-0.0459")),
    ]
    # 10,000 − 0.05 − 0.0057 − 0.02626 − 0.0038 − 0.0459
    assert funding[-1].entry.balance_after == D("9999.86834")


def test_a_restart_fills_the_resting_bid_and_pays_funding_from_the_topics(desk: Desk) -> None:
    names = desk.topics(partitions=1)
    market = Market(_minutes_ago(10))
    before = trade_before_the_stop(desk, names, market)
    # while down: the topics get the trades and marks (the store gets only the marks, so
    # a fill proves the topic was read)
    desk.publish(names, market.while_down())
    desk.store([r for r in market.while_down() if isinstance(r, MarkPrice)])
    flow = desk.start(names)
    desk.wait(lambda f: len(f.engine.account(ACCOUNT).orders) == 0)  # type: ignore[union-attr]
    # a live trade through the price after the catch-up: the bid is filled already
    desk.publish(names, [market.trade(4, market.f2 + 2 * S, "93.0", "5")])
    desk.wait(lambda f: f.engine is not None and f.engine.now_us == market.f2 + 2 * S)
    assert flow.counters.applied == 1  # the live trade only: nothing read twice
    desk.stop()
    caught = desk.events()[before:]
    assert_caught_up(caught, market)
    # another start finds nothing more to do
    desk.start(names)
    desk.stop()
    assert len(desk.events()) == before + len(caught)


def test_a_restart_on_an_empty_broker_catches_up_from_clickhouse_through_a_crash(
    desk: Desk,
) -> None:
    market = Market(_minutes_ago(10))
    before = trade_before_the_stop(desk, desk.topics(partitions=3), market)
    # the broker comes back empty; ClickHouse stored what traded while the engine was down
    desk.store(market.while_down())
    empty = desk.topics(partitions=3)
    # the first start dies before its catch-up's events are committed
    desk.start(empty, journal=CrashBeforeJournalingFills)
    assert any(isinstance(e, Crash) for e in desk.died())
    assert len(desk.events()) == before
    # the next one replays the same market and commits the same events, once
    desk.start(empty)
    desk.wait(lambda f: len(f.engine.account(ACCOUNT).orders) == 0)  # type: ignore[union-attr]
    desk.stop()
    assert_caught_up(desk.events()[before:], market)
    desk.start(empty)
    desk.stop()
    assert_caught_up(desk.events()[before:], market)
