"""How often the paper engine publishes account views and depth watches.

An account's `AccountView` goes out at once after its own events, and at most once per
`ViewPacer.every_s` while only its valuation moves (prices): the latest view waits and
goes out when its second is up, so the last price move is never lost. Depth watches go
out when a market's set of watched symbols changes and every `DEPTH_WATCH_EVERY_S`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from schemas.depth import DEPTH_WATCH_EVERY_S
from schemas.trading import AccountView


class ViewPacer:
    """Decides when each account's view is published.

    Args:
        every_s: Least seconds between two valuation-only views of one account.
    """

    def __init__(self, every_s: float = 1.0) -> None:
        self.every_s = every_s
        self._sent_at: dict[str, float] = {}
        self._pending: dict[str, AccountView] = {}

    def offer(
        self, views: Iterable[AccountView], now: float, urgent: frozenset[str]
    ) -> list[AccountView]:
        """Views to publish now among `views`; the others wait for `due`.

        Args:
            views: Fresh views of accounts whose state or valuation changed.
            now: Monotonic seconds.
            urgent: Accounts with new events: their views go out at once.
        """
        out = []
        sent_at = self._sent_at
        pending = self._pending
        for view in views:
            account = view.account_id
            if account in urgent or now - sent_at.get(account, float("-inf")) >= self.every_s:
                pending.pop(account, None)
                sent_at[account] = now
                out.append(view)
            else:
                pending[account] = view
        return out

    def due(self, now: float) -> list[AccountView]:
        """Waiting views whose second is up (published now)."""
        if not self._pending:
            return []
        ready = [
            a for a in self._pending if now - self._sent_at.get(a, float("-inf")) >= self.every_s
        ]
        out = [self._pending.pop(a) for a in ready]
        for account in ready:
            self._sent_at[account] = now
        return out

    def all_sent(self, views: Iterable[AccountView], now: float) -> None:
        """Every account's view was just published (the periodic full republish)."""
        for view in views:
            self._pending.pop(view.account_id, None)
            self._sent_at[view.account_id] = now


Watched = Mapping[tuple[str, str], list[str]]
"""(exchange, market) → symbols whose depth is needed."""


class WatchPacer:
    """Decides when each market's depth watch is (re)published.

    Args:
        every_s: Seconds between republishes of an unchanged watch set.
    """

    def __init__(self, every_s: float = DEPTH_WATCH_EVERY_S) -> None:
        self.every_s = every_s
        self._last: dict[tuple[str, str], list[str]] = {}
        self._sent_at = float("-inf")

    def changes(self, watched: Watched, now: float) -> dict[tuple[str, str], list[str]]:
        """The watch sets to publish now: every market when `every_s` passed, else the
        markets whose set changed (a market no longer watched gets an empty set once).

        Args:
            watched: The engine's current watch sets.
            now: Monotonic seconds.
        """
        current = {market: sorted(symbols) for market, symbols in watched.items() if symbols}
        if now - self._sent_at >= self.every_s:
            out = dict(current)
            out.update({m: [] for m in self._last if m not in current})
            self._sent_at = now
        else:
            out = {m: s for m, s in current.items() if self._last.get(m) != s}
            out.update({m: [] for m in self._last if m not in current})
        self._last = current
        return out
