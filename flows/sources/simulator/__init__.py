"""The simulated market (exchange `sim`): trades and quotes, its regimes, its generated history.

`market` prints trades and book tickers live; `regimes` says, from the seed, which regime
each symbol is in at any time; `history` writes the candles the market would have printed
over the last day, so a fresh store has a complete board at once and a restart continues
each symbol's prices and trade ids.
"""

from flows.sources.simulator.market import (
    DEFAULT_START_US,
    QUOTE_EVERY_US,
    SymbolResume,
    SymbolSpec,
    SyntheticMarket,
    symbol_infos,
)

__all__ = [
    "DEFAULT_START_US",
    "QUOTE_EVERY_US",
    "SymbolResume",
    "SymbolSpec",
    "SyntheticMarket",
    "symbol_infos",
]
