"""Rows of the paper engine's tables from its events: ``paper_events``, ``paper_orders``,
``paper_fills`` and ``paper_ledger`` (016_paper.sql) as TabSeparated text.

ClickHouse parses the decimal text exactly (a decimal is written in plain notation, never
``1E-8``); nothing is spliced into SQL. `StoredEvent` is an event as it goes to the store
and to Kafka, `Valuation` a minute's valuation of an account; `EVENTS`, `DERIVED` and
`VALUATIONS` say which table each kind of row goes to, in which order.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from flows.sinks.clickhouse import NULL, TsvTable, tsv_escape
from schemas.trading import (
    AccountEvent,
    AccountOpened,
    AccountReset,
    FundingPaid,
    LedgerEntry,
    Order,
    OrderAccepted,
    OrderFilled,
    OrderRejected,
    OrderUpdated,
    encode,
)

VALUATION_IDX = 65_535
"""``paper_ledger.idx`` of a valuation row: never the index of a movement of an event."""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as it goes to the store and to Kafka.

    Attributes:
        event: The event.
        payload: Its wire JSON (`schemas.trading.encode`), stored and published as is.
        equity: The account's equity right after it, when known (its ledger rows carry it).
    """

    event: AccountEvent
    payload: bytes
    equity: Decimal | None = None

    @classmethod
    def of(cls, event: AccountEvent, equity: Decimal | None = None) -> StoredEvent:
        """Wrap an event with its wire form."""
        return cls(event, encode(event), equity)


@dataclass(frozen=True, slots=True)
class Valuation:
    """A minute's valuation of an account: a ``kind='valuation'`` ledger row.

    Attributes:
        account_id: The account.
        time_us: Start of the minute (market time).
        seq: The account's last applied event.
        asset: The asset equity is counted in.
        balance: The wallet balance of that asset then.
        equity: `AccountView.equity` then.
    """

    account_id: str
    time_us: int
    seq: int
    asset: str
    balance: Decimal
    equity: Decimal


EVENT_COLUMNS = ("account_id", "seq", "kind", "time", "command_id", "payload")
ORDER_COLUMNS = (
    "account_id", "order_id", "client_order_id", "exchange", "market", "symbol", "side",
    "type", "time_in_force", "trigger", "reduce_only", "quantity", "quote_quantity", "price",
    "stop_price", "status", "filled_qty", "filled_quote", "fees", "fee_asset", "triggered",
    "reason", "code", "created", "updated", "seq",
)  # fmt: skip
FILL_COLUMNS = (
    "account_id", "fill_id", "order_id", "client_order_id", "exchange", "market", "symbol",
    "side", "price", "qty", "quote_qty", "fee", "fee_asset", "liquidity", "reference_price",
    "slippage", "realized_pnl", "liquidation", "time", "seq",
)  # fmt: skip
LEDGER_COLUMNS = (
    "account_id", "time", "seq", "idx", "kind", "asset", "symbol", "amount", "balance_after",
    "equity",
)  # fmt: skip


def _time(time_us: int) -> str:
    """A time as DateTime64(6) text, ``YYYY-MM-DD hh:mm:ss.ffffff`` UTC (a bare integer
    would be read as ticks only when it has enough digits: not the 0 of a fresh engine)."""
    seconds = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time_us // 1_000_000))
    return f"{seconds}.{time_us % 1_000_000:06d}"


def _dec(value: Decimal | None) -> str:
    """A decimal in plain notation (never ``1E-8``), or NULL."""
    return NULL if value is None else format(value, "f")


def _opt(value: object) -> str:
    return NULL if value is None else tsv_escape(str(value))


def _line(fields: Iterable[str]) -> str:
    return "\t".join(fields) + "\n"


def event_rows(stored: list[StoredEvent]) -> bytes:
    """Events as ``paper_events`` rows (`EVENT_COLUMNS`)."""
    lines = []
    for item in stored:
        e = item.event
        kind = type(e).__struct_config__.tag
        lines.append(
            _line((
                tsv_escape(e.account_id), str(e.seq), str(kind), _time(e.time_us),
                tsv_escape(e.command_id), tsv_escape(item.payload.decode()),
            ))
        )  # fmt: skip
    return "".join(lines).encode()


