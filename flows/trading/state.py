"""An account as the fold of its events leaves it: balances, orders, positions, counters.

Only `flows.trading.ledger` changes these (by applying an event), so the live engine
and a replay of the log reach the same state by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from schemas.trades import Market
from schemas.trading import MarginMode, Order, Venue


@dataclass(slots=True)
class PositionState:
    """One USDⓈ-M symbol's position and settings in one-way mode.

    Attributes:
        qty: Signed base quantity: positive long, negative short, 0 flat.
        entry_price: Average entry price of the open quantity (0 when flat).
        leverage: 1–125.
        margin_mode: ``isolated`` or ``cross``.
        isolated_margin: Margin held by an isolated position (its initial margin plus the
            realised P&L, fees and funding booked against it), 0 under cross.
        realized_pnl: P&L realised on the symbol since the account opened or reset.
        fees: Fees paid on the symbol.
        funding: Funding received (positive) or paid (negative).
        last_funding_us: The funding time last settled on it (so a funding time is paid
            once).
    """

    exchange: str
    symbol: str
    leverage: int
    margin_mode: MarginMode = "cross"
    qty: Decimal = Decimal(0)
    entry_price: Decimal = Decimal(0)
    isolated_margin: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    funding: Decimal = Decimal(0)
    last_funding_us: int = 0


@dataclass(slots=True)
class AccountState:
    """One account after its event `seq`.

    Attributes:
        balances: Wallet balance per asset. Spot: everything held, including what open
            orders lock (the lock is derived from `orders`). USDⓈ-M: the margin asset's
            wallet balance (deposits, realised P&L, fees, funding).
        orders: Open orders by order id; an order leaves when it is filled, canceled,
            rejected or expired.
        client_ids: Every client order id the account ever used → its order id, and
            `closed` keeps the final state of the orders that left `orders`, so a
            repeated client order id answers with the first order.
        positions: USDⓈ-M positions and per-symbol settings by symbol.
        next_order_id: The id the next accepted or rejected order gets.
        next_fill_id: The id the next fill gets.
    """

    account_id: str
    owner: str
    name: str
    market: Market
    exchange: str
    venue: Venue
    seq: int = 0
    time_us: int = 0
    balances: dict[str, Decimal] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    client_ids: dict[str, int] = field(default_factory=dict)
    closed: dict[int, Order] = field(default_factory=dict)
    positions: dict[str, PositionState] = field(default_factory=dict)
    next_order_id: int = 1
    next_fill_id: int = 1
