"""USDⓈ-M margin rules (USDT-margined, one-way mode) as pure functions: the one place
the engine and the fold (`flows.trading.ledger`) take them from.

None reads a clock or does I/O; all take and return exact ``Decimal``s
(`flows.trading.amounts` says where results are rounded: USDT amounts to 8 decimals as
Binance books them).

Money model: the account's wallet balance of the margin asset (``balances["USDT"]``)
holds deposits, realised P&L, fees and funding of every position. An isolated
position's `PositionState.isolated_margin` is the part of that wallet set aside for it;
the rest is the cross wallet balance. Positions are valued at the mark price.

This module holds the account-wide rules (margin status, what to liquidate and where to
close it, the positions' views) and re-exports the rest: the tiers
(`flows.trading.tiers`), one position's fills, P&L and funding
(`flows.trading.position`) and the liquidation and bankruptcy prices
(`flows.trading.liquidation`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from flows.trading.amounts import MARGIN_ASSET, exact
from flows.trading.liquidation import bankruptcy_price, liquidation_price
from flows.trading.position import (
    MARGIN_INSUFFICIENT,
    REDUCE_ONLY_REJECTED,
    apply_fill,
    funding_amount,
    isolated_margin_after_fill,
    opening_qty,
    order_margin,
    position_view,
    reduce_only_qty,
    unrealized_pnl,
)
from flows.trading.settings import MarginTier
from flows.trading.state import AccountState, PositionState
from flows.trading.tiers import (
    INVALID_LEVERAGE,
    POSITION_TOO_LARGE,
    Refusal,
    initial_margin,
    leverage_error,
    maintenance_margin,
    max_leverage,
    max_notional,
    tier_of,
)
from schemas.trading import MarginMode, Position

__all__ = [
    "INVALID_LEVERAGE",
    "MARGIN_ASSET",
    "MARGIN_INSUFFICIENT",
    "POSITION_TOO_LARGE",
    "REDUCE_ONLY_REJECTED",
    "MarginStatus",
    "PositionMargin",
    "Refusal",
    "apply_fill",
    "bankruptcy_price",
    "close_out_prices",
    "funding_amount",
    "initial_margin",
    "isolated_margin_after_fill",
    "leverage_error",
    "liquidation_price",
    "maintenance_margin",
    "margin_status",
    "max_leverage",
    "max_notional",
    "opening_qty",
    "order_margin",
    "position_view",
    "position_views",
    "reduce_only_qty",
    "tier_of",
    "to_liquidate",
    "unrealized_pnl",
]


# ---- the account --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PositionMargin:
    """One open position valued at its mark.

    Attributes:
        mark_price: The mark it was valued at (its entry price when no mark is known
            yet: unrealised P&L 0).
        notional: |qty| × mark.
        margin: Isolated: its isolated margin (wallet part). Cross: its initial margin
            at the mark (notional / leverage).
    """

    symbol: str
    margin_mode: MarginMode
    mark_price: Decimal
    notional: Decimal
    unrealized_pnl: Decimal
    maintenance_margin: Decimal
    margin: Decimal

    @property
    def margin_balance(self) -> Decimal:
        """Isolated: the position's margin balance (margin + unrealised P&L)."""
        return self.margin + self.unrealized_pnl


