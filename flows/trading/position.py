"""One USDⓈ-M position in one-way mode: fills, P&L, funding, its margin and its view.

Pure functions on `flows.trading.state.PositionState`; arithmetic is exact and rounded
only where `flows.trading.amounts` says (USDT amounts to 8 decimals as Binance books
them). The engine reaches them through `flows.trading.futures`.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from flows.trading.amounts import ENTRY_PLACES, exact, round_places, round_usdt
from flows.trading.liquidation import liquidation_price
from flows.trading.settings import MarginTier
from flows.trading.state import PositionState
from flows.trading.tiers import Refusal, initial_margin, maintenance_margin
from schemas.decimals import plain
from schemas.trading import Position, Side

REDUCE_ONLY_REJECTED = Refusal(-2022, "ReduceOnly Order is rejected.")
"""Binance's answer to a reduce-only order that would not reduce the position."""

MARGIN_INSUFFICIENT = Refusal(-2019, "Margin is insufficient.")
"""Binance's answer to an order whose initial margin exceeds the available balance."""


@exact
def apply_fill(
    pos: PositionState, side: Side, qty: Decimal, price: Decimal
) -> tuple[Decimal, Decimal]:
    """Apply one fill to a one-way-mode position (mutates `pos.qty` and `pos.entry_price`).

    Opening or adding: the entry price becomes the quantity-weighted average of the held
    size and the fill (kept to 18 decimals). Reducing: the entry price stays and the
    closed part realises ``closed × (price − entry)`` for a long (the opposite for a
    short). Closing leaves qty 0 and entry 0; a fill larger than the position closes it
    and opens the remainder the other way at `price` (a flip).

    Args:
        pos: The position to change.
        side: ``BUY`` adds to a long or reduces a short; ``SELL`` the reverse.
        qty: Base quantity filled (> 0).
        price: Fill price (> 0).

    Returns:
        (realised P&L before fees rounded to 8 decimals half-even, quantity closed).

    Raises:
        ValueError: A quantity or price that is not positive.
    """
    if qty <= 0 or price <= 0:
        raise ValueError(f"a fill has a positive qty and price, got {qty} @ {price}")
    held = pos.qty
    delta = qty if side == "BUY" else -qty
    if not held or (held > 0) == (delta > 0):
        size = abs(held) + qty
        pos.entry_price = round_places(
            (abs(held) * pos.entry_price + qty * price) / size, ENTRY_PLACES
        )
        pos.qty = held + delta
        return Decimal(0), Decimal(0)
    closed = min(qty, abs(held))
    direction = 1 if held > 0 else -1
    realized = round_usdt(closed * (price - pos.entry_price) * direction)
    pos.qty = held + delta
    if not pos.qty:
        pos.qty = Decimal(0)
        pos.entry_price = Decimal(0)
    elif closed < qty:
        pos.entry_price = price
    return realized, closed


def reduce_only_qty(pos: PositionState | None, side: Side, qty: Decimal) -> Decimal:
    """How much of a reduce-only order may execute.

    Returns:
        0 when the order would not reduce the position (no position, or the same side
        as it: Binance rejects it, `REDUCE_ONLY_REJECTED`); otherwise ``min(qty,
        |pos.qty|)``, so it never flips the position.
    """
    if pos is None or not pos.qty or (pos.qty > 0) == (side == "BUY"):
        return Decimal(0)
    return min(qty, abs(pos.qty))


def opening_qty(pos: PositionState | None, side: Side, qty: Decimal) -> Decimal:
    """The part of an order that would open or add to a position (needs initial margin):
    what is left of `qty` once it has reduced the opposite position, if any."""
    return qty - reduce_only_qty(pos, side, qty)


@exact
def funding_amount(qty: Decimal, mark: Decimal, rate: Decimal) -> Decimal:
    """Funding a position receives (positive) or pays (negative) at a funding time:
    ``−qty × mark × rate``, rounded to 8 decimals half-even. With a positive rate longs
    pay and shorts receive."""
    return round_usdt(-qty * mark * rate)


