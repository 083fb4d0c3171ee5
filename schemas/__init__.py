"""Message shapes shared by every tickscan stage: the one place a message is defined."""

from schemas.candles import Candle, Interval
from schemas.deadletter import DeadLetter
from schemas.quotes import Quote
from schemas.trades import Market, Trade

__all__ = ["Candle", "DeadLetter", "Interval", "Market", "Quote", "Trade"]