@dataclass(frozen=True, slots=True)
class MarginStatus:
    """A USDⓈ-M account's margin at a set of marks (Binance's account figures).

    Attributes:
        wallet_balance: The margin asset's wallet balance (cross and isolated parts).
        margin_balance: wallet_balance + unrealized_pnl (the account's equity).
        maintenance_margin: Of every position.
        unrealized_pnl: Of every position, at the mark.
        position_margin: Isolated margins plus cross positions' initial margin.
        order_margin: Initial margin of open orders (the caller computes it with
            `order_margin` and passes it in).
        available: What a new order may use: cross wallet + cross unrealised P&L −
            cross positions' initial margin − order margin, never below 0.
        cross_wallet_balance: wallet_balance − every isolated margin.
        cross_unrealized_pnl: Of the cross positions.
        cross_maintenance_margin: Of the cross positions.
        positions: Every open position by symbol.
    """

    wallet_balance: Decimal
    margin_balance: Decimal
    maintenance_margin: Decimal
    unrealized_pnl: Decimal
    position_margin: Decimal
    order_margin: Decimal
    available: Decimal
    cross_wallet_balance: Decimal
    cross_unrealized_pnl: Decimal
    cross_maintenance_margin: Decimal
    positions: dict[str, PositionMargin] = field(default_factory=dict)

    @property
    def cross_margin_balance(self) -> Decimal:
        """Cross wallet balance + cross unrealised P&L: what cross positions stand on."""
        return self.cross_wallet_balance + self.cross_unrealized_pnl

    @property
    def isolated(self) -> dict[str, PositionMargin]:
        """The isolated positions by symbol."""
        return {s: p for s, p in self.positions.items() if p.margin_mode == "isolated"}

    def cross_others(self, symbol: str) -> tuple[Decimal, Decimal]:
        """(unrealised P&L, maintenance margin) of the cross positions other than
        `symbol`: UPNL1 and TMM1 of the liquidation formula."""
        others = [p for s, p in self.positions.items() if s != symbol and p.margin_mode == "cross"]
        return (
            sum((p.unrealized_pnl for p in others), Decimal(0)),
            sum((p.maintenance_margin for p in others), Decimal(0)),
        )


def _open_positions(account: AccountState) -> Iterable[PositionState]:
    """Open positions in symbol order (so sums and lists never depend on dict order)."""
    return (account.positions[s] for s in sorted(account.positions) if account.positions[s].qty)


@exact
def margin_status(
    account: AccountState,
    marks: Mapping[str, Decimal],
    tiers: Sequence[MarginTier],
    *,
    order_margin: Decimal = Decimal(0),
    asset: str = MARGIN_ASSET,
) -> MarginStatus:
    """Value every open position at its mark and sum the account's margin figures.

    Args:
        account: The account.
        marks: Mark price by symbol; a position without one is valued at its entry.
        tiers: `PaperSettings.margin_tiers`.
        order_margin: Initial margin of the account's open orders (`order_margin` of
            each, summed by the caller).
        asset: The margin asset.

    Returns:
        The figures for the pre-trade check (`available`), the liquidation check
        (`to_liquidate`) and the view.
    """
    wallet = account.balances.get(asset, Decimal(0))
    isolated_total = sum(
        (p.isolated_margin for p in account.positions.values() if p.margin_mode == "isolated"),
        Decimal(0),
    )
    positions: dict[str, PositionMargin] = {}
    for pos in _open_positions(account):
        mark = marks.get(pos.symbol, pos.entry_price)
        notional = abs(pos.qty) * mark
        isolated = pos.margin_mode == "isolated"
        positions[pos.symbol] = PositionMargin(
            symbol=pos.symbol,
            margin_mode=pos.margin_mode,
            mark_price=mark,
            notional=notional,
            unrealized_pnl=unrealized_pnl(pos, mark),
            maintenance_margin=maintenance_margin(notional, tiers),
            margin=pos.isolated_margin if isolated else initial_margin(notional, pos.leverage),
        )
    cross = [p for p in positions.values() if p.margin_mode == "cross"]
    cross_wallet = wallet - isolated_total
    cross_upnl = sum((p.unrealized_pnl for p in cross), Decimal(0))
    cross_initial = sum((p.margin for p in cross), Decimal(0))
    upnl = sum((p.unrealized_pnl for p in positions.values()), Decimal(0))
    return MarginStatus(
        wallet_balance=wallet,
        margin_balance=wallet + upnl,
        maintenance_margin=sum((p.maintenance_margin for p in positions.values()), Decimal(0)),
        unrealized_pnl=upnl,
        position_margin=isolated_total + cross_initial,
        order_margin=order_margin,
        available=max(Decimal(0), cross_wallet + cross_upnl - cross_initial - order_margin),
        cross_wallet_balance=cross_wallet,
        cross_unrealized_pnl=cross_upnl,
        cross_maintenance_margin=sum((p.maintenance_margin for p in cross), Decimal(0)),
        positions=positions,
    )