def order_row(order: Order, seq: int) -> str:
    """One ``paper_orders`` row (`ORDER_COLUMNS`): `order` as event `seq` left it."""
    r = order.request
    quantity = order.quantity if order.quantity is not None else r.quantity
    return _line((
        tsv_escape(order.account_id), str(order.order_id), tsv_escape(r.client_order_id),
        tsv_escape(r.exchange), r.market, tsv_escape(r.symbol), r.side, r.type,
        r.time_in_force, r.trigger, str(int(r.reduce_only)), _dec(quantity or Decimal(0)),
        _dec(r.quote_quantity), _dec(order.price if order.price is not None else r.price),
        _dec(order.stop_price if order.stop_price is not None else r.stop_price),
        order.status, _dec(order.filled_qty), _dec(order.filled_quote), _dec(order.fees),
        tsv_escape(order.fee_asset), str(int(order.triggered)), _opt(order.reason),
        _opt(order.code), _time(order.created_us), _time(order.updated_us), str(seq),
    ))  # fmt: skip


def order_rows(stored: list[StoredEvent]) -> bytes:
    """The orders the events left (`ORDER_COLUMNS`): one row per event carrying an order's
    new state (accepted, rejected, updated, fill)."""
    return "".join(
        order_row(s.event.order, s.event.seq)
        for s in stored
        if isinstance(s.event, OrderAccepted | OrderRejected | OrderUpdated | OrderFilled)
    ).encode()


def fill_rows(stored: list[StoredEvent]) -> bytes:
    """The fills of the events (`FILL_COLUMNS`)."""
    lines = []
    for s in stored:
        e = s.event
        if not isinstance(e, OrderFilled):
            continue
        f = e.fill
        lines.append(
            _line((
                tsv_escape(f.account_id), str(f.fill_id), str(f.order_id),
                tsv_escape(f.client_order_id), tsv_escape(f.exchange), f.market,
                tsv_escape(f.symbol), f.side, _dec(f.price), _dec(f.qty), _dec(f.quote_qty),
                _dec(f.fee), tsv_escape(f.fee_asset), f.liquidity, _dec(f.reference_price),
                _dec(f.slippage), _dec(f.realized_pnl), str(int(f.liquidation)),
                _time(f.time_us), str(e.seq),
            ))
        )  # fmt: skip
    return "".join(lines).encode()


def ledger_entries(event: AccountEvent) -> Sequence[LedgerEntry]:
    """The wallet movements an event carries, in the order they apply."""
    if isinstance(event, AccountOpened | AccountReset | OrderFilled):
        return event.entries
    if isinstance(event, FundingPaid):
        return (event.entry,)
    return ()


def ledger_rows(stored: list[StoredEvent]) -> bytes:
    """One ``paper_ledger`` row per ledger entry of the events (`LEDGER_COLUMNS`); each
    carries the equity after its event when known."""
    lines = []
    for s in stored:
        e = s.event
        equity = _dec(s.equity)
        for idx, entry in enumerate(ledger_entries(e)):
            lines.append(
                _line((
                    tsv_escape(e.account_id), _time(e.time_us), str(e.seq), str(idx),
                    entry.kind, tsv_escape(entry.asset), tsv_escape(entry.symbol),
                    _dec(entry.amount), _dec(entry.balance_after), equity,
                ))
            )  # fmt: skip
    return "".join(lines).encode()


def valuation_rows(valuations: list[Valuation]) -> bytes:
    """Minute valuations as ``paper_ledger`` rows of kind ``valuation`` (`LEDGER_COLUMNS`)."""
    return "".join(
        _line((
            tsv_escape(v.account_id), _time(v.time_us), str(v.seq), str(VALUATION_IDX),
            "valuation", tsv_escape(v.asset), "", "0", _dec(v.balance), _dec(v.equity),
        ))
        for v in valuations
    ).encode()  # fmt: skip


EVENTS = TsvTable("paper_events", EVENT_COLUMNS, event_rows)
DERIVED = (
    TsvTable("paper_orders", ORDER_COLUMNS, order_rows),
    TsvTable("paper_fills", FILL_COLUMNS, fill_rows),
    # Last: `flows.trading.resume` re-derives the events after each account's last
    # ledger row, so a crash between these inserts loses no row.
    TsvTable("paper_ledger", LEDGER_COLUMNS, ledger_rows),
)
VALUATIONS = TsvTable("paper_ledger", LEDGER_COLUMNS, valuation_rows)


def clock_rows(times_us: list[int]) -> bytes:
    """Market times as ``paper_clock`` rows."""
    return "".join(_line((_time(t),)) for t in times_us).encode()


CLOCK = TsvTable("paper_clock", ("time",), clock_rows)
