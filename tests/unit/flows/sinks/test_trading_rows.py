"""Rows of the paper tables from account events (flows.sinks.trading.rows)."""

from __future__ import annotations

import re
from decimal import Decimal

from flows.sinks.trading.rows import (
    VALUATION_IDX,
    StoredEvent,
    Valuation,
    event_rows,
    fill_rows,
    ledger_rows,
    order_rows,
    valuation_rows,
)
from schemas.trading import (
    AccountOpened,
    Fill,
    LedgerEntry,
    Order,
    OrderAccepted,
    OrderFilled,
    OrderRequest,
    event_decoder,
)

T0 = 1_723_161_256_322_123
T0_TEXT = "2024-08-08 23:54:16.322123"
T5_TEXT = "2024-08-08 23:54:16.322128"

REQUEST = OrderRequest(
    client_order_id="c\t1", exchange="binance", market="usdm", symbol="BTCUSDT",
    side="BUY", type="limit", quantity=Decimal("0.010"), price=Decimal("61000.1"),
)  # fmt: skip


def _order(**changes: object) -> Order:
    base = {
        "account_id": "a1", "order_id": 7, "request": REQUEST, "status": "new",
        "created_us": T0, "updated_us": T0,
    }  # fmt: skip
    base.update(changes)
    return Order(**base)  # type: ignore[arg-type]


def _fill_event() -> OrderFilled:
    fill = Fill(
        account_id="a1", fill_id=3, order_id=7, client_order_id="c\t1", exchange="binance",
        market="usdm", symbol="BTCUSDT", side="BUY", price=Decimal("61000.1"),
        qty=Decimal("0.004"), quote_qty=Decimal("244.0004"), fee=Decimal("0.04880008"),
        fee_asset="USDT", liquidity="maker", time_us=T0 + 5,
    )  # fmt: skip
    order = _order(status="partially_filled", filled_qty=Decimal("0.004"),
                   filled_quote=Decimal("244.0004"), fees=Decimal("0.04880008"),
                   fee_asset="USDT", updated_us=T0 + 5)  # fmt: skip
    entries = [
        LedgerEntry("USDT", "fee", Decimal("-0.04880008"), Decimal("9999.95119992"), "BTCUSDT"),
    ]
    return OrderFilled(account_id="a1", seq=4, time_us=T0 + 5, fill=fill, order=order,
                       entries=entries)  # fmt: skip


def _split(data: bytes) -> list[list[str]]:
    return [line.split("\t") for line in data.decode().splitlines()]


def test_an_event_row_keeps_the_wire_json_whole_and_escaped() -> None:
    event = OrderAccepted(account_id="a1", seq=2, time_us=T0, command_id="cmd-1", order=_order())
    stored = StoredEvent.of(event)
    [row] = _split(event_rows([stored]))
    assert row[:5] == ["a1", "2", "accepted", T0_TEXT, "cmd-1"]
    # The tab in the client order id is escaped for TabSeparated and decodes back whole.
    unescape = {"t": "\t", "n": "\n", "\\": "\\"}
    payload = re.sub(r"\\(.)", lambda m: unescape[m.group(1)], row[5])
    assert event_decoder().decode(payload) == event


def test_an_order_row_carries_the_working_state_and_nulls() -> None:
    [row] = _split(order_rows([StoredEvent.of(_fill_event())]))
    assert row[:11] == [
        "a1", "7", "c\\t1", "binance", "usdm", "BTCUSDT", "BUY", "limit", "GTC", "last", "0",
    ]  # fmt: skip
    assert row[11:15] == ["0.010", "\\N", "61000.1", "\\N"]
    assert row[15:20] == ["partially_filled", "0.004", "244.0004", "0.04880008", "USDT"]
    assert row[20:] == ["0", "\\N", "\\N", T0_TEXT, T5_TEXT, "4"]


def test_events_without_an_order_make_no_order_or_fill_row() -> None:
    opened = AccountOpened(
        account_id="a1", seq=1, time_us=T0, owner="u", name="n", market="usdm",
        exchange="binance", venue="paper",
        entries=[LedgerEntry("USDT", "deposit", Decimal(10000), Decimal(10000))],
    )  # fmt: skip
    assert order_rows([StoredEvent.of(opened)]) == b""
    assert fill_rows([StoredEvent.of(opened)]) == b""
    [row] = _split(ledger_rows([StoredEvent.of(opened, Decimal("10000"))]))
    assert row == ["a1", T0_TEXT, "1", "0", "deposit", "USDT", "", "10000", "10000", "10000"]


def test_a_fill_row_and_its_ledger_rows() -> None:
    stored = StoredEvent.of(_fill_event())
    [fill] = _split(fill_rows([stored]))
    assert fill[:2] == ["a1", "3"] and fill[8:12] == ["61000.1", "0.004", "244.0004", "0.04880008"]
    assert fill[13:] == ["maker", "\\N", "0", "0", "0", T5_TEXT, "4"]
    [ledger] = _split(ledger_rows([stored]))
    assert ledger == [
        "a1", T5_TEXT, "4", "0", "fee", "USDT", "BTCUSDT", "-0.04880008",
        "9999.95119992", "\\N",
    ]  # fmt: skip


def test_decimals_are_written_in_plain_notation() -> None:
    tiny = Valuation("a1", T0, 9, "USDT", Decimal("1E-8"), Decimal("1.5E+3"))
    [row] = _split(valuation_rows([tiny]))
    assert row == [
        "a1", T0_TEXT, "9", str(VALUATION_IDX), "valuation", "USDT", "", "0", "0.00000001",
        "1500",
    ]  # fmt: skip
