"""How paper orders meet the market: taking the book, and resting until trades reach them.

Two rules, both no kinder than the market was:

- An order that takes liquidity (a market order, the marketable part of a limit, a
  triggered stop) walks the book level by level from the best opposite price, each level
  up to its size, never beyond its limit; every level taken is its own fill, priced at
  that level, and says how far it slipped from the top (`walk`).
- A resting limit order fills only from trades: a trade through its price (a buy limit
  sees a trade below it) fills it, up to that trade's quantity, at its own price; a
  trade at exactly its price fills it only once the volume printed at that price since
  it rested exceeds the size that was ahead of it in the queue when it arrived
  (`QueuePosition`). The paper order is not in the real book, so a trade that went
  through its price is the only proof a real order there would have been filled, and
  never more than the volume that actually traded.

Pure functions: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from flows.trading.rules import floor_to_step
from schemas.depth import Level
from schemas.trades import Trade
from schemas.trading import Side


@dataclass(frozen=True, slots=True)
class Take:
    """One level taken by a taker order.

    Attributes:
        price: The level's price, the fill's price.
        qty: Base quantity taken there.
        reference: The best opposite price when the order started to take.
    """

    price: Decimal
    qty: Decimal
    reference: Decimal

    @property
    def slippage(self) -> Decimal:
        """How far from the top this level was, against the trader (never negative)."""
        return abs(self.price - self.reference)


def within(side: Side, price: Decimal, limit: Decimal | None) -> bool:
    """Whether a level at `price` may be taken by an order on `side` limited to `limit`."""
    if limit is None:
        return True
    return price <= limit if side == "BUY" else price >= limit


Amount = Decimal | None


# fmt: off
def walk(levels: list[Level], side: Side, *, qty: Amount = None, quote_qty: Amount = None,
         limit: Amount = None, step: Amount = None) -> list[Take]:
    # fmt: on
    """Take `qty` base (or spend/receive `quote_qty`) from `levels`, best first.

    Args:
        levels: The opposite side of the book, best first (`Book.levels`).
        side: The taker's side.
        qty: Base quantity wanted; exactly one of `qty` and `quote_qty`.
        quote_qty: Quote amount wanted; the base taken at each level is rounded down
            to `step`, as Binance sizes a quote-amount market order.
        limit: The worst price the order accepts (None for a market order).
        step: The symbol's step size.

    Returns:
        The levels taken, in order; less than asked when the book (or the limit) runs
        out.
    """
    takes: list[Take] = []
    if not levels:
        return takes
    reference = levels[0][0]
    left_base, left_quote = qty, quote_qty
    for price, size in levels:
        if not within(side, price, limit):
            break
        if left_base is not None:
            take = min(size, left_base)
            left_base -= take
        else:
            assert left_quote is not None
            take = floor_to_step(min(size, left_quote / price), step)
            left_quote -= take * price
        if take > 0:
            takes.append(Take(price, take, reference))
        if (left_base is not None and left_base <= 0) or take < size:
            break
    return takes


def taken(takes: list[Take]) -> Decimal:
    """Base quantity the takes add up to."""
    return sum((take.qty for take in takes), Decimal(0))


@dataclass(slots=True)
class QueuePosition:
    """Where a resting limit order stands at its price level.

    Attributes:
        ahead: Size still ahead of it at its price (the book's size at that level when
            it arrived, less what has traded there since); None until a book is seen
            (an order restored from the log learns it from the next book).
    """

    ahead: Decimal | None = None

    def fillable(self, side: Side, limit: Decimal, trade: Trade) -> Decimal:
        """How much of a resting order at `limit` this trade fills (before its remaining
        quantity caps it), and consume the queue ahead.

        A trade through the price fills up to its quantity; a trade at the price first
        works off the size ahead, and only what prints beyond it reaches this order.
        """
        through = trade.price < limit if side == "BUY" else trade.price > limit
        if through:
            return trade.qty
        if trade.price != limit:
            return Decimal(0)
        if self.ahead is None:
            return Decimal(0)
        ahead = self.ahead
        consumed = min(ahead, trade.qty)
        self.ahead = ahead - consumed
        return trade.qty - consumed
