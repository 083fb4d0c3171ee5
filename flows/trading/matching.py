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
- One trade is shared among one account's resting orders on one side (`Sweep`): in
  price-time priority (best price first, then the oldest), the orders through the price
  draw on the trade's quantity, and those at the price on what printed beyond the queue
  ahead of them, so the account's fills from one trade add up to no more than the market
  traded. Each account is its own simulation: another account's orders never take from
  its share.

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

    def work_off(self, volume: Decimal) -> Decimal:
        """Let `volume` printed at this order's price work off the size ahead of it;
        returns what printed beyond that size (nothing while the queue is unknown)."""
        if self.ahead is None:
            return Decimal(0)
        consumed = min(self.ahead, volume)
        self.ahead -= consumed
        return volume - consumed


def through(side: Side, limit: Decimal, price: Decimal) -> bool:
    """Whether a trade at `price` went through a limit on `side` (below a buy's)."""
    return price < limit if side == "BUY" else price > limit


def priority(side: Side, limit: Decimal, order_id: int) -> tuple[Decimal, int]:
    """Sort key of one account's resting orders on `side`: best price first, then the
    oldest (the lowest order id)."""
    return (-limit if side == "BUY" else limit, order_id)


@dataclass(slots=True)
class Sweep:
    """One trade as it reaches one account's resting orders on one side.

    The orders are offered the trade in `priority` order: `reach` says what the next may
    take, `took` what it did take. An order through the price may take what is left of
    the trade's quantity. At the trade's price, the volume that reached the level (what
    the orders through it left) first works off each order's queue ahead
    (`QueuePosition.work_off`); what printed beyond it is shared in time order, and once
    an order there stays partly unfilled the younger ones behind it get nothing.

    Attributes:
        side: The resting orders' side.
        price: The trade's price.
        left: The trade's quantity not yet taken by this account's orders.
    """

    side: Side
    price: Decimal
    left: Decimal
    _level: Decimal | None = None
    _at_level: Decimal = Decimal(0)
    _at_price: bool = False
    _blocked: bool = False

    @classmethod
    def of(cls, side: Side, trade: Trade) -> Sweep:
        """The sweep of `trade` over resting orders on `side`."""
        return cls(side, trade.price, trade.qty)

    def reach(self, limit: Decimal, queue: QueuePosition) -> Decimal:
        """What the next order (resting at `limit`, with `queue`) may take, before its
        own remaining quantity caps it; its queue ahead is worked off meanwhile."""
        if through(self.side, limit, self.price):
            self._at_price = False
            return self.left
        self._at_price = limit == self.price
        if not self._at_price:
            return Decimal(0)  # the trade printed on the far side of the limit
        if self._level is None:
            self._level = self.left
        beyond = queue.work_off(self._level)
        if self._blocked:
            return Decimal(0)
        return max(min(beyond - self._at_level, self.left), Decimal(0))

    def took(self, qty: Decimal, *, still_open: bool) -> None:
        """The order `reach` was last asked about took `qty`; `still_open` when it still
        waits for more (at the price, it then keeps the younger orders behind it out)."""
        self.left -= qty
        if self._at_price:
            self._at_level += qty
            self._blocked = self._blocked or still_open
