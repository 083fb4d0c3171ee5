"""One symbol's order book as the paper venue sees it: top of book, 20 levels, last trade.

The best bid and ask come from ``md.quotes.v1`` (`Quote`, Binance bookTicker) and the
deeper levels from ``md.depth.v1`` (`BookDepth`, Binance ``depth20``). The two streams
tick at different rates, so the book combines them the way the exchange's own data
allows: whichever is newer gives the top; when the quote is newer, the depth levels
behind its top are kept and any that the quote shows to be gone (a bid above the
quote's bid, an ask below its ask) are dropped. Freshness is judged in market time:
a book whose newest part is older than the stale limit is not filled against.

What one account's taker orders took from a book is theirs no more (`Taken`): each level
taken is remembered with the part of the book it came from, the quote's top or the
depth's levels, stamped with that part's update id, and the account's next taker orders
see that level smaller by what it took (`Book.levels_left`) until a newer quote replaces
the top or a newer depth snapshot the levels. A paper order is not in the real book, so
the real book does not shrink when it fills: without this, two market orders sent within
one snapshot would each take the same best ask in full.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from schemas.depth import BookDepth, Level
from schemas.quotes import Quote
from schemas.trades import Trade
from schemas.trading import Side

Stamp = tuple[str, int]
"""A part of a book and its update id: ``("quote", u)`` for the top from a bookTicker,
``("depth", u)`` for the levels of a depth20 snapshot."""


@dataclass(slots=True)
class Book:
    """The latest market data of one symbol.

    Attributes:
        quote: The latest best bid/ask, and `quote_us` its market time.
        depth: The latest 20-level snapshot, and `depth_us` its market time.
        last_price: The latest trade's price, and `last_us` its time.
    """

    quote: Quote | None = None
    quote_us: int = 0
    depth: BookDepth | None = None
    depth_us: int = 0
    last_price: Decimal | None = None
    last_us: int = 0

    def on_quote(self, quote: Quote, time_us: int) -> None:
        """Take a newer best bid/ask (an older update id is ignored)."""
        if self.quote is None or quote.update_id >= self.quote.update_id:
            self.quote, self.quote_us = quote, time_us

    def on_depth(self, depth: BookDepth, time_us: int) -> None:
        """Take a newer 20-level snapshot (an older update id is ignored)."""
        if self.depth is None or depth.update_id >= self.depth.update_id:
            self.depth, self.depth_us = depth, time_us

    def on_trade(self, trade: Trade) -> None:
        """Remember the last trade price."""
        if trade.time_us >= self.last_us:
            self.last_price, self.last_us = trade.price, trade.time_us

    @property
    def updated_us(self) -> int:
        """Market time of the newest part of the book (0 with no book)."""
        return max(self.quote_us if self.quote else 0, self.depth_us if self.depth else 0)

    def is_fresh(self, now_us: int, stale_us: int) -> bool:
        """Whether the book may be filled against at `now_us`."""
        updated = self.updated_us
        return updated > 0 and now_us - updated <= stale_us

    def _quote_on_top(self) -> bool:
        return self.quote is not None and (self.depth is None or self.quote_us >= self.depth_us)

    def _parts(self, side: Side) -> tuple[Level | None, list[Level]]:
        """The top the quote gives `side` (None when the depth is on top) and the depth
        levels behind it (all of them when the depth is on top)."""
        depth = (
            [] if self.depth is None else (self.depth.asks if side == "BUY" else self.depth.bids)
        )
        if not self._quote_on_top():
            return None, depth
        quote = self.quote
        assert quote is not None
        if side == "BUY":
            return (quote.ask_price, quote.ask_qty), [lv for lv in depth if lv[0] > quote.ask_price]
        return (quote.bid_price, quote.bid_qty), [lv for lv in depth if lv[0] < quote.bid_price]

    def levels(self, side: Side) -> list[Level]:
        """The levels an order on `side` takes from: asks for a buy, bids for a sell,
        best first."""
        top, behind = self._parts(side)
        return [level for level in ([top, *behind] if top else behind) if level[1] > 0]

    def stamps(self) -> tuple[Stamp | None, Stamp | None]:
        """The stamps of the quote and of the depth the book holds now."""
        quote = None if self.quote is None else ("quote", self.quote.update_id)
        depth = None if self.depth is None else ("depth", self.depth.update_id)
        return quote, depth

    def levels_left(self, side: Side, taken: Taken | None) -> list[Level]:
        """`levels`, less what one account already took from them (`taken`).

        A level the account took in full stays, with size 0, so a walk's reference
        price (what its slippage is measured from) is still the market's best.
        """
        if not taken:
            return self.levels(side)
        top, behind = self._parts(side)
        quote, depth = self.stamps()
        out = [] if top is None or top[1] <= 0 else [taken.left(side, top, quote)]
        out.extend(taken.left(side, level, depth) for level in behind if level[1] > 0)
        return out

    def stamp_of(self, side: Side, price: Decimal) -> Stamp | None:
        """The part of the book an order on `side` takes the level at `price` from."""
        top, _ = self._parts(side)
        quote, depth = self.stamps()
        return quote if top is not None and top[0] == price else depth

    def best(self, side: Side) -> Decimal | None:
        """The best price an order on `side` would take (best ask for a buy)."""
        levels = self.levels(side)
        return levels[0][0] if levels else None

    def size_at(self, side: Side, price: Decimal) -> Decimal:
        """The resting size at `price` on `side`'s own side of the book (bids for a
        buy): what a new order at that price queues behind."""
        own: Side = "SELL" if side == "BUY" else "BUY"
        for level_price, qty in self.levels(own):
            if level_price == price:
                return qty
        return Decimal(0)

    def reference(self, side: Side) -> Decimal | None:
        """The price a market order's notional is judged at: the best opposite price,
        else the last trade."""
        return self.best(side) or self.last_price

    def value_price(self) -> Decimal | None:
        """What one unit is worth: the last trade price, else the mid (for valuing
        holdings)."""
        if self.last_price is not None:
            return self.last_price
        bid, ask = self.best("SELL"), self.best("BUY")
        if bid is not None and ask is not None:
            return (bid + ask) / 2
        return None


@dataclass(slots=True)
class Taken:
    """What one account's taker orders took from one symbol's book, not to be taken again.

    Attributes:
        levels: (taker side, price) → (stamp of the book part the level came from,
            base quantity taken there). An entry counts only while the book still
            offers that level from the same part: a newer quote or depth makes it new
            liquidity again.
    """

    levels: dict[tuple[Side, Decimal], tuple[Stamp | None, Decimal]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.levels)

    def left(self, side: Side, level: Level, stamp: Stamp | None) -> Level:
        """`level` (from the part stamped `stamp`) less what the account took there."""
        entry = self.levels.get((side, level[0]))
        if entry is None or entry[0] != stamp:
            return level
        return (level[0], max(level[1] - entry[1], Decimal(0)))

    def record(self, book: Book, side: Side, takes: Iterable[tuple[Decimal, Decimal]]) -> None:
        """Remember the (price, qty) levels an order on `side` just took from `book`, and
        forget what the book's newer parts have replaced."""
        for price, qty in takes:
            stamp = book.stamp_of(side, price)
            entry = self.levels.get((side, price))
            before = entry[1] if entry is not None and entry[0] == stamp else Decimal(0)
            self.levels[(side, price)] = (stamp, before + qty)
        current = book.stamps()
        for key in [k for k, (stamp, _) in self.levels.items() if stamp not in current]:
            del self.levels[key]
