"""Which symbols' market data the paper accounts need, by Kafka key.

The engine process reads every market record's key and decodes only the records of
symbols some account needs (the bench's market prints 20,000 trades a second, the
accounts care about a few hundred symbols): a symbol with an open order, a USDⓈ-M
position, or (spot) an asset held besides the account's deposit assets, valued on its
pair with one of them. `Interest` keeps the union of every account's needs, counted, so
an account's change costs only its own symbols.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from flows.trading.state import AccountState
from schemas.symbols import SymbolInfo
from schemas.topics import symbol_key


class Pairs:
    """Spot pairs by (exchange, market, base asset, quote asset), to value a held asset.

    Args:
        symbols: The symbols the engine knows.
    """

    def __init__(self, symbols: Iterable[SymbolInfo]) -> None:
        self._by_assets: dict[tuple[str, str, str, str], str] = {
            (s.exchange, s.market, s.base_asset, s.quote_asset): s.symbol for s in symbols
        }

    def valuing(self, exchange: str, market: str, asset: str, quotes: Sequence[str]) -> str | None:
        """The symbol that prices `asset` in the first of `quotes` that has a pair with it."""
        for quote in quotes:
            found = self._by_assets.get((exchange, market, asset, quote))
            if found is not None:
                return found
        return None


def account_needs(account: AccountState, home: Sequence[str], pairs: Pairs) -> frozenset[bytes]:
    """The Kafka keys of the symbols one account needs now.

    Args:
        account: The account as the fold left it.
        home: Its deposit assets (what it values in), e.g. ``["USDT"]``.
        pairs: Spot pairs, to value a held asset.
    """
    exchange, market = account.exchange, account.market
    symbols = {order.request.symbol for order in account.orders.values()}
    symbols.update(s for s, p in account.positions.items() if p.qty)
    if market == "spot":
        for asset, amount in account.balances.items():
            if amount and asset not in home:
                pair = pairs.valuing(exchange, market, asset, home)
                if pair is not None:
                    symbols.add(pair)
    return frozenset(symbol_key(exchange, market, s).encode() for s in symbols)


class Interest:
    """The keys every account needs together, updated one account at a time."""

    def __init__(self) -> None:
        self.keys: Counter[bytes] = Counter()
        self._by_account: dict[str, frozenset[bytes]] = {}

    def __contains__(self, key: object) -> bool:
        return key in self.keys

    def update(self, account_id: str, needs: frozenset[bytes]) -> frozenset[bytes]:
        """Set one account's needs.

        Returns:
            The keys no account needed before this call.
        """
        before = self._by_account.get(account_id, frozenset())
        if needs == before:
            return frozenset()
        self._by_account[account_id] = needs
        keys = self.keys
        for key in before - needs:
            keys[key] -= 1
            if keys[key] <= 0:
                del keys[key]
        added = []
        for key in needs - before:
            if key not in keys:
                added.append(key)
            keys[key] += 1
        return frozenset(added)
