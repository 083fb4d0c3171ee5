"""Where a USDⓈ-M position is liquidated and where its margin is gone (one-way mode).

Binance's liquidation price ("How to Calculate Liquidation Price of USDⓈ-M Contracts"):

    LP = (WB − TMM1 + UPNL1 + cumB + cumL − cumS − Side1BOTH × Position1BOTH × EP1BOTH
          − Position1LONG × EP1LONG + Position1SHORT × EP1SHORT)
         / (Position1BOTH × MMR_B + Position1LONG × MMR_L + Position1SHORT × MMR_S
            − Side1BOTH × Position1BOTH − Position1LONG + Position1SHORT)

In one-way mode the LONG and SHORT (hedge-mode) terms are zero, leaving

    LP = (WB − TMM1 + UPNL1 + cumB − Side × |qty| × EP) / (|qty| × MMR − Side × |qty|)

with Side 1 for a long and −1 for a short. Isolated: WB is the position's isolated
margin and TMM1 = UPNL1 = 0. Cross: WB is the cross wallet balance, TMM1 and UPNL1 the
maintenance margin and unrealised P&L of the account's other cross positions. It is the
mark at which margin balance equals maintenance margin; the engine liquidates when the
margin balance falls below it (`flows.trading.futures.to_liquidate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from flows.trading.amounts import PRICE_PLACES, exact, round_places
from flows.trading.settings import MarginTier
from flows.trading.state import PositionState


@exact
def liquidation_price(
    pos: PositionState,
    *,
    wallet_balance: Decimal,
    others_unrealized: Decimal = Decimal(0),
    others_maintenance: Decimal = Decimal(0),
    tiers: Sequence[MarginTier],
) -> Decimal | None:
    """The mark price at which `pos` reaches its maintenance margin (Binance's formula).

    The rate and amount (MMR, cumB) are those of the tier the notional *at the
    liquidation price* falls in, as Binance's page prescribes ("if the position at the
    liquidation price and the current position are of different levels, substitute the
    rate and amount of the level at the liquidation price"): the formula is solved with
    each tier and the solution that lies in its own tier is kept. Maintenance margin is
    continuous and its rate below 1, so margin balance minus maintenance margin is
    strictly monotonic in the price and exactly one tier's solution is consistent. (With
    tiers whose amounts leave a jump, it is for a long the highest and for a short the
    lowest price at which margin balance ≤ maintenance margin, which may be a tier's
    edge.)

    Args:
        pos: The position (its signed qty and entry price).
        wallet_balance: WB: the isolated margin (isolated) or the cross wallet balance
            (cross: the wallet minus every isolated position's margin).
        others_unrealized: UPNL1: the other cross positions' unrealised P&L (0 isolated).
        others_maintenance: TMM1: the other cross positions' maintenance margin (0
            isolated).
        tiers: `PaperSettings.margin_tiers`.

    Returns:
        The price, rounded to 8 decimals half-even; None for a flat position or when the
        price is ≤ 0 (a long that can never be liquidated, or a position already beyond
        help at any price).
    """
    if not pos.qty:
        return None
    side = 1 if pos.qty > 0 else -1
    size = abs(pos.qty)
    base = wallet_balance - others_maintenance + others_unrealized - side * size * pos.entry_price
    found: Decimal | None = None
    for i, tier in enumerate(tiers):
        low = tier.floor / size
        high = tiers[i + 1].floor / size if i + 1 < len(tiers) else None
        root = (base + tier.amount) / (size * tier.rate - side * size)
        if side > 0 and root >= low:
            # a long's margin falls with the price: the highest price at or below which
            # it is liquidatable
            price = root if high is None else min(root, high)
            found = price if found is None else max(found, price)
        elif side < 0 and (high is None or root < high):
            price = max(root, low)
            found = price if found is None else min(found, price)
    if found is None or found <= 0:
        return None
    return round_places(found, PRICE_PLACES)


@exact
def bankruptcy_price(
    pos: PositionState,
    *,
    wallet_balance: Decimal,
    others_unrealized: Decimal = Decimal(0),
    places: int = PRICE_PLACES,
) -> Decimal | None:
    """The price at which the position's margin is exactly lost.

    Solves ``wallet_balance + others_unrealized + qty × (price − entry) = 0``. The
    engine closes a liquidated position there, so an isolated liquidation loses exactly
    the isolated margin (and never more: a gap past it is the venue's loss, as Binance's
    insurance fund takes it), and a cross liquidation exactly the cross margin balance.

    Args:
        pos: The position.
        wallet_balance: The isolated margin (isolated) or the cross wallet balance
            (cross).
        others_unrealized: Cross: the unrealised P&L of the other cross positions, at
            the prices they are closed at (their marks); 0 isolated.
        places: Decimals of the result (8; a symbol's tick can be given instead as its
            number of decimals).

    Returns:
        The price rounded in the trader's favour (a long's up, a short's down), so the
        loss at it never exceeds the margin: what is left (less than |qty| × 10^−places)
        stays with the engine to book (Binance sends it to the insurance fund). None for
        a flat position or when the price would be ≤ 0 (a long with margin covering its
        whole notional cannot go bankrupt).
    """
    if not pos.qty:
        return None
    price = pos.entry_price - (wallet_balance + others_unrealized) / pos.qty
    if price <= 0:
        return None
    return round_places(price, places, ROUND_CEILING if pos.qty > 0 else ROUND_FLOOR)
