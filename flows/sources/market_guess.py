"""Which Binance market a file's trades come from, told by how their decimals are printed.

Neither a capture nor an archive says whether it is spot or USDⓈ-M, and ids do not tell
either (each symbol of each market counts its own trades: BTCUSDT spot was near 3.8e9
and USDⓈ-M near 5.3e9 in August 2024, but a young spot symbol has small ids and so does
a young perpetual). The print format does: Binance spot writes every price and quantity
with exactly 8 decimals, on the WebSocket, in REST answers and in data.binance.vision
archives alike (``"p":"0.35280000","q":"58.00000000"``, ``61751.99000000,0.00016000``),
while USDⓈ-M writes them at the symbol's tick and step size (``"p":"61800.30","q":"0.006"``,
``"p":"1.01100","q":"10"``); no futures contract has an 8-decimal quantity step. `Decimal`
keeps the exponent it was parsed with, so the trades themselves still carry the format.
The format is the printer's, not the market's mood, so even a couple of trades tell; a
file whose trades disagree says nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.trades import Market, Trade

SAMPLE = 1_000
"""Trades of a file looked at: a file's format does not change within it."""

_SPOT_EXPONENT = -8


@dataclass
class MarketEvidence:
    """Counts of trades printed the spot way and the USDⓈ-M way, over a file's first trades.

    Attributes:
        spot_printed: Trades whose price and quantity both have exactly 8 decimals.
        other_printed: Trades with fewer decimals on either.
    """

    spot_printed: int = 0
    other_printed: int = 0

    @property
    def seen(self) -> int:
        """Trades looked at so far."""
        return self.spot_printed + self.other_printed

    def add(self, trade: Trade) -> None:
        """Look at one more trade, while the sample is not full."""
        if self.seen >= SAMPLE:
            return
        price, qty = trade.price.as_tuple().exponent, trade.qty.as_tuple().exponent
        if price == _SPOT_EXPONENT and qty == _SPOT_EXPONENT:
            self.spot_printed += 1
        else:
            self.other_printed += 1

    def guess(self) -> Market | None:
        """The market the trades look like: None when too few or when they disagree."""
        if not self.seen:
            return None
        if not self.other_printed:
            return "spot"
        if not self.spot_printed:
            return "usdm"
        return None

    def contradiction(self, market: Market) -> str | None:
        """Why the trades do not look like `market`, or None when they do (or cannot tell)."""
        guess = self.guess()
        if guess is None or guess == market:
            return None
        if guess == "usdm":
            why = "prices and quantities at tick size, where spot prints 8 decimals"
        else:
            why = "every price and quantity with 8 decimals, as spot does"
        return f"its trades look like {guess}: the first {self.seen:,} print {why}"
