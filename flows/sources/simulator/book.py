"""The simulated market's order books: best bid and offer and 20 levels, as its trades print.

A `SimBook` holds the quoted book of every symbol of one simulated market (spot, or its
perpetuals). The trades print against it: the market asks it where the book is before
each taker order (`place`), a taker buy prints at its ask and a sell at its bid (a sweep
one tick further per level), and whenever the book moves it records the quote that says
so, timed at the move, before the trade that follows it. A symbol's book moves at most
once per `QUOTE_GAP_US` of market time (Binance's bookTicker is real time, but a paper
engine needs the book only as fresh as it can act on it): in between, the fair price
walks but the book stays where it was quoted, so every taker order prints against the
last quote. The bound keeps quotes to ten a second per symbol at most.

For the symbols `watch` names (what the paper engine asks for in ``md.depth_watch.v1``),
the book also records a `BookDepth` every `DEPTH_EVERY_US` of market time, like Binance's
``<symbol>@depth20@100ms``: its first level is the quote (price and size), the next ones
one tick apart, each resting a little more than the one before. The levels behind the
first, and the sizes at the best prices, are drawn per move of the book, named by the
seed, the symbol and the move's number, so the same seed gives the same book whatever
was watched when.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Sequence
from decimal import Decimal

from schemas.depth import BookDepth, Level
from schemas.quotes import Quote
from schemas.trades import Market

QUOTE_GAP_US = 100_000
"""Least market time between two moves of one symbol's book (so between two quotes)."""

DEPTH_EVERY_US = 100_000
"""A watched symbol's depth is recorded this often (``@depth20@100ms``)."""

DEPTH_LEVELS = 20
"""Levels per side of a depth record."""

TOP_DEPTH = 3.0
"""Resting size at the best price, in median trade sizes (times a lognormal draw)."""

_LEVEL_GROWTH = 0.35  # each level further out rests this much more, in top sizes
_NEVER = 1 << 62  # no depth is due: nothing is watched
_MAX_BEHIND_US = 1_000_000  # slots further behind than this are skipped, not recorded
# A 64-bit mix (splitmix64's constants) naming a top-of-book size by seed, symbol and move.
_MIX_A, _MIX_B, _MIX_C = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_MASK = (1 << 64) - 1


