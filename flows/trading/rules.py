"""The paper venue's order rules: symbol filters and every rejection, in Binance's words.

Each refusal is a `Rejection` carrying Binance's own message and error code, so a paper
order fails exactly as the same order would on the exchange (the wording was checked
against Binance's spot and USDⓈ-M error-code pages). Filters come from the symbol's
``exchangeInfo`` as `SymbolInfo` holds it; a filter the exchange does not set is not
checked. Pure functions: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from schemas.symbols import SymbolInfo
from schemas.trades import Market
from schemas.trading import OrderRequest, OrderStatus, Side


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a venue refused (or expired) an order.

    Attributes:
        reason: Binance's message, word for word.
        code: Binance's error code, None where Binance answers with a status, not an
            error.
        status: ``rejected`` (the usual) or ``expired`` (Binance accepts and expires
            it at once, e.g. an unfillable FOK).
    """

    reason: str
    code: int | None
    status: OrderStatus = "rejected"


INVALID_SYMBOL = Rejection("Invalid symbol.", -1121)
PRICE_FILTER = Rejection("Filter failure: PRICE_FILTER", -1013)
LOT_SIZE = Rejection("Filter failure: LOT_SIZE", -1013)
MARKET_LOT_SIZE = Rejection("Filter failure: MARKET_LOT_SIZE", -1013)
NOTIONAL = Rejection("Filter failure: NOTIONAL", -1013)
INSUFFICIENT_BALANCE = Rejection("Account has insufficient balance for requested action.", -2010)
MARGIN_INSUFFICIENT = Rejection("Margin is insufficient.", -2019)
SPOT_POST_ONLY = Rejection("Order would immediately match and take.", -2010)
USDM_POST_ONLY = Rejection(
    "Due to the order could not be executed as maker, the Post Only order will be rejected.",
    -5022,
)
FOK_NOT_FILLED = Rejection(
    "Due to the order could not be filled immediately, the FOK order has been rejected.",
    -5021,
    "expired",
)
SPOT_WOULD_TRIGGER = Rejection("Stop price would trigger immediately.", -2010)
USDM_WOULD_TRIGGER = Rejection("Order would immediately trigger.", -2021)
REDUCE_ONLY = Rejection("ReduceOnly Order is rejected.", -2022)

NO_FRESH_BOOK = "no fresh order book"
"""Why a market order expired: no book fresher than `PaperSettings.book_stale_after_s`
came within `PaperSettings.market_order_wait_s` (a paper venue's own reason: it never
fills at a stale price)."""
BOOK_EXHAUSTED = "insufficient liquidity in the order book"
"""Why the rest of a market or IOC order expired after it took every visible level."""


def usdm_min_notional(min_notional: Decimal) -> Rejection:
    """USDⓈ-M's minimum-notional refusal, which names the minimum (code -4164)."""
    text = f"{min_notional.normalize():f}"
    return Rejection(
        f"Order's notional must be no smaller than {text} (unless you choose reduce only).",
        -4164,
    )


def post_only(market: Market) -> Rejection:
    """A post-only (GTX) order that would take liquidity."""
    return SPOT_POST_ONLY if market == "spot" else USDM_POST_ONLY


def would_trigger(market: Market) -> Rejection:
    """A stop or take-profit whose stop price is already reached."""
    return SPOT_WOULD_TRIGGER if market == "spot" else USDM_WOULD_TRIGGER


def insufficient(market: Market) -> Rejection:
    """Not enough balance (spot) or margin (USDⓈ-M) for the order."""
    return INSUFFICIENT_BALANCE if market == "spot" else MARGIN_INSUFFICIENT


def on_step(value: Decimal, step: Decimal | None) -> bool:
    """Whether `value` is a whole multiple of `step` (always true without a step)."""
    return step is None or step <= 0 or value % step == 0


def floor_to_step(value: Decimal, step: Decimal | None) -> Decimal:
    """`value` rounded down to a multiple of `step` (unchanged without a step)."""
    if step is None or step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def check_filters(
    info: SymbolInfo, request: OrderRequest, reference_price: Decimal | None
) -> Rejection | None:
    """The first symbol filter the request breaks, in the order Binance checks them.

    Args:
        info: The symbol's filters.
        request: The order (already shape-checked by `schemas.trading.check_request`).
        reference_price: The price a market order's notional is judged at (the best
            opposite price or the last trade); None when nothing is known yet, which
            skips the notional check of a market order given in base quantity.

    Returns:
        None when every filter passes.
    """
    if info.status != "TRADING":
        return INVALID_SYMBOL
    for price in (request.price, request.stop_price):
        if price is not None and not on_step(price, info.tick_size):
            return PRICE_FILTER
    is_market = request.type in ("market", "stop_market", "take_profit_market")
    qty = request.quantity
    if qty is not None:
        if info.min_qty is not None and qty < info.min_qty:
            return LOT_SIZE
        if not on_step(qty, info.step_size):
            return LOT_SIZE
        if not is_market and info.max_qty is not None and qty > info.max_qty:
            return LOT_SIZE
        if is_market:
            cap = info.market_max_qty if info.market_max_qty is not None else info.max_qty
            if cap is not None and qty > cap:
                return MARKET_LOT_SIZE
    if info.min_notional is None or request.reduce_only:
        return None
    notional = _notional(request, reference_price)
    if notional is not None and notional < info.min_notional:
        if request.market == "usdm":
            return usdm_min_notional(info.min_notional)
        return NOTIONAL
    return None


def _notional(request: OrderRequest, reference_price: Decimal | None) -> Decimal | None:
    if request.quote_quantity is not None:
        return request.quote_quantity
    assert request.quantity is not None
    price = {"market": reference_price, "limit": request.price, "stop_limit": request.price}.get(
        request.type, request.stop_price
    )
    return None if price is None else request.quantity * price


def stop_reached(order_type: str, side: Side, stop_price: Decimal, price: Decimal) -> bool:
    """Whether a stop or take-profit with this stop price triggers at `price`.

    A stop buys when the price rises to its stop and sells when it falls to it; a
    take-profit the other way round (it buys on a fall, sells on a rise).
    """
    rising = (side == "BUY") == (order_type != "take_profit_market")
    return price >= stop_price if rising else price <= stop_price


def crosses(side: Side, limit: Decimal, best_opposite: Decimal | None) -> bool:
    """Whether a limit at `limit` would take liquidity resting at `best_opposite`."""
    if best_opposite is None:
        return False
    return limit >= best_opposite if side == "BUY" else limit <= best_opposite
