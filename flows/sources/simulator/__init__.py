"""The simulated market (exchange `sim`): trades, quotes and depth, its regimes, its history.

`market` prints trades live for the symbols `symbols` lists, against the books `book`
keeps (their quotes, and 20 levels of depth for the watched symbols); `regimes`
says, from the seed, which regime each symbol is in at any time; `history` writes the
candles the market would have printed over the last day (`buckets`: those candles as
integer arrays), so a fresh store has a complete board at once, and `stored` says where
each symbol's stored candles end, so a restart continues its prices and trade ids.
`perps` lists the busiest symbols as USDⓈ-M perpetuals too (their trades, and each
second's marks, funding, open interest and liquidations from `perp_model`),
`perp_history` writes their last day at first start, and `perp_candles` derives their
candles from their twins' as `history` draws them.
"""

from flows.sources.simulator.book import QUOTE_GAP_US, SimBook
from flows.sources.simulator.market import (
    DEFAULT_START_US,
    SymbolResume,
    SyntheticMarket,
    symbol_infos,
)
from flows.sources.simulator.symbols import SymbolSpec

__all__ = [
    "DEFAULT_START_US",
    "QUOTE_GAP_US",
    "SimBook",
    "SymbolResume",
    "SymbolSpec",
    "SyntheticMarket",
    "symbol_infos",
]