class SimBook:
    """The quoted books of one simulated market's symbols, with their quotes and depth.

    Args:
        exchange: The `exchange` of every record.
        market: The `market` of every record.
        names: The symbols, by index.
        price_decimals: Decimals of each symbol's prices (its tick is 1e-decimals).
        qty_decimals: Decimals of each symbol's quantities (its step is 1e-decimals).
        top_steps: Median resting size at each symbol's best price, in steps.
        sizes: A table of lognormal size factors to draw sizes from.
        seed: Seed of the sizes.
        quotes: Record quotes for `take_quotes` (the book moves the same either way).
    """

    def __init__(
        self,
        exchange: str,
        market: Market,
        names: Sequence[str],
        price_decimals: Sequence[int],
        qty_decimals: Sequence[int],
        top_steps: Sequence[float],
        sizes: Sequence[float],
        seed: int,
        *,
        quotes: bool = True,
    ) -> None:
        n = len(names)
        self.exchange = exchange
        self.market: Market = market
        self.names = list(names)
        self.index = {name: i for i, name in enumerate(names)}
        self._pdec = list(price_decimals)
        self._qdec = list(qty_decimals)
        self._top = list(top_steps)
        self.sizes = list(sizes)
        """The table of lognormal size factors sizes are drawn from."""
        self.seed = seed
        self.bid = [0] * n
        """Each symbol's best bid, in ticks (0: never quoted)."""
        self.ask = [0] * n
        """Each symbol's best ask, in ticks (0: never quoted)."""
        self.moved_us = [-QUOTE_GAP_US] * n
        """Market time of each symbol's last move."""
        self._moves = [0] * n
        self._ladders: dict[int, tuple[int, list[Level], list[Level]]] = {}
        self._quotes: deque[Quote] | None = deque() if quotes else None
        self._depths: deque[BookDepth] = deque()
        self._watched: list[int] = []
        self.next_depth_us = _NEVER
        """Market time of the next depth record due (far away while nothing is watched)."""

    def place(self, s: int, bid: int, ask: int, time_us: int) -> bool:
        """Move symbol `s`'s book to `bid`/`ask` at `time_us`, if it may move now.

        It moves when it was never quoted, or when it differs and `QUOTE_GAP_US` has
        passed since its last move; the move records its quote. Call `catch_up` first
        when depth may be due.

        Args:
            s: The symbol's index.
            bid: Best bid in ticks, at least 1.
            ask: Best ask in ticks, above `bid`.
            time_us: Market time.

        Returns:
            Whether it moved.
        """
        if self.bid[s] and (
            time_us - self.moved_us[s] < QUOTE_GAP_US or (bid == self.bid[s] and ask == self.ask[s])
        ):
            return False
        self.bid[s], self.ask[s] = bid, ask
        self.moved_us[s] = time_us
        self._moves[s] += 1
        if self._quotes is not None:
            self._quotes.append(self.quote(s, time_us))
        return True

    def _top_steps(self, s: int, side: int) -> int:
        """Resting size at symbol `s`'s best bid (`side` 0) or ask (1) since its last move,
        in steps: a lognormal draw named by the seed, the symbol and the move (a hash, so
        a move that nobody looks at costs nothing)."""
        x = (self.seed * _MIX_A + s * _MIX_B + self._moves[s] * _MIX_C + side) & _MASK
        x = ((x ^ (x >> 31)) * _MIX_B) & _MASK
        x ^= x >> 29
        return int(self._top[s] * self.sizes[x % len(self.sizes)]) or 1

    def quote(self, s: int, time_us: int) -> Quote:
        """Symbol `s`'s book ticker now: its best bid and ask with their sizes.

        `update_id` is the market time, which orders a symbol's quotes across restarts too.
        """
        pdec, qdec = self._pdec[s], self._qdec[s]
        return Quote(
            self.exchange,
            self.market,
            self.names[s],
            time_us,
            Decimal(self.bid[s]).scaleb(-pdec),
            Decimal(self._top_steps(s, 0)).scaleb(-qdec),
            Decimal(self.ask[s]).scaleb(-pdec),
            Decimal(self._top_steps(s, 1)).scaleb(-qdec),
            time_us,
            time_us,
        )

    def depth(self, s: int, time_us: int) -> BookDepth:
        """Symbol `s`'s 20 levels now: the quote first, then one tick apart.

        A side is shorter when it would reach a price below one tick.
        """
        bids, asks = self._ladder(s)
        return BookDepth(
            self.exchange,
            self.market,
            self.names[s],
            time_us,
            bids,
            asks,
            received_us=time_us,
            time_us=time_us,
        )

    def _ladder(self, s: int) -> tuple[list[Level], list[Level]]:
        moves = self._moves[s]
        cached = self._ladders.get(s)
        if cached is not None and cached[0] == moves:
            return cached[1], cached[2]
        # Named by seed, symbol and move: the same book whatever was watched before.
        rand = random.Random(f"{self.seed}:{self.market}:{s}:{moves}").random
        sizes, top = self.sizes, self._top[s]
        pdec, qdec = self._pdec[s], self._qdec[s]

        def side(best: int, first_steps: int, direction: int) -> list[Level]:
            levels = [(Decimal(best).scaleb(-pdec), Decimal(first_steps).scaleb(-qdec))]
            for k in range(1, DEPTH_LEVELS):
                ticks = best + direction * k
                if ticks < 1:
                    break
                factor = sizes[int(rand() * len(sizes))] * (1.0 + _LEVEL_GROWTH * k)
                steps = int(top * factor) or 1
                levels.append((Decimal(ticks).scaleb(-pdec), Decimal(steps).scaleb(-qdec)))
            return levels

        bids = side(self.bid[s], self._top_steps(s, 0), -1)
        asks = side(self.ask[s], self._top_steps(s, 1), 1)
        self._ladders[s] = (moves, bids, asks)
        return bids, asks

    def watch(self, names: Iterable[str], now_us: int) -> list[str]:
        """Record depth for exactly these symbols from the next slot after `now_us` on.

        Args:
            names: Symbol names; those this book does not list are ignored.
            now_us: The market time reached.

        Returns:
            The watched names this book lists, sorted.
        """
        watched = sorted({self.index[n] for n in names if n in self.index})
        was = bool(self._watched)
        self._watched = watched
        if not watched:
            self.next_depth_us = _NEVER
        elif not was:
            self.next_depth_us = (now_us // DEPTH_EVERY_US + 1) * DEPTH_EVERY_US
        return [self.names[s] for s in watched]

    @property
    def watched(self) -> list[str]:
        """The symbols whose depth is recorded."""
        return [self.names[s] for s in self._watched]

    def catch_up(self, time_us: int) -> None:
        """Record the depth of every watched, quoted symbol at each slot before `time_us`.

        Call it before the book moves at `time_us`: a slot shows the book as it stands at
        its time, a move at that very time included.
        """
        depths = self._depths
        if time_us - self.next_depth_us > _MAX_BEHIND_US:
            # A long quiet stretch: its slots would all show the same book; keep the last.
            behind = (time_us - self.next_depth_us - _MAX_BEHIND_US) // DEPTH_EVERY_US + 1
            self.next_depth_us += behind * DEPTH_EVERY_US
        while self.next_depth_us < time_us:
            at = self.next_depth_us
            for s in self._watched:
                if self.bid[s]:
                    depths.append(self.depth(s, at))
            self.next_depth_us = at + DEPTH_EVERY_US

    def take_quotes(self, until_us: int) -> list[Quote]:
        """The recorded quotes up to market time `until_us`, oldest first."""
        pending = self._quotes
        out: list[Quote] = []
        while pending and pending[0].time_us <= until_us:  # type: ignore[operator]
            out.append(pending.popleft())
        return out

    def take_depth(self, until_us: int) -> list[BookDepth]:
        """The recorded depth up to market time `until_us`, oldest first."""
        pending = self._depths
        out: list[BookDepth] = []
        while pending and pending[0].update_id <= until_us:
            out.append(pending.popleft())
        return out