def _liquidatable(status: MarginStatus) -> list[str]:
    """The symbols `status` says are below maintenance (see `to_liquidate`)."""
    doomed = [
        s for s, p in status.positions.items()
        if p.margin_mode == "isolated" and p.margin_balance < p.maintenance_margin
    ]  # fmt: skip
    if status.cross_margin_balance < status.cross_maintenance_margin:
        doomed += [s for s, p in status.positions.items() if p.margin_mode == "cross"]
    return sorted(doomed)


def to_liquidate(
    account: AccountState, marks: Mapping[str, Decimal], tiers: Sequence[MarginTier]
) -> list[str]:
    """The symbols to liquidate now, in symbol order.

    An isolated position whose isolated margin + unrealised P&L is below its
    maintenance margin; every cross position when the cross margin balance (cross
    wallet + cross unrealised P&L) is below the cross maintenance margin. At exactly the
    maintenance margin (the mark at the liquidation price) nothing is liquidated.
    """
    return _liquidatable(margin_status(account, marks, tiers))


@exact
def close_out_prices(
    account: AccountState, marks: Mapping[str, Decimal], tiers: Sequence[MarginTier]
) -> dict[str, Decimal]:
    """Where the engine closes each position `to_liquidate` names, so the account loses
    exactly the margin that stood behind it.

    An isolated position closes at its bankruptcy price (its isolated margin is lost).
    Cross positions close together: each at its mark except the one with the largest
    notional (ties: the first symbol), which closes at its bankruptcy price given the
    others' unrealised P&L at their marks, so the cross wallet ends at 0 (what rounding
    leaves, less than a hundred-millionth per unit, stays with the engine to book). A
    position whose bankruptcy price does not exist (≤ 0) closes at its mark.

    Returns:
        Close price by symbol, for the symbols to liquidate (empty when none).
    """
    status = margin_status(account, marks, tiers)
    prices: dict[str, Decimal] = {}
    doomed = _liquidatable(status)
    cross = [s for s in doomed if status.positions[s].margin_mode == "cross"]
    for symbol in doomed:
        prices[symbol] = status.positions[symbol].mark_price
        if symbol not in cross:
            pos = account.positions[symbol]
            bankrupt = bankruptcy_price(pos, wallet_balance=pos.isolated_margin)
            prices[symbol] = bankrupt if bankrupt is not None else prices[symbol]
    if cross:
        # `cross` is in symbol order and max() keeps the first of equals
        last = max(cross, key=lambda s: status.positions[s].notional)
        others, _ = status.cross_others(last)
        bankrupt = bankruptcy_price(
            account.positions[last],
            wallet_balance=status.cross_wallet_balance,
            others_unrealized=others,
        )
        if bankrupt is not None:
            prices[last] = bankrupt
    return prices


# ---- views --------------------------------------------------------------------------


def position_views(
    account: AccountState,
    marks: Mapping[str, Decimal],
    tiers: Sequence[MarginTier],
    *,
    include_flat: bool = False,
    status: MarginStatus | None = None,
) -> list[Position]:
    """Every position of the account as the view shows it, in symbol order.

    Cross positions get their liquidation price from the cross wallet balance and the
    other cross positions at their marks.

    Args:
        account: The account.
        marks: Mark price by symbol.
        tiers: `PaperSettings.margin_tiers`.
        include_flat: Also list flat symbols (their realised P&L, fees and funding).
        status: `margin_status` of the account at these marks when the caller has it
            already (its order margin does not matter here); computed when None.
    """
    if status is None:
        status = margin_status(account, marks, tiers)
    views = []
    for symbol in sorted(account.positions):
        pos = account.positions[symbol]
        if not pos.qty and not include_flat:
            continue
        if pos.margin_mode == "cross":
            upnl, mm = status.cross_others(symbol)
            wallet: Decimal | None = status.cross_wallet_balance
        else:
            upnl, mm, wallet = Decimal(0), Decimal(0), None
        views.append(
            position_view(
                pos,
                marks.get(symbol),
                tiers=tiers,
                wallet_balance=wallet,
                others_unrealized=upnl,
                others_maintenance=mm,
            )
        )
    return views
