"""data.binance.vision trade archives: what their file names say and how their CSV rows
read as trades (plain code: opening the files is `flows.sources.files`)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal, NamedTuple

from flows.sources.binance.markets import MARKETS, binance_market
from flows.sources.binance.trades import (
    BinanceDecodeError,
    checked,
    time_us_from_binance,
    to_decimal,
)
from schemas.trades import Market, Trade

# BTCUSDT-trades-2024-08-08.zip, BTCUSDT-aggTrades-2025-01.csv (daily and monthly files).
_ARCHIVE_NAME = re.compile(
    r"^(?P<symbol>[A-Z0-9]+)-(?P<kind>trades|aggTrades)-(?P<period>\d{4}-\d{2}(?:-\d{2})?)"
    r"\.(?:csv|zip)$"
)

# Column counts per market and kind: the market's `archive_columns`. The leading columns
# line up in all four layouts (spot adds a trailing is_best_match column), so the indices
# below serve every file.
_BOOLS = {"True": True, "False": False, "true": True, "false": False}

ArchiveKind = Literal["trades", "aggTrades"]


class ArchiveName(NamedTuple):
    """What a data.binance.vision file name says.

    Attributes:
        symbol: The symbol, e.g. ``BTCUSDT``.
        kind: ``trades`` or ``aggTrades``.
        period: The day (``2024-08-08``) of a daily file or the month (``2025-01``) of a
            monthly one.
    """

    symbol: str
    kind: ArchiveKind
    period: str


def parse_archive_name(name: str) -> ArchiveName | None:
    """Read a data.binance.vision archive name such as ``BTCUSDT-trades-2024-08-08.zip``.

    Returns:
        Its symbol, kind and period, or None when the name is not an archive's.
    """
    found = _ARCHIVE_NAME.match(name)
    if found is None:
        return None
    kind: ArchiveKind = "aggTrades" if found["kind"] == "aggTrades" else "trades"
    return ArchiveName(found["symbol"], kind, found["period"])


# A data.binance.vision klines CSV: open_time, open, high, low, close, volume, close_time,
# quote_volume, count, taker_buy_volume, taker_buy_quote_volume, ignore.
_KLINE_COLUMNS = 12


def columns_detail(found: int, market: Market, kind: ArchiveKind) -> str:
    """Why a row's column count is wrong, naming the layout it has when it is a known one."""
    detail = f"{found} columns, {market} {kind} has {binance_market(market).archive_columns[kind]}"
    if found == _KLINE_COLUMNS:
        return detail + f"; {found} columns is a klines file's layout, not trades"
    others = [
        f"{m.market} {k}"
        for m in MARKETS
        for k, n in m.archive_columns.items()
        if n == found and (m.market, k) != (market, kind)
    ]
    if others:
        detail += f"; {found} columns is the layout of {' or '.join(others)}"
    return detail


def row_trade(row: list[str], kind: str, exchange: str, market: Market, symbol: str) -> Trade:
    """Build a trade from one archive row whose column count is already checked."""
    try:
        trade_id = int(row[0])
        if kind == "aggTrades":
            first: int | None = int(row[3])
            last: int | None = int(row[4])
            t, maker = row[5], row[6]
        else:
            first = last = None
            t, maker = row[4], row[5]
        time_us = time_us_from_binance(int(t))
    except ValueError as exc:
        raise BinanceDecodeError("bad_int", str(exc)) from None
    buyer_is_maker = _BOOLS.get(maker)
    if buyer_is_maker is None:
        raise BinanceDecodeError("bad_bool", f"is_buyer_maker={maker!r}")
    price: Decimal = to_decimal(row[1], "price")
    qty: Decimal = to_decimal(row[2], "qty")
    return checked(
        Trade(
            exchange=exchange,
            market=market,
            symbol=symbol,
            trade_id=trade_id,
            price=price,
            qty=qty,
            time_us=time_us,
            buyer_is_maker=buyer_is_maker,
            first_trade_id=first,
            last_trade_id=last,
        )
    )
