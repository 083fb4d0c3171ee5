"""One symbol's order book as the paper venue sees it: top of book, 20 levels, last trade.

The best bid and ask come from ``md.quotes.v1`` (`Quote`, Binance bookTicker) and the
deeper levels from ``md.depth.v1`` (`BookDepth`, Binance ``depth20``). The two streams
tick at different rates, so the book combines them the way the exchange's own data
allows: whichever is newer gives the top; when the quote is newer, the depth levels
behind its top are kept and any that the quote shows to be gone (a bid above the
quote's bid, an ask below its ask) are dropped. Freshness is judged in market time:
a book whose newest part is older than the stale limit is not filled against.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from schemas.depth import BookDepth, Level
from schemas.quotes import Quote
from schemas.trades import Trade
from schemas.trading import Side


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

    def levels(self, side: Side) -> list[Level]:
        """The levels an order on `side` takes from: asks for a buy, bids for a sell,
        best first."""
        depth = (
            [] if self.depth is None else (self.depth.asks if side == "BUY" else self.depth.bids)
        )
        if not self._quote_on_top():
            return [level for level in depth if level[1] > 0]
        quote = self.quote
        assert quote is not None
        if side == "BUY":
            top: Level = (quote.ask_price, quote.ask_qty)
            behind = [level for level in depth if level[0] > quote.ask_price]
        else:
            top = (quote.bid_price, quote.bid_qty)
            behind = [level for level in depth if level[0] < quote.bid_price]
        return [level for level in [top, *behind] if level[1] > 0]

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