@exact
def unrealized_pnl(pos: PositionState, mark: Decimal) -> Decimal:
    """``qty × (mark − entry)``, rounded to 8 decimals half-even (what closing the whole
    position at `mark` would realise, to the same cent as `apply_fill`)."""
    return round_usdt(pos.qty * (mark - pos.entry_price))


def order_margin(order_qty: Decimal, price: Decimal, leverage: int) -> Decimal:
    """Initial margin an open order reserves: ``order_qty × price / leverage``, rounded
    up to 8 decimals."""
    return initial_margin(order_qty * price, leverage)


@exact
def isolated_margin_after_fill(
    margin: Decimal,
    *,
    held: Decimal,
    closed: Decimal,
    opened: Decimal,
    price: Decimal,
    leverage: int,
    realized: Decimal,
    fee: Decimal,
) -> Decimal:
    """An isolated position's margin after a fill (the fold sets `isolated_margin` to it).

    The fill's realised P&L and fee are booked against the margin first; a reduction
    then releases the closed share of it to the cross wallet (all of it on a close), and
    what the fill opened (an add, or a flip's remainder) brings its initial margin at
    the fill price. The wallet balance itself moves only by realised P&L and fee: the
    rest is a transfer between the isolated and the cross part of it.

    Args:
        margin: `isolated_margin` before the fill.
        held: Position qty before the fill (signed).
        closed: Quantity the fill closed (`apply_fill`'s second result).
        opened: Quantity it opened or added (fill qty − closed).
        price: Fill price.
        leverage: The symbol's leverage.
        realized: The fill's realised P&L (`apply_fill`'s first result).
        fee: The fill's fee (positive when paid).

    Returns:
        The new isolated margin; the released share is rounded to 8 decimals half-even.
    """
    kept = margin + realized - fee
    if closed:
        kept -= round_usdt(kept * closed / abs(held))
    if opened:
        kept += initial_margin(opened * price, leverage)
    return kept


@exact
def position_view(
    pos: PositionState,
    mark: Decimal | None,
    *,
    tiers: Sequence[MarginTier],
    wallet_balance: Decimal | None = None,
    others_unrealized: Decimal = Decimal(0),
    others_maintenance: Decimal = Decimal(0),
) -> Position:
    """A position as the view shows it: valued at `mark`, with its liquidation price.

    Args:
        pos: The position.
        mark: Its mark price; None before the first mark (unrealised P&L 0, maintenance
            margin at the entry price).
        tiers: `PaperSettings.margin_tiers`.
        wallet_balance: WB of the liquidation formula: the cross wallet balance for a
            cross position; an isolated position uses its isolated margin when this is
            None. A cross position without it has no liquidation price.
        others_unrealized: Cross: the other cross positions' unrealised P&L.
        others_maintenance: Cross: the other cross positions' maintenance margin.
    """
    valued_at = pos.entry_price if mark is None else mark
    if wallet_balance is None and pos.margin_mode == "isolated":
        wallet_balance = pos.isolated_margin
    liquidation = (
        None
        if wallet_balance is None
        else liquidation_price(
            pos,
            wallet_balance=wallet_balance,
            others_unrealized=others_unrealized,
            others_maintenance=others_maintenance,
            tiers=tiers,
        )
    )
    return Position(
        pos.exchange,
        pos.symbol,
        plain(pos.qty),
        pos.entry_price,
        pos.leverage,
        pos.margin_mode,
        isolated_margin=pos.isolated_margin,
        mark_price=mark,
        unrealized_pnl=unrealized_pnl(pos, valued_at),
        realized_pnl=pos.realized_pnl,
        fees=pos.fees,
        funding=pos.funding,
        maintenance_margin=round_usdt(maintenance_margin(abs(pos.qty) * valued_at, tiers)),
        liquidation_price=liquidation,
    )
