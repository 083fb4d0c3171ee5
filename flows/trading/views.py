"""An account valued at the market: the `AccountView` the engine publishes.

Spot: every asset valued at its last price in the quote asset (USDT; an asset with no
price known yet counts 0), locks derived from the open orders. USDⓈ-M: equity is the
wallet balance plus unrealised P&L at the mark, the USDT balance split into what a new
order may use (`free`) and what position and order margin hold (`locked`); positions come
from `flows.trading.futures.position_views`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from flows.trading import futures, spot
from flows.trading.book import Book
from flows.trading.settings import PaperSettings
from flows.trading.state import AccountState
from schemas.symbols import SymbolInfo
from schemas.trading import AccountView, Balance

SPOT_QUOTE = "USDT"
"""The asset spot accounts are valued in."""


@dataclass(frozen=True, slots=True)
class MarketContext:
    """What valuing one account needs from the engine.

    Attributes:
        settings: Fees and margin tiers.
        symbols: The account's market's symbols by name.
        books: Books of the symbols that value the account (its holdings' USDT pairs,
            or its positions' symbols).
        marks: Mark price by symbol (USDⓈ-M).
        spot_fees: Spot fees paid since the account opened or reset, in the quote asset
            (a base-asset fee valued at its fill's price).
        order_margin: The account's `order_margin` when the caller knows it already (it
            depends on the account's orders and positions only, not on the market).
    """

    settings: PaperSettings
    symbols: Mapping[str, SymbolInfo]
    books: Mapping[str, Book]
    marks: Mapping[str, Decimal]
    spot_fees: Decimal = Decimal(0)
    order_margin: Decimal | None = None


def account_view(state: AccountState, ctx: MarketContext, now_us: int) -> AccountView:
    """The account after its last event, valued at the market at `now_us`."""
    open_orders = [state.orders[i] for i in sorted(state.orders)]
    common = {
        "account_id": state.account_id, "owner": state.owner, "name": state.name,
        "market": state.market, "exchange": state.exchange, "venue": state.venue,
        "seq": state.seq, "time_us": now_us, "open_orders": open_orders,
    }  # fmt: skip
    if state.market == "spot":
        return _spot_view(state, ctx, common)
    return _usdm_view(state, ctx, common)


def _spot_view(state: AccountState, ctx: MarketContext, common: dict) -> AccountView:
    locks = spot.locked(state, ctx.symbols)
    balances: list[Balance] = []
    equity = Decimal(0)
    for asset in sorted(state.balances):
        total = state.balances[asset]
        held = locks.get(asset, Decimal(0))
        if total == 0 and held == 0:
            continue
        balances.append(Balance(asset=asset, free=total - held, locked=held))
        price = _spot_price(asset, ctx)
        if price is not None:
            equity += total * price
    cash = sum((b.free for b in balances if b.asset == SPOT_QUOTE), Decimal(0))
    return AccountView(
        **common, balances=balances, positions=[], equity=equity, fees=ctx.spot_fees,
        margin_balance=equity, available=cash,
    )  # fmt: skip


def _spot_price(asset: str, ctx: MarketContext) -> Decimal | None:
    if asset == SPOT_QUOTE:
        return Decimal(1)
    book = ctx.books.get(f"{asset}{SPOT_QUOTE}")
    return None if book is None else book.value_price()


def order_margin(state: AccountState, default_leverage: int) -> Decimal:
    """Initial margin the account's open USDⓈ-M orders reserve: the part of each that
    would open or add to a position (`futures.opening_qty`; reduce-only orders reserve
    none), at its limit or stop price (a market order waiting for a book: none)."""
    total = Decimal(0)
    for order_id in sorted(state.orders):
        order = state.orders[order_id]
        price = order.price if order.price is not None else order.stop_price
        if order.request.reduce_only or price is None or order.quantity is None:
            continue
        pos = state.positions.get(order.request.symbol)
        leverage = pos.leverage if pos is not None else default_leverage
        opening = futures.opening_qty(pos, order.request.side, order.quantity - order.filled_qty)
        total += futures.order_margin(opening, price, leverage)
    return total


def margin(state: AccountState, ctx: MarketContext) -> futures.MarginStatus:
    """The account's USDⓈ-M margin figures at the current marks."""
    settings = ctx.settings
    reserved = ctx.order_margin
    if reserved is None:
        reserved = order_margin(state, settings.default_leverage)
    return futures.margin_status(state, ctx.marks, settings.margin_tiers, order_margin=reserved)


def _usdm_view(state: AccountState, ctx: MarketContext, common: dict) -> AccountView:
    status = margin(state, ctx)
    tiers = ctx.settings.margin_tiers
    # One valuation serves the positions, the flat symbols' totals and the balances.
    flat_too = futures.position_views(state, ctx.marks, tiers, include_flat=True, status=status)
    positions = [p for p in flat_too if p.qty]
    wallet = status.wallet_balance
    held = min(wallet, status.position_margin + status.order_margin) or Decimal(0)
    balances = [Balance(asset=futures.MARGIN_ASSET, free=wallet - held, locked=held)]
    for asset in sorted(state.balances):
        if asset != futures.MARGIN_ASSET and state.balances[asset]:
            balances.append(Balance(asset=asset, free=state.balances[asset]))
    return AccountView(
        **common, balances=balances, positions=positions, equity=status.margin_balance,
        unrealized_pnl=status.unrealized_pnl,
        realized_pnl=sum((p.realized_pnl for p in flat_too), Decimal(0)),
        fees=sum((p.fees for p in flat_too), Decimal(0)),
        funding=sum((p.funding for p in flat_too), Decimal(0)),
        margin_balance=status.margin_balance, maintenance_margin=status.maintenance_margin,
        available=status.available,
    )  # fmt: skip
