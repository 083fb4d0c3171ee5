"""Spot balances: what an open order locks, what a fill moves, and the fee it pays.

As on Binance spot (without BNB fee payment): a buy limit locks its quote amount
(price × open quantity), a sell locks its open base quantity, and the fee is taken from
the asset received (base on a buy, quote on a sell) at the maker or taker rate. Since the
fee comes out of what is received, a buy needs no fee headroom on top of its price ×
quantity. A buy stop-market locks its quantity at the stop price (the estimate Binance
shows); a market order waiting for a fresh book locks nothing, and its fills are held to
the free balance when it executes.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from flows.trading import ledger
from flows.trading.settings import Fees
from flows.trading.state import AccountState
from schemas.symbols import SymbolInfo
from schemas.trading import LedgerEntry, LedgerKind, Liquidity, Order, Side


def open_qty(order: Order) -> Decimal:
    """Base quantity still to fill (0 for a quote-amount order not yet sized)."""
    qty = order.quantity if order.quantity is not None else order.request.quantity
    return Decimal(0) if qty is None else qty - order.filled_qty


def lock_of(order: Order, info: SymbolInfo) -> tuple[str, Decimal]:
    """The asset an open order locks and how much of it."""
    request = order.request
    if request.side == "SELL":
        return info.base_asset, open_qty(order)
    price = order.price if order.price is not None else order.stop_price
    if price is None:
        if request.quote_quantity is not None and request.type == "market":
            return info.quote_asset, request.quote_quantity - order.filled_quote
        return info.quote_asset, Decimal(0)
    return info.quote_asset, price * open_qty(order)


def locked(state: AccountState, symbols: Mapping[str, SymbolInfo]) -> dict[str, Decimal]:
    """Per asset, what the account's open orders lock."""
    out: dict[str, Decimal] = {}
    for order_id in sorted(state.orders):
        order = state.orders[order_id]
        info = symbols.get(order.request.symbol)
        if info is None:
            continue
        asset, amount = lock_of(order, info)
        out[asset] = out.get(asset, Decimal(0)) + amount
    return out


def free(state: AccountState, symbols: Mapping[str, SymbolInfo], asset: str) -> Decimal:
    """What the account may still commit of `asset`."""
    held = state.balances.get(asset, Decimal(0))
    return held - locked(state, symbols).get(asset, Decimal(0))


def needs(
    info: SymbolInfo, side: Side, qty: Decimal | None, quote: Decimal | None, price: Decimal | None
) -> tuple[str, Decimal | None]:
    """The asset and amount a new order needs free: base for a sell, quote for a buy
    (None when its price is not known yet)."""
    if side == "SELL":
        return info.base_asset, qty
    if quote is not None:
        return info.quote_asset, quote
    if qty is None or price is None:
        return info.quote_asset, None
    return info.quote_asset, qty * price


def fill_entries(
    state: AccountState,
    info: SymbolInfo,
    side: Side,
    price: Decimal,
    qty: Decimal,
    liquidity: Liquidity,
    fees: Fees,
) -> tuple[list[LedgerEntry], Decimal, str]:
    """The wallet movements of one spot fill, and its fee and fee asset.

    A buy pays quote and receives base less the fee; a sell pays base and receives
    quote less the fee.

    Returns:
        (entries in the order they apply, fee, fee asset)
    """
    rate = fees.maker if liquidity == "maker" else fees.taker
    quote_qty = price * qty
    if side == "BUY":
        paid, got, amount_in, fee_asset = info.quote_asset, info.base_asset, qty, info.base_asset
        amount_out = quote_qty
    else:
        paid, got, amount_in, fee_asset = (
            info.base_asset,
            info.quote_asset,
            quote_qty,
            info.quote_asset,
        )
        amount_out = qty
    fee = amount_in * rate
    moves: list[tuple[str, LedgerKind, Decimal]] = [
        (paid, "trade", -amount_out),
        (got, "trade", amount_in),
        (fee_asset, "fee", -fee),
    ]
    return ledger.entries(state, moves, info.symbol), fee, fee_asset
